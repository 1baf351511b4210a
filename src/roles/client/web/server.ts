// Placeholder replaced by the web UI module.
import { MarshmelloError } from '../../../errors.js'
export async function runWebUi (_a: unknown): Promise<void> {
  throw new MarshmelloError('MM_ERR_NOT_BUILT', 'internal', 'the web UI is being built; use the terminal UI for now')
}
