/**
 * Canonical JSON: object keys sorted by UTF-16 code units (as `Array.prototype.sort` does), no whitespace,
 * strings escaped as `JSON.stringify` escapes them (RFC 8785 for the values used here: strings, integers,
 * booleans, arrays, objects and null). Used wherever two encodings of the same value must hash the same:
 * an invoice's `detailsHash`, idempotency fingerprints.
 */

/** Deterministic JSON: sorted keys, no whitespace. Refuses values JSON cannot represent exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new Error("canonicalJson: non-finite number");
      return JSON.stringify(value);
    case "bigint":
      return JSON.stringify(value.toString());
    case "object": {
      // Array.from visits holes of a sparse array too (as null, like JSON.stringify), which .map would skip.
      if (Array.isArray(value)) return `[${Array.from(value, (item) => canonicalJson(item ?? null)).join(",")}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, item]) => item !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
    }
    default:
      throw new Error(`canonicalJson: cannot encode ${typeof value}`);
  }
}
