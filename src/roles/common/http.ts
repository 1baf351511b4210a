// Kept so that src/roles/relay/index.ts (another branch's area in issue 12) still
// imports its handler from here: the handler is roles/common/http-errors.ts. The
// integrator points that import at http-errors.js and deletes this file.
export { installErrorHandler } from './http-errors.js'
