/**
 * Pagination cursors, one codec for every list: `cur_` followed by the base64url (no padding) of a JSON array
 * of strings, the keyset position of the last item of a page. A cursor is opaque to clients: they pass back
 * the `nextCursor` of the previous page as `cursor`.
 *
 * Decoding is strict: only the canonical encoding of an array of exactly the expected number of strings is
 * accepted (characters outside base64url, padding, trailing bits, other JSON: all refused), so a cursor that
 * was tampered with or typed by hand is a 422 on `cursor`, never a silently different page.
 */
import { problem } from "./problems";

const PREFIX = "cur_";
const FORMAT = /^cur_[A-Za-z0-9_-]{1,600}$/;

export function encodeCursor(parts: readonly (string | number | bigint)[]): string {
  return PREFIX + Buffer.from(JSON.stringify(parts.map(String)), "utf8").toString("base64url");
}

/** The parts of a cursor made by `encodeCursor` with `count` parts, or undefined when it is not one. */
export function decodeCursor(cursor: string, count: number): string[] | undefined {
  if (!FORMAT.test(cursor)) return undefined;
  const payload = cursor.slice(PREFIX.length);
  const raw = Buffer.from(payload, "base64url");
  // Node's decoder skips characters it does not know and ignores trailing bits: re-encoding tells.
  if (raw.toString("base64url") !== payload) return undefined;
  let parts: unknown;
  try {
    parts = JSON.parse(raw.toString("utf8"));
  } catch {
    return undefined;
  }
  if (!Array.isArray(parts) || parts.length !== count || !parts.every((part) => typeof part === "string")) return undefined;
  if (encodeCursor(parts) !== cursor) return undefined;
  return parts;
}

/** `decodeCursor`, or a 422 problem on the `cursor` field. */
export function requireCursor(cursor: string, count: number, check: (parts: string[]) => boolean = () => true): string[] {
  const parts = decodeCursor(cursor, count);
  if (!parts || !check(parts)) {
    throw problem.validation([{ field: "cursor", message: "is not a cursor returned by this list (pass the previous page's `nextCursor`)" }]);
  }
  return parts;
}
