// Entry point of the single executable (bundled by scripts/build-binary.mjs): installs
// the hook through which the SQLite user store gets the embedded native addon, then
// runs the ordinary CLI. Nothing else differs from `node build/cli.js`.
import { installSqliteBindingHook } from '../src/roles/common/sea.js'

installSqliteBindingHook()
void import('../src/cli.js')
