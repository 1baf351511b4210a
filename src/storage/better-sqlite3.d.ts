// Just the part of better-sqlite3 12's API this directory uses (the package ships no
// types and @types/better-sqlite3 is not a dependency). Widen it when you use more.

declare module 'better-sqlite3' {
  namespace Database {
    interface RunResult { changes: number, lastInsertRowid: number | bigint }
    interface Statement {
      run (...params: unknown[]): RunResult
      get (...params: unknown[]): unknown
      all (...params: unknown[]): unknown[]
    }
    interface Transaction<F extends (...args: any[]) => any> {
      (...args: Parameters<F>): ReturnType<F>
      immediate (...args: Parameters<F>): ReturnType<F>
    }
    interface Database {
      prepare (sql: string): Statement
      exec (sql: string): this
      pragma (source: string, options?: { simple?: boolean }): unknown
      transaction<F extends (...args: any[]) => any> (fn: F): Transaction<F>
      close (): this
      readonly open: boolean
    }
  }
  const Database: new (filename: string, options?: { readonly?: boolean, fileMustExist?: boolean, timeout?: number, nativeBinding?: string | object }) => Database.Database
  export default Database
}
