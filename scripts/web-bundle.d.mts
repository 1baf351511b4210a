// Types of scripts/web-bundle.mjs for the TypeScript that imports it (the bundle test).
import type { BuildOptions, Plugin } from 'esbuild'
export const WEB_ENTRY: string
export const WEB_BUNDLE: string
export const webBundleOptions: BuildOptions
export function buildWebBundle (): Promise<void>
export const webBundlePlugin: Plugin
