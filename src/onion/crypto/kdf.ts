// scrypt over node:crypto, async so the event loop keeps serving: server-side password
// hashes (roles/server/api/password.ts) and the key that seals a client profile
// (roles/client/profile/identity.ts). The password is NFC-normalised first, so the same
// password typed on two systems derives the same key. Leaves out the stored formats.
import { scrypt } from 'node:crypto'

export interface ScryptParams { N: number, r: number, p: number }

/** scrypt(NFC(password), salt) of `keyLen` bytes; rejects on parameters OpenSSL refuses. */
export function scryptKey (password: string, salt: Uint8Array, keyLen: number, params: ScryptParams): Promise<Buffer> {
  // OpenSSL needs 128*N*r bytes plus a little; the default maxmem (32 MiB) is just too small for N=2^15.
  const opts = { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 }
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFC'), salt, keyLen, opts, (err, key) => err ? reject(err) : resolve(key))
  })
}
