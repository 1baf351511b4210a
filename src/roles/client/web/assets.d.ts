// What the web UI's bundled assets yield to TypeScript: the page and stylesheet are
// bundled as text by esbuild (scripts/build.mjs loaders '.html' and '.css'), and the
// browser code (ui/, itself TypeScript) as its built bundle's text through the
// 'marshmello:web-bundle' specifier (scripts/web-bundle.mjs).
declare module '*.html' {
  const text: string
  export default text
}
declare module '*.css' {
  const text: string
  export default text
}
declare module 'marshmello:web-bundle' {
  /** build/web/app.js: src/roles/client/web/ui/main.ts bundled for the browser */
  const text: string
  export default text
}
