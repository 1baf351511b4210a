// devnet.json: where a running devnet's roles listen, written by `marshmello devnet`
// (and by the test networks, which start the devnet's own code) and read by
// `marshmello chat --devnet DIR`. One type for writer and readers; the client only
// needs the relays and the directory key, the rest is for people and tests.
import { chmodSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export const DEVNET_FILE = 'devnet.json'

export interface RoleInfo { url: string, host: string, port: number, pid: number, fingerprint: string, dataDir: string }
export interface RelayInfo extends RoleInfo { nickname: string }

/**
 * all: one server process; split: directory, auth, messages and gateway processes;
 * file: no server, relays read `consensusFile` (signed by the devnet) and the final
 * hop is one the starter runs (relay tests, the bench's echo case)
 */
export type DevnetMode = 'all' | 'split' | 'file'

/** split mode: the services other than the gateway, and the files holding their shared secrets (never the secrets) */
export interface DevnetServices {
  directory: RoleInfo
  auth: RoleInfo
  messages: RoleInfo
  internalTokenFile: string
  tokenSecretFile: string
}

/** the contents of DIR/devnet.json */
export interface DevnetInfo {
  version: 1
  dir: string
  host: string
  /** the directory authorities' key fingerprints, comma-separated, the server's first (what clients and relays pin) */
  directoryKey: string
  /** how many of them must sign a consensus (a majority) */
  directoryThreshold: number
  /** every directory authority: where it serves votes and the consensus, and its key fingerprint (the server's first) */
  authorities: { url: string, fingerprint: string, pid?: number, dataDir?: string }[]
  mode: DevnetMode
  /** where the consensus is served: the server, or the directory service in split mode (absent in file mode) */
  directoryUrl?: string
  /** file mode: the consensus the relays read */
  consensusFile?: string
  /** the final hop (the server; the gateway in split mode; the starter's hop in file mode) */
  server: RoleInfo
  services?: DevnetServices
  relays: RelayInfo[]
  startedAt: number
  /** pid of the process that started the devnet */
  pid: number
}

/** atomic replace (write, then rename), mode 0644: nothing secret is in it */
export function writeDevnetFile (dir: string, info: DevnetInfo): string {
  const file = join(dir, DEVNET_FILE)
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(info, null, 2) + '\n', { mode: 0o644 })
  chmodSync(tmp, 0o644) // the umask may have narrowed it
  renameSync(tmp, file)
  return file
}
