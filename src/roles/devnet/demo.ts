// `marshmello devnet --demo`: two scripted users and, for one message, what each hop
// saw (DESIGN §8). Waits for the client's scripting commands (register/send/read);
// until they exist this hook only says so. Nothing else here.
import type { Devnet } from './index.js'

// TODO(client scripting): register two users, send one message through a circuit,
// and print each relay's trace line for it, once `marshmello register/send/read` exist.
export async function runDemo (devnet: Devnet, write: (line: string) => void): Promise<void> {
  void devnet
  write('demo: waiting for the client scripting commands')
}
