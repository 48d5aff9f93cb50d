/**
 * Money at the edges: decimal strings in, bigint base units inside, decimal strings out. Never a JS number.
 */
import { formatUnits } from "viem";

export type AmountError = "not_a_decimal" | "not_positive" | "too_precise" | "too_large";

const DECIMAL = /^(0|[1-9]\d{0,40})(?:\.(\d+))?$/;
export const MAX_BASE_UNITS = 2n ** 96n - 1n; // subscription prices are uint96; invoices stay far below this too

/** Parses a positive decimal string into base units, refusing more fraction digits than the token has. */
export function parseAmount(text: string, decimals: number): { ok: true; value: bigint } | { ok: false; error: AmountError } {
  const match = DECIMAL.exec(text);
  if (!match) return { ok: false, error: "not_a_decimal" };
  const [, whole, fraction = ""] = match;
  if (fraction.length > decimals) return { ok: false, error: "too_precise" };
  const value = BigInt(whole) * 10n ** BigInt(decimals) + BigInt(fraction.padEnd(decimals, "0") || "0");
  if (value === 0n) return { ok: false, error: "not_positive" };
  if (value > MAX_BASE_UNITS) return { ok: false, error: "too_large" };
  return { ok: true, value };
}

export const AMOUNT_ERROR_MESSAGES: Record<AmountError, (decimals: number) => string> = {
  not_a_decimal: () => "must be a positive decimal string such as \"25.00\" (no sign, exponent or separators)",
  not_positive: () => "must be greater than zero",
  too_precise: (decimals) => `has more than ${decimals} decimal places for this currency`,
  too_large: () => "is too large",
};

/** Formats base units as a decimal string with at least two fraction digits for readability. */
export function formatAmount(value: bigint, decimals: number): string {
  const text = formatUnits(value, decimals);
  if (decimals < 2) return text;
  const [whole, fraction = ""] = text.split(".");
  return `${whole}.${fraction.padEnd(2, "0")}`;
}
