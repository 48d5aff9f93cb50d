/**
 * The price source behind `PriceSource`: reads feeds through a `FeedReader` (Chainlink's `latestRoundData()`
 * on-chain in production, api/prices/chainlink.ts; a fake in unit tests), checks every reading
 * (api/prices/checks.ts) and derives the rate:
 *
 * - `<BASE>/<QUOTE>` directly when such a feed is configured;
 * - else through USD: `<BASE>/USD`, then ÷ `<QUOTE>/USD` for EUR and CNY (ETH/EUR = ETH/USD ÷ EUR/USD), both
 *   feeds recorded;
 * - a USD stablecoin (USDC…) counts as exactly 1 USD while its `<COIN>/USD` feed is inside the peg band, and
 *   is refused outside it.
 *
 * Readings are cached per feed for the head block they were read at (at most `cacheMs`), so a burst of
 * conversions in one block reads each feed once.
 */
import { problem } from "../problems";
import { checkReading, createDeviationGuard, insidePeg, USD_STABLECOINS, type CheckFailure, type DeviationGuard } from "./checks";
import { divide, feedFraction, rateText, type Fraction } from "./math";
import type { FeedConfig, FeedReading, FeedRound, FiatCurrency, PriceSource, RateReading } from "./types";

export interface FeedReader {
  /** `latestRoundData()` and `decimals()` of the feed; throws when the node cannot be reached or the call fails. */
  read(chainId: number, feed: FeedConfig): Promise<FeedRound>;
  /** Chain time (unix seconds) staleness is measured against. */
  now(chainId: number): Promise<bigint>;
  /** The chain's head block, to cache readings per block (undefined: cache by time only). */
  block?(chainId: number): Promise<bigint | undefined>;
}

export interface PriceSourceOptions {
  /** Feeds per chain, by pair (`ETH/USD`). */
  feeds(chainId: number): ReadonlyMap<string, FeedConfig> | undefined;
  reader: FeedReader;
  deviation?: DeviationGuard;
  cacheMs?: number;
}

const DEFAULT_CACHE_MS = 5_000;

export function createPriceSource(options: PriceSourceOptions): PriceSource {
  const deviation = options.deviation ?? createDeviationGuard();
  const cacheMs = options.cacheMs ?? DEFAULT_CACHE_MS;
  const cache = new Map<string, { block: bigint | undefined; at: number; round: Promise<FeedRound> }>();

  const feedOf = (chainId: number, pair: string) => options.feeds(chainId)?.get(pair);

  function fail(chainId: number, pair: string, failure: CheckFailure, feed?: FeedConfig): never {
    throw problem.rateUnavailable({ chainId, pair, reason: failure.reason, feed: feed?.address, message: failure.message });
  }

  async function read(chainId: number, pair: string, feed: FeedConfig, block: bigint | undefined): Promise<FeedReading> {
    const key = `${chainId}:${feed.address.toLowerCase()}`;
    const cached = cache.get(key);
    let round: Promise<FeedRound>;
    if (cached && cached.block === block && Date.now() - cached.at < cacheMs) round = cached.round;
    else {
      round = options.reader.read(chainId, feed);
      cache.set(key, { block, at: Date.now(), round });
      round.catch(() => cache.delete(key));
    }
    try {
      return { ...(await round), pair: feed.pair, address: feed.address };
    } catch (error) {
      const message = error instanceof Error ? ((error as { shortMessage?: string }).shortMessage ?? error.message) : String(error);
      fail(chainId, pair, { reason: "unreachable", message: `the ${feed.pair} feed ${feed.address} could not be read (${message.slice(0, 200)})` }, feed);
    }
  }

  /** The feeds a rate needs, in order: [base feed or direct feed, quote feed?]; undefined pair when missing. */
  function plan(chainId: number, base: string, quote: FiatCurrency): { feeds: FeedConfig[]; stable: boolean } | { missing: string } {
    const direct = quote !== "USD" ? feedOf(chainId, `${base}/${quote}`) : undefined;
    if (direct && !USD_STABLECOINS.has(base)) return { feeds: [direct], stable: false };
    const baseFeed = feedOf(chainId, `${base}/USD`);
    if (!baseFeed) return { missing: `${base}/USD` };
    if (quote === "USD") return { feeds: [baseFeed], stable: USD_STABLECOINS.has(base) };
    const quoteFeed = feedOf(chainId, `${quote}/USD`);
    if (!quoteFeed) return { missing: `${quote}/USD` };
    return { feeds: [baseFeed, quoteFeed], stable: USD_STABLECOINS.has(base) };
  }

  return {
    canPrice(chainId, base, quote) {
      return !("missing" in plan(chainId, base.toUpperCase(), quote));
    },

    async rate(chainId, baseCurrency, quote) {
      const base = baseCurrency.toUpperCase();
      const pair = `${base}/${quote}`;
      const planned = plan(chainId, base, quote);
      if ("missing" in planned) {
        fail(chainId, pair, {
          reason: "not_configured",
          message: `no ${planned.missing} price feed is configured for chain ${chainId} (its operator sets CHAIN_${chainId}_PRICE_FEEDS, see docs/PRICES.md)`,
        });
      }
      const [now, block] = await Promise.all([options.reader.now(chainId), options.reader.block?.(chainId).catch(() => undefined)]);
      const readings = await Promise.all(planned.feeds.map((feed) => read(chainId, pair, feed, block)));
      readings.forEach((reading, index) => {
        const failure = checkReading(reading, planned.feeds[index], now);
        if (failure) fail(chainId, pair, failure, planned.feeds[index]);
      });
      if (planned.stable && !insidePeg(readings[0].answer, readings[0].decimals)) {
        fail(
          chainId,
          pair,
          {
            reason: "depeg",
            message: `${readings[0].pair} answered ${rateText(feedFraction(readings[0].answer, readings[0].decimals))} (round ${readings[0].roundId}), outside the peg band [0.98, 1.02]: nothing is priced in ${base} until it returns`,
          },
          planned.feeds[0],
        );
      }
      readings.forEach((reading, index) => {
        const failure = deviation.check(`${chainId}:${reading.address.toLowerCase()}`, reading, now);
        if (failure) fail(chainId, pair, failure, planned.feeds[index]);
      });
      readings.forEach((reading) => deviation.accept(`${chainId}:${reading.address.toLowerCase()}`, reading, now));

      const [first, second] = readings;
      const baseValue: Fraction = planned.stable ? { numerator: 1n, denominator: 1n } : feedFraction(first.answer, first.decimals);
      const fraction = second ? divide(baseValue, feedFraction(second.answer, second.decimals)) : baseValue;
      const source = `chainlink:${planned.stable ? `${first.pair}(peg 1:1)` : first.pair}${second ? `÷${second.pair}` : ""}`;
      return {
        chainId,
        base,
        quote,
        numerator: fraction.numerator,
        denominator: fraction.denominator,
        rate: rateText(fraction),
        source,
        feeds: readings,
        observedAt: now,
      } satisfies RateReading;
    },
  };
}
