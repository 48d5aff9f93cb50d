/**
 * Prices in fiat: the one interface every fiat conversion goes through (`PriceSource`), the readings it gives,
 * and the fiat currencies the API prices in. The Chainlink implementation is api/prices/source.ts with
 * api/prices/chainlink.ts; the arithmetic is api/prices/math.ts; docs/PRICES.md explains the rules.
 */
import type { Address } from "viem";

export const FIAT_CURRENCIES = ["USD", "EUR", "CNY"] as const;
export type FiatCurrency = (typeof FIAT_CURRENCIES)[number];
/** Fiat amounts have two decimals (cents, euro cents, fen). */
export const FIAT_DECIMALS = 2;

export function isFiat(currency: string): currency is FiatCurrency {
  return (FIAT_CURRENCIES as readonly string[]).includes(currency.trim().toUpperCase());
}

/** A price feed to read: `pair` is `<BASE>/<QUOTE>` (e.g. `ETH/USD`). */
export interface FeedConfig {
  pair: string;
  address: Address;
  /** The heartbeat: an answer older than this (plus the grace) is stale. */
  heartbeatSeconds: number;
}

/** One `latestRoundData()` of a feed, with its `decimals()`. */
export interface FeedRound {
  roundId: bigint;
  answer: bigint;
  startedAt: bigint;
  updatedAt: bigint;
  answeredInRound: bigint;
  decimals: number;
}

export interface FeedReading extends FeedRound {
  pair: string;
  address: Address;
}

/**
 * The price of one whole unit of `base` in `quote`, exact (`numerator / denominator`), and as recorded (`rate`:
 * the exact value rounded down to 18 decimals, the figure every conversion uses so it can be redone from the
 * record), with the feed rounds it came from and the chain time it was read at.
 */
export interface RateReading {
  chainId: number;
  base: string;
  quote: FiatCurrency;
  numerator: bigint;
  denominator: bigint;
  rate: string;
  /** e.g. `chainlink:ETH/USD`, `chainlink:ETH/USD÷EUR/USD`, `chainlink:USDC/USD(peg 1:1)÷EUR/USD`. */
  source: string;
  feeds: FeedReading[];
  observedAt: bigint;
}

/** Why no rate could be given (the `reason` of the `rate-unavailable` problem). */
export type RateFailure = "not_configured" | "unreachable" | "incomplete_round" | "non_positive" | "stale" | "deviation" | "depeg";

export interface PriceSource {
  /** The rate of `base` (ETH, USDC, BTC…) in `quote`; throws the `rate-unavailable` problem when none is fresh. */
  rate(chainId: number, base: string, quote: FiatCurrency): Promise<RateReading>;
  /** Whether feeds exist to price `base` in `quote` on the chain (configuration only; nothing is read). */
  canPrice(chainId: number, base: string, quote: FiatCurrency): boolean;
}
