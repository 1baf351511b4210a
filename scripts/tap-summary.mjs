// Reads tap's TAP output and prints one line "N passed, N failed" (plus skipped),
// counting top-level test files' asserts from tap's final `# { total, pass, fail }` line;
// a file that crashed without a summary counts as failed.
import { readFileSync } from 'node:fs'

const text = readFileSync(process.argv[2] ?? 0, 'utf8')
const m = [...text.matchAll(/^# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?(?:, todo: (\d+))?/gm)].pop()
let passed = 0; let failed = 0; let skipped = 0
if (m) {
  passed = Number(m[2]); failed = Number(m[3] ?? 0); skipped = Number(m[4] ?? 0)
  const total = Number(m[1])
  if (failed === 0 && passed + skipped + Number(m[5] ?? 0) < total) failed = total - passed - skipped
} else {
  // no summary at all: count top-level results
  for (const line of text.split('\n')) {
    if (/^ok \d+/.test(line)) passed++
    else if (/^not ok \d+/.test(line)) failed++
  }
  if (passed + failed === 0) failed = 1
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
