// nedb's line serialiser (@seald-io/nedb ships no types for its lib/ modules); the
// message store's append path writes exactly the lines nedb itself would.

declare module '@seald-io/nedb/lib/model.js' {
  const model: { serialize (doc: object): string }
  export default model
}
