// The web UI's page and stylesheet are bundled as text by esbuild (scripts/build.mjs
// loaders '.html' and '.css'); this tells TypeScript what such an import yields.
declare module '*.html' {
  const text: string
  export default text
}
declare module '*.css' {
  const text: string
  export default text
}
