/**
 * Exact fiat arithmetic (bigint only, never a JS number):
 *
 * - a rate is the price of one whole unit of a currency in fiat, kept exact as a fraction while derived and
 *   recorded rounded DOWN to 18 decimals (`rate` strings); every conversion uses the recorded figure;
 * - a fiat price becomes token base units rounded UP to the smallest unit, so the merchant never receives less
 *   than the fiat price at the recorded rate: `units = ceil(cents × 10^decimals × 10^18 / (rate18 × 100))`;
 * - a token amount is valued in fiat rounded half-up (half away from zero) to the cent.
 */
import { formatUnits, parseUnits } from "viem";
import { FIAT_DECIMALS } from "./types";

export const RATE_DECIMALS = 18;
const RATE_SCALE = 10n ** BigInt(RATE_DECIMALS);
const FIAT_SCALE = 10n ** BigInt(FIAT_DECIMALS);

export interface Fraction {
  numerator: bigint;
  denominator: bigint;
}

/** A feed answer as a fraction: `answer / 10^decimals`. */
export function feedFraction(answer: bigint, decimals: number): Fraction {
  return { numerator: answer, denominator: 10n ** BigInt(decimals) };
}

/** `a ÷ b` (a cross rate through USD: ETH/EUR = ETH/USD ÷ EUR/USD). */
export function divide(a: Fraction, b: Fraction): Fraction {
  return { numerator: a.numerator * b.denominator, denominator: a.denominator * b.numerator };
}

/** The rate scaled by 10^18, rounded down. */
export function rateScaled(fraction: Fraction): bigint {
  return (fraction.numerator * RATE_SCALE) / fraction.denominator;
}

/** The recorded rate: rounded down to 18 decimals, as a decimal string without trailing zeros. */
export function rateText(fraction: Fraction): string {
  return formatUnits(rateScaled(fraction), RATE_DECIMALS);
}

/** A recorded rate string back to its 10^18-scaled integer. */
export function parseRate(rate: string): bigint {
  return parseUnits(rate, RATE_DECIMALS);
}

const ceilDiv = (a: bigint, b: bigint) => (a + b - 1n) / b;

/**
 * Token base units for `fiatMinor` (cents) at `rate`, rounded up to the smallest unit. Zero fiat is zero units;
 * anything above zero is at least one unit.
 */
export function fiatToUnits(fiatMinor: bigint, rate: string, tokenDecimals: number): bigint {
  if (fiatMinor < 0n) throw new RangeError("a fiat amount is never negative");
  const scaled = parseRate(rate);
  if (scaled <= 0n) throw new RangeError(`rate ${rate} is not positive`);
  return ceilDiv(fiatMinor * 10n ** BigInt(tokenDecimals) * RATE_SCALE, scaled * FIAT_SCALE);
}

/** Fiat minor units (cents) of `units` base units at `rate`, rounded half away from zero (signed amounts keep their sign). */
export function unitsToFiatMinor(units: bigint, rate: string, tokenDecimals: number): bigint {
  const negative = units < 0n;
  const magnitude = negative ? -units : units;
  const numerator = magnitude * parseRate(rate) * FIAT_SCALE;
  const denominator = 10n ** BigInt(tokenDecimals) * RATE_SCALE;
  const rounded = (numerator * 2n + denominator) / (2n * denominator);
  return negative ? -rounded : rounded;
}

/** Cents as a fiat decimal string with two decimals ("1234.50", "-0.07"). */
export function formatFiat(minor: bigint): string {
  const negative = minor < 0n;
  const magnitude = negative ? -minor : minor;
  const whole = magnitude / FIAT_SCALE;
  const fraction = (magnitude % FIAT_SCALE).toString().padStart(FIAT_DECIMALS, "0");
  return `${negative ? "-" : ""}${whole}.${fraction}`;
}
