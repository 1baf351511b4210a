// app.client.js is the browser script, bundled as text by esbuild (loader
// '.client.js'); the server imports it as a string and serves it at /app.js.
declare const text: string
export default text
