// Privacy Pass tokens (RFC 9578, publicly verifiable token type 0x0002, blind RSA with
// RSASSA-PSS-SHA384, RFC 9474) through @cloudflare/privacypass-ts: the issuer's key per
// epoch, issuing blinded token requests (RFC 9578 §6.2 issuer-to-client response), the
// client's request and finalisation (§6.1, §6.3), and the redeemer's check (§6.4, with
// the token layout of §2.2 and the challenge of RFC 9577 §2.1). The library does the
// blind RSA (WebCrypto underneath); this file only fixes our parameters and layouts.
// Double-spend bookkeeping is the server's (roles/server/api/anon-tokens.ts).

import { publicVerif, TOKEN_TYPES, Token, TokenChallenge } from '@cloudflare/privacypass-ts'
import { constants, createPrivateKey, createPublicKey, privateDecrypt, publicEncrypt, type JsonWebKey } from 'node:crypto'
import { MarshmelloError } from '../../errors.js'
import { sha256 } from './primitives.js'

const { Issuer, Client, Origin, BlindRSAMode, TokenRequest, TokenResponse, getPublicKeyBytes } = publicVerif
const MODE = BlindRSAMode.PSS // RSABSSA-SHA384-PSS-Randomized isn't type 2; PSS with 48-byte salt is (RFC 9578 §6)
export const TOKEN_TYPE = TOKEN_TYPES.BLIND_RSA.value // 0x0002
export const ISSUER_NAME = 'marshmello'
/** RSA modulus of the issuer key: 2048 bits (RFC 9578 §6: Nk = 256) */
const MODULUS_BITS = 2048
export const TOKEN_BYTES = 2 + 32 + 32 + 32 + 256

/** a copy in its own ArrayBuffer: the library reads `bytes.buffer` from offset 0, which a pooled Buffer's is not */
const own = (b: Uint8Array): Uint8Array => new Uint8Array(b)

/** the one challenge every token answers: type 2, our issuer name, empty redemption context, no origin info (RFC 9577 §2.1) */
function challenge (): TokenChallenge {
  return new TokenChallenge(TOKEN_TYPE, ISSUER_NAME, new Uint8Array(0))
}
const challengeDigest = (): Buffer => sha256(challenge().serialize())

/** Thrown when a token request or response is malformed. */
const badToken = (what: string) => new MarshmelloError('MM_ERR_ANON_TOKEN', what)

export interface IssuerKey {
  /** RFC 9578 §6.5: SHA-256 of the public key's SPKI (RSASSA-PSS OID) */
  keyId: Buffer
  /** SPKI bytes the clients blind against */
  publicKey: Buffer
  issue (request: Uint8Array): Promise<Buffer>
  /** RFC 9578 §6.4: a token of this key with our challenge; the nonce when it verifies */
  verify (token: Uint8Array): Promise<{ nonce: Buffer } | null>
}

export async function generateIssuerKey (): Promise<IssuerKey> {
  const pair = await Issuer.generateKey(MODE, { modulusLength: MODULUS_BITS, publicExponent: Uint8Array.of(1, 0, 1) })
  const issuer = new Issuer(MODE, ISSUER_NAME, pair.privateKey, pair.publicKey) // for its key id (RFC 9578 §6.5)
  const publicKey = Buffer.from(await getPublicKeyBytes(pair.publicKey))
  const keyId = Buffer.from(await issuer.tokenKeyID())
  const origin = new Origin(MODE)
  const digest = challengeDigest()
  // RFC 9474 §4.3 BlindSign is RSASP1 then RSAVP1 as a check. The library computes
  // RSASP1 in BigInt arithmetic (~0.5 s a token here); OpenSSL's raw RSA with CRT does the
  // same operation in about a millisecond, so the issuer signs with node:crypto.
  const jwk = await globalThis.crypto.subtle.exportKey('jwk', pair.privateKey)
  const rawPrivate = createPrivateKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e, d: jwk.d, p: jwk.p, q: jwk.q, dp: jwk.dp, dq: jwk.dq, qi: jwk.qi } as JsonWebKey, format: 'jwk' })
  const rawPublic = createPublicKey(rawPrivate)
  const modulus = Buffer.from(jwk.n!, 'base64url')
  const blindSign = (blinded: Uint8Array): Buffer => {
    const m = Buffer.from(blinded)
    // RSASP1 step 1: the message representative must be below the modulus
    if (m.length !== MODULUS_BITS / 8 || Buffer.compare(m, modulus) >= 0) throw badToken('blinded message out of range')
    const sig = privateDecrypt({ key: rawPrivate, padding: constants.RSA_NO_PADDING }, m)
    // RSAVP1 as the fault check of RFC 9474 §4.3 step 3
    if (!publicEncrypt({ key: rawPublic, padding: constants.RSA_NO_PADDING }, sig).equals(m)) throw new MarshmelloError('MM_ERR_INTERNAL', 'blind signature failed its check')
    return sig
  }
  return {
    keyId,
    publicKey,
    async issue (request) {
      let req
      try {
        req = TokenRequest.deserialize(TOKEN_TYPES.BLIND_RSA, own(request))
      } catch { throw badToken('malformed token request') }
      if (req.tokenType !== TOKEN_TYPE || request.length !== 2 + 1 + 256) throw badToken('expected a type 2 token request')
      if (req.truncatedTokenKeyId !== keyId[keyId.length - 1]) throw badToken('token request for another issuer key')
      return Buffer.from(new TokenResponse(blindSign(req.blindedMsg)).serialize())
    },
    async verify (bytes) {
      if (bytes.length !== TOKEN_BYTES) return null
      let token: Token
      try { token = Token.deserialize(TOKEN_TYPES.BLIND_RSA, own(bytes)) } catch { return null }
      const a = token.authInput
      if (a.tokenType !== TOKEN_TYPE || !Buffer.from(a.tokenKeyId).equals(keyId) || !Buffer.from(a.challengeDigest).equals(digest)) return null
      try {
        if (!(await origin.verify(token, pair.publicKey))) return null
      } catch { return null }
      return { nonce: Buffer.from(a.nonce) }
    },
  }
}

/** The client side: `n` blinded requests against an issuer key; finish() unblinds the issuer's answers into tokens. */
export async function requestTokens (issuerPublicKey: Uint8Array, n: number): Promise<{ requests: Buffer[], finish (responses: Uint8Array[]): Promise<Buffer[]> }> {
  const clients = Array.from({ length: n }, () => new Client(MODE))
  const requests: Buffer[] = []
  for (const c of clients) requests.push(Buffer.from((await c.createTokenRequest(challenge(), own(issuerPublicKey))).serialize()))
  return {
    requests,
    async finish (responses) {
      if (responses.length !== n) throw badToken(`expected ${n} token responses, got ${responses.length}`)
      const out: Buffer[] = []
      for (let i = 0; i < n; i++) {
        let res
        try { res = TokenResponse.deserialize(own(responses[i])) } catch { throw badToken('malformed token response') }
        // finalize checks the unblinded signature against the issuer key (RFC 9474 §4.4)
        out.push(Buffer.from((await clients[i].finalize(res)).serialize()))
      }
      return out
    },
  }
}

/** RFC 9578 §6.5 key id of SPKI bytes, so a client checks the key it was given */
export const issuerKeyId = (spki: Uint8Array): Buffer => sha256(spki)
