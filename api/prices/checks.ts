/**
 * The checks every feed reading passes before a rate is given (thresholds documented in docs/PRICES.md):
 *
 * - complete round: `updatedAt` set and `answeredInRound ≥ roundId`;
 * - positive answer;
 * - fresh: at most `heartbeat + STALENESS_GRACE_SECONDS` old by the chain's clock;
 * - no jump: an answer that moved more than `DEVIATION_MAX_BPS` from the last answer accepted for the same feed
 *   within `DEVIATION_WINDOW_SECONDS` is suspect and refused (a later reading is compared again; once the last
 *   accepted one is older than the window, the new level is accepted);
 * - stablecoin peg: a USD stablecoin's `<COIN>/USD` answer must be within [1 − DEPEG_BAND_BPS, 1 + DEPEG_BAND_BPS];
 *   inside the band the coin counts as exactly 1 USD, outside it nothing is priced in or converted to it.
 */
import type { FeedConfig, FeedReading, RateFailure } from "./types";

/** Seconds a reading may be older than its feed's heartbeat (publication and block delays). */
export const STALENESS_GRACE_SECONDS = 60n;
/** Largest move from the last accepted answer of a feed within the window, in basis points (10%). */
export const DEVIATION_MAX_BPS = 1_000n;
export const DEVIATION_WINDOW_SECONDS = 600n;
/** A stablecoin's peg band around 1 USD, in basis points (±2%: [0.98, 1.02]). */
export const DEPEG_BAND_BPS = 200n;
/** Coins pegged to 1 USD: priced 1:1 while their `<COIN>/USD` feed stays inside the band. */
export const USD_STABLECOINS: ReadonlySet<string> = new Set(["USDC", "USDT", "DAI", "PYUSD", "USDS"]);

export interface CheckFailure {
  reason: RateFailure;
  message: string;
}

const iso = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString();

/** Completeness, sign and age of one reading at chain time `now`; undefined when it passes. */
export function checkReading(reading: FeedReading, feed: FeedConfig, now: bigint): CheckFailure | undefined {
  if (reading.updatedAt === 0n || reading.answeredInRound < reading.roundId) {
    return { reason: "incomplete_round", message: `round ${reading.roundId} of ${feed.pair} is not complete` };
  }
  if (reading.answer <= 0n) return { reason: "non_positive", message: `${feed.pair} answered ${reading.answer} (not a price)` };
  const age = now > reading.updatedAt ? now - reading.updatedAt : 0n;
  const maxAge = BigInt(feed.heartbeatSeconds) + STALENESS_GRACE_SECONDS;
  if (age > maxAge) {
    return {
      reason: "stale",
      message: `${feed.pair} was last updated ${age} s ago (${iso(reading.updatedAt)}, round ${reading.roundId}); its heartbeat is ${feed.heartbeatSeconds} s, so answers older than ${maxAge} s are stale`,
    };
  }
  return undefined;
}

/** Whether `answer` (with `decimals`) is inside the peg band around 1. */
export function insidePeg(answer: bigint, decimals: number): boolean {
  const one = 10n ** BigInt(decimals);
  return answer * 10_000n >= one * (10_000n - DEPEG_BAND_BPS) && answer * 10_000n <= one * (10_000n + DEPEG_BAND_BPS);
}

/** The last accepted answer of each feed, to refuse sudden jumps. One per API process. */
export function createDeviationGuard(maxBps = DEVIATION_MAX_BPS, windowSeconds = DEVIATION_WINDOW_SECONDS) {
  const accepted = new Map<string, { answer: bigint; roundId: bigint; at: bigint }>();
  return {
    check(key: string, reading: FeedReading, now: bigint): CheckFailure | undefined {
      const last = accepted.get(key);
      if (!last || last.roundId === reading.roundId || now - last.at > windowSeconds) return undefined;
      const moved = reading.answer > last.answer ? reading.answer - last.answer : last.answer - reading.answer;
      if (moved * 10_000n <= maxBps * last.answer) return undefined;
      const percent = Number((moved * 1_000_000n) / last.answer) / 10_000;
      return {
        reason: "deviation",
        message: `${reading.pair} moved ${percent}% (from ${last.answer} to ${reading.answer}, round ${reading.roundId}) within ${windowSeconds} s of the last accepted answer; a move of more than ${Number(maxBps) / 100}% within ${windowSeconds} s is refused as suspect`,
      };
    },
    accept(key: string, reading: FeedReading, now: bigint): void {
      const last = accepted.get(key);
      if (!last || last.roundId !== reading.roundId || now - last.at > windowSeconds) accepted.set(key, { answer: reading.answer, roundId: reading.roundId, at: now });
    },
  };
}

export type DeviationGuard = ReturnType<typeof createDeviationGuard>;
