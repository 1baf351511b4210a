// Canonical JSON for signed documents (docs/PROTOCOL.md §7): object keys sorted,
// no whitespace, so the same document always yields the same signed bytes.

/** how deep a signed document may nest (ours nest 3 levels; deeper is junk, and unbounded recursion would overflow the stack) */
export const MAX_JSON_DEPTH = 32

/** Throws a RangeError for a document nesting deeper than MAX_JSON_DEPTH. */
export function canonicalJson (v: unknown, depth = 0): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v)
  if (depth >= MAX_JSON_DEPTH) throw new RangeError(`JSON nests deeper than ${MAX_JSON_DEPTH} levels`)
  if (Array.isArray(v)) return `[${v.map((x) => canonicalJson(x, depth + 1)).join(',')}]`
  const o = v as Record<string, unknown>
  return `{${Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k], depth + 1)}`).join(',')}}`
}
