// The program's version, stamped at build time from package.json.
export const VERSION: string = '0.1.0'
