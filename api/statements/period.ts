/**
 * A statement's period: `[from, to)` in unix seconds, from ISO 8601 dates (`2026-01-31`, midnight UTC) or
 * date-times with an explicit offset (`2026-01-31T12:00:00Z`, `…+02:00`). Ledger timestamps are whole block
 * seconds, so a fractional bound is rounded up: `t >= 10.5` and `t < 10.5` mean `t >= 11` and `t < 11`.
 */
import { problem, type FieldError } from "../problems";

const DAY = 86_400n;
/** Default length of a statement when `from` is not given. */
export const DEFAULT_PERIOD_SECONDS = 30n * DAY;

const ISO =
  /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-](\d{2}):(\d{2})))?$/;

/** Milliseconds since the epoch, or an error message. */
export function parseInstant(text: string): number | string {
  const match = ISO.exec(text);
  if (!match) return "must be an ISO 8601 date (2026-01-31) or date-time with an offset (2026-01-31T12:00:00Z)";
  const [, year, month, day, hour = "0", minute = "0", second = "0", , offsetHour = "0", offsetMinute = "0"] = match;
  const date = new Date(Date.UTC(Number(year), Number(month) - 1, Number(day)));
  const validDay = date.getUTCFullYear() === Number(year) && date.getUTCMonth() === Number(month) - 1 && date.getUTCDate() === Number(day);
  const validTime = Number(hour) < 24 && Number(minute) < 60 && Number(second) < 60 && Number(offsetHour) < 24 && Number(offsetMinute) < 60;
  const ms = Date.parse(match[4] === undefined ? `${text}T00:00:00Z` : text);
  if (!validDay || !validTime || Number.isNaN(ms)) return "is not a valid calendar date and time";
  return ms;
}

export interface Period {
  from: bigint;
  to: bigint;
}

/**
 * The period asked for: `to` defaults to `now` (exclusive, so pass the second after the latest block),
 * `from` to 30 days before `to`. Invalid dates and an empty or inverted period are 422 problems.
 */
export function statementPeriod(query: { from?: string; to?: string }, defaultTo: bigint): Period {
  const errors: FieldError[] = [];
  const bound = (field: "from" | "to"): bigint | undefined => {
    const text = query[field];
    if (text === undefined) return undefined;
    const parsed = parseInstant(text);
    if (typeof parsed === "string") {
      errors.push({ field, message: parsed });
      return undefined;
    }
    return BigInt(Math.ceil(parsed / 1000));
  };
  const from = bound("from");
  const to = bound("to");
  if (errors.length > 0) throw problem.validation(errors);
  const end = to ?? defaultTo;
  const start = from ?? end - DEFAULT_PERIOD_SECONDS;
  if (start >= end) throw problem.validation([{ field: "from", message: "must be before `to`" }]);
  return { from: start, to: end };
}
