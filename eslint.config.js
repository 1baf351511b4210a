// ESLint (flat config): typescript-eslint's recommended rules, a standard-like style
// (@stylistic), and the layer rules of docs/ARCHITECTURE.md §2 as import restrictions,
// so a crypto call outside src/onion/crypto or an I/O import in src/onion fails `npm run lint`.
import js from '@eslint/js'
import tseslint from 'typescript-eslint'
import stylistic from '@stylistic/eslint-plugin'
import globals from 'globals'

const NODE_IO = ['node:net', 'node:tls', 'node:http', 'node:https', 'node:http2', 'node:fs', 'node:fs/promises', 'node:child_process', 'node:dgram', 'node:dns', 'node:worker_threads', 'node:cluster']
const crypto = {
  paths: [
    { name: 'node:crypto', message: 'every node:crypto call lives in src/onion/crypto/ (docs/ARCHITECTURE.md §3): import the function from there' },
    { name: 'crypto', message: 'every node:crypto call lives in src/onion/crypto/ (docs/ARCHITECTURE.md §3)' },
    { name: 'node-forge', message: 'node-forge is used by src/onion/crypto/certificate.ts only' },
  ],
}
const onionIo = {
  paths: [...NODE_IO, 'fastify', 'ws', 'undici', 'ioredis', 'pg', 'mongodb', 'better-sqlite3']
    .map((name) => ({ name, message: 'src/onion does no I/O: sockets, files, processes and drivers belong to src/roles and src/storage' })),
  patterns: [{ group: ['**/roles/**', '**/storage/**'], message: 'src/onion imports only src/onion and the leaf modules (src/errors.ts, src/names.ts, src/log.ts)' }],
}
const restrict = (...sets) => ['error', { paths: sets.flatMap((s) => s.paths ?? []), patterns: sets.flatMap((s) => s.patterns ?? []) }]

export default tseslint.config(
  { ignores: ['build/**', 'dist/**', 'node_modules/**', '.tap/**', '.devnet/**', 'bench/results/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: { ...globals.node } },
    plugins: { '@stylistic': stylistic },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // style: what the code already does (standard-like)
      '@stylistic/indent': ['error', 2, { SwitchCase: 1, ignoredNodes: ['TemplateLiteral *'] }],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
      '@stylistic/semi': ['error', 'never'],
      '@stylistic/space-before-function-paren': ['error', 'always'],
      '@stylistic/keyword-spacing': 'error',
      '@stylistic/space-infix-ops': 'error',
      '@stylistic/eol-last': 'error',
      '@stylistic/no-trailing-spaces': 'error',
      '@stylistic/no-multiple-empty-lines': ['error', { max: 1, maxEOF: 0 }],
      '@stylistic/comma-spacing': 'error',
      '@stylistic/key-spacing': 'error',
      '@stylistic/brace-style': ['error', '1tbs', { allowSingleLine: true }],
      // correctness
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      'no-var': 'error',
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
      'no-empty': ['error', { allowEmptyCatch: true }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  // layers (docs/ARCHITECTURE.md §2): src/onion is bytes in, bytes out
  {
    files: ['src/**/*.ts'],
    ignores: ['src/onion/crypto/**'],
    rules: {
      'no-restricted-imports': restrict(crypto),
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'use randomInt/randomBytes from src/onion/crypto/random.ts' }],
    },
  },
  {
    files: ['src/onion/crypto/**/*.ts'],
    rules: { 'no-restricted-imports': restrict(onionIo) },
  },
  {
    files: ['src/onion/**/*.ts'],
    ignores: ['src/onion/crypto/**'],
    rules: { 'no-restricted-imports': restrict(crypto, onionIo) },
  },
  {
    files: ['src/storage/**/*.ts'],
    rules: { 'no-restricted-imports': restrict(crypto, { patterns: [{ group: ['**/roles/**'], message: 'src/storage never imports a role' }] }) },
  },
  {
    // the browser bundle: no Node built-ins, nothing from the server side
    files: ['src/roles/client/web/ui/**/*.ts'],
    languageOptions: { globals: { ...globals.browser } },
    rules: {
      'no-restricted-imports': restrict(crypto, { patterns: [{ group: ['node:*', '**/server/**', '**/storage/**', '**/relay/**'], message: 'browser code imports only src/names.ts, the web UI\'s wire/event types and itself' }] }),
    },
  },
  {
    // tests match escape sequences on purpose
    files: ['test/**/*.ts'],
    rules: { 'no-control-regex': 'off' },
  },
  {
    files: ['**/*.js', '**/*.mjs', '**/*.cjs'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
)
