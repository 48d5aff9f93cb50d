/**
 * Fiat prices (api/prices): the exact arithmetic at the smallest unit, EUR/CNY cross rates through USD, every
 * check at its boundary (staleness, answer ≤ 0, incomplete round, deviation, de-peg band), a missing feed, the
 * problem's text, feed configuration — and the Chainlink reader against real MockV3Aggregator contracts on the
 * in-process Hardhat network.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import hre from "hardhat";
import { createPublicClient, custom, getAddress, type Address, type PublicClient } from "viem";
import type { ChainRuntime } from "../../api/chains";
import { ProblemError } from "../../api/problems";
import { createDeviationGuard, DEVIATION_WINDOW_SECONDS, STALENESS_GRACE_SECONDS } from "../../api/prices/checks";
import { chainlinkReader } from "../../api/prices/chainlink";
import { loadPriceFeeds, parseFeedList, PriceFeedConfigError } from "../../api/prices/config";
import { fiatToUnits, formatFiat, rateText, unitsToFiatMinor } from "../../api/prices/math";
import { priceRecord } from "../../api/prices/record";
import { createPriceSource, type FeedReader } from "../../api/prices/source";
import type { FeedConfig, FeedRound } from "../../api/prices/types";

const CHAIN = 31337;
const address = (n: number) => getAddress(`0x${n.toString(16).padStart(40, "0")}`) as Address;
const feed = (pair: string, n: number, heartbeatSeconds = 3_600): FeedConfig => ({ pair, address: address(n), heartbeatSeconds });
const FEEDS = new Map<string, FeedConfig>([
  ["ETH/USD", feed("ETH/USD", 1)],
  ["USDC/USD", feed("USDC/USD", 2, 86_400)],
  ["EUR/USD", feed("EUR/USD", 3, 86_400)],
  ["CNY/USD", feed("CNY/USD", 4, 86_400)],
]);
const NOW = 1_800_000_000n;

/** A fake chain: rounds by feed address, a settable clock. */
function fakeChain() {
  const rounds = new Map<string, FeedRound>();
  let now = NOW;
  let round = 1n;
  const set = (pair: string, answer: bigint, updatedAt = now, decimals = 8) => {
    round += 1n;
    rounds.set(FEEDS.get(pair)!.address, { roundId: round, answer, startedAt: updatedAt, updatedAt, answeredInRound: round, decimals });
  };
  set("ETH/USD", 3_000n * 10n ** 8n);
  set("USDC/USD", 10n ** 8n);
  set("EUR/USD", 108_000_000n);
  set("CNY/USD", 13_800_000n);
  const reader: FeedReader = {
    async read(_chainId, config) {
      const found = rounds.get(config.address);
      if (!found) throw new Error("execution reverted");
      return found;
    },
    now: async () => now,
  };
  const source = createPriceSource({ feeds: (chainId) => (chainId === CHAIN ? FEEDS : undefined), reader, cacheMs: 0 });
  return { source, set, rounds, at: (seconds: bigint) => (now = seconds) };
}

async function problemOf(promise: Promise<unknown>): Promise<ProblemError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ProblemError) return error;
    throw error;
  }
  throw new Error("expected a problem");
}

describe("unit: fiat prices", () => {
  describe("arithmetic", () => {
    it("converts fiat to base units rounding up to the smallest unit (the merchant never receives less)", () => {
      // $25.00 at 3000 USD/ETH = 0.008333… ETH: 8333333333333333.33… wei → 8333333333333334 wei.
      expect(fiatToUnits(2_500n, "3000", 18)).to.equal(8_333_333_333_333_334n);
      // And 8333333333333334 wei is worth at least $25 at that rate, one wei less is not.
      const worth = (wei: bigint) => wei * 3_000n * 100n; // cents × 10^18
      expect(worth(8_333_333_333_333_334n) >= 2_500n * 10n ** 18n).to.equal(true);
      expect(worth(8_333_333_333_333_333n) >= 2_500n * 10n ** 18n).to.equal(false);
      // Exact divisions are not rounded: $30.00 at 3000 = 0.01 ETH exactly.
      expect(fiatToUnits(3_000n, "3000", 18)).to.equal(10n ** 16n);
      // 6-decimal USDC at 1:1: $0.01 = 10000 units; at a fractional rate, up to the next unit.
      expect(fiatToUnits(1n, "1", 6)).to.equal(10_000n);
      expect(fiatToUnits(1n, "0.999999999999999999", 6)).to.equal(10_001n);
      // Satoshis: $1.00 at 60000 USD/BTC = 1666.66… sats → 1667.
      expect(fiatToUnits(100n, "60000", 8)).to.equal(1_667n);
      expect(fiatToUnits(0n, "3000", 18)).to.equal(0n);
    });

    it("values base units in fiat, half-up to the cent, signed", () => {
      expect(unitsToFiatMinor(8_333_333_333_333_334n, "3000", 18)).to.equal(2_500n);
      // 0.000005 ETH at 3000 = $0.015 → 0.02 (half up); 0.0000049 ETH = $0.0147 → 0.01.
      expect(unitsToFiatMinor(5n * 10n ** 12n, "3000", 18)).to.equal(2n);
      expect(unitsToFiatMinor(49n * 10n ** 11n, "3000", 18)).to.equal(1n);
      expect(unitsToFiatMinor(-5n * 10n ** 12n, "3000", 18)).to.equal(-2n);
      expect(formatFiat(-2n)).to.equal("-0.02");
      expect(formatFiat(123_450n)).to.equal("1234.50");
    });

    it("derives EUR and CNY through USD, recorded rounded down to 18 decimals", async () => {
      const { source } = fakeChain();
      const eur = await source.rate(CHAIN, "ETH", "EUR");
      // 3000 / 1.08 = 2777.777…
      expect(eur.rate).to.equal("2777.777777777777777777");
      expect(eur.source).to.equal("chainlink:ETH/USD÷EUR/USD");
      expect(eur.feeds.map((reading) => reading.pair)).to.deep.equal(["ETH/USD", "EUR/USD"]);
      expect(eur.numerator * 108_000_000n).to.equal(eur.denominator * 3_000n * 10n ** 8n);
      const cny = await source.rate(CHAIN, "ETH", "CNY");
      expect(cny.rate).to.equal("21739.130434782608695652");
      // €25.00 in ETH at the recorded EUR rate: 25 / 2777.777777777777777777 ETH, rounded up.
      expect(fiatToUnits(2_500n, eur.rate, 18)).to.equal(9_000_000_000_000_001n);
      const usdcEur = await source.rate(CHAIN, "USDC", "EUR");
      expect(usdcEur.source).to.equal("chainlink:USDC/USD(peg 1:1)÷EUR/USD");
      expect(usdcEur.rate).to.equal(rateText({ numerator: 100n, denominator: 108n }));
    });

    it("records the rate with every feed round", async () => {
      const { source } = fakeChain();
      const reading = await source.rate(CHAIN, "ETH", "USD");
      const record = priceRecord(reading, { amount: "25.00", lockedUntil: NOW + 900n });
      expect(record).to.deep.include({ fiatCurrency: "USD", fiatAmount: "25.00", rate: "3000", source: "chainlink:ETH/USD", observedAt: Number(NOW), lockedUntil: Number(NOW) + 900 });
      expect(record.feeds).to.deep.equal([{ address: address(1), roundId: "2", answer: "300000000000", decimals: 8, updatedAt: Number(NOW) }]);
    });
  });

  describe("checks", () => {
    it("staleness: heartbeat + grace exactly is fresh, one second more is stale", async () => {
      const chain = fakeChain();
      chain.at(NOW + 3_600n + STALENESS_GRACE_SECONDS);
      expect((await chain.source.rate(CHAIN, "ETH", "USD")).rate).to.equal("3000");
      chain.at(NOW + 3_600n + STALENESS_GRACE_SECONDS + 1n);
      const stale = await problemOf(chain.source.rate(CHAIN, "ETH", "USD"));
      expect(stale.status).to.equal(503);
      expect(stale.slug).to.equal("rate-unavailable");
      expect(stale.extensions).to.deep.include({ chainId: CHAIN, pair: "ETH/USD", reason: "stale", feed: address(1) });
      expect(stale.detail).to.equal(
        `No fresh ETH/USD rate on chain ${CHAIN}: ETH/USD was last updated 3661 s ago (${new Date(Number(NOW) * 1000).toISOString()}, round 2); its heartbeat is 3600 s, so answers older than 3660 s are stale.`,
      );
      // USDC/USD's heartbeat is a day: still fresh.
      expect((await chain.source.rate(CHAIN, "USDC", "USD")).rate).to.equal("1");
    });

    it("refuses answers ≤ 0 and incomplete rounds", async () => {
      const chain = fakeChain();
      chain.set("ETH/USD", 0n);
      expect((await problemOf(chain.source.rate(CHAIN, "ETH", "USD"))).extensions.reason).to.equal("non_positive");
      chain.set("ETH/USD", -1n);
      expect((await problemOf(chain.source.rate(CHAIN, "ETH", "USD"))).extensions.reason).to.equal("non_positive");
      chain.set("ETH/USD", 3_000n * 10n ** 8n);
      const round = chain.rounds.get(address(1))!;
      chain.rounds.set(address(1), { ...round, answeredInRound: round.roundId - 1n });
      expect((await problemOf(chain.source.rate(CHAIN, "ETH", "USD"))).extensions.reason).to.equal("incomplete_round");
      chain.rounds.set(address(1), { ...round, updatedAt: 0n });
      expect((await problemOf(chain.source.rate(CHAIN, "ETH", "USD"))).extensions.reason).to.equal("incomplete_round");
    });

    it("deviation: 10% from the last accepted answer within 10 minutes passes, more is suspect, later it is accepted", async () => {
      const chain = fakeChain();
      await chain.source.rate(CHAIN, "ETH", "USD");
      chain.set("ETH/USD", 3_300n * 10n ** 8n); // +10% exactly
      expect((await chain.source.rate(CHAIN, "ETH", "USD")).rate).to.equal("3300");
      chain.set("ETH/USD", 3_630n * 10n ** 8n + 1n); // +10% of 3300, and one unit of the answer more
      const jump = await problemOf(chain.source.rate(CHAIN, "ETH", "USD"));
      expect(jump.extensions.reason).to.equal("deviation");
      expect(jump.detail).to.match(/ETH\/USD moved 10% \(from 330000000000 to 363000000001, round \d+\)/);
      chain.at(NOW + DEVIATION_WINDOW_SECONDS + 1n);
      chain.set("ETH/USD", 3_630n * 10n ** 8n + 1n, NOW + DEVIATION_WINDOW_SECONDS + 1n);
      expect((await chain.source.rate(CHAIN, "ETH", "USD")).rate).to.equal("3630.00000001");
      // A fall counts the same way.
      const guard = createDeviationGuard(1_000n, 600n);
      const reading = (roundId: bigint, answer: bigint) => ({ pair: "X/USD", address: address(9), roundId, answer, startedAt: 1n, updatedAt: 1n, answeredInRound: roundId, decimals: 8 });
      guard.accept("k", reading(1n, 1_000n), 0n);
      expect(guard.check("k", reading(2n, 900n), 600n)).to.equal(undefined);
      expect(guard.check("k", reading(2n, 899n), 600n)?.reason).to.equal("deviation");
      expect(guard.check("k", reading(2n, 899n), 601n)).to.equal(undefined);
    });

    it("de-peg guard: USDC/USD inside [0.98, 1.02] is 1:1, outside is refused while ETH still prices", async () => {
      for (const [answer, ok] of [
        [98_000_000n, true],
        [102_000_000n, true],
        [97_999_999n, false],
        [102_000_001n, false],
      ] as const) {
        const chain = fakeChain();
        chain.set("USDC/USD", answer);
        if (ok) expect((await chain.source.rate(CHAIN, "USDC", "USD")).rate).to.equal("1");
        else {
          const depeg = await problemOf(chain.source.rate(CHAIN, "USDC", "USD"));
          expect(depeg.extensions.reason).to.equal("depeg");
          expect(depeg.detail).to.contain("outside the peg band [0.98, 1.02]: nothing is priced in USDC until it returns");
          expect((await chain.source.rate(CHAIN, "ETH", "USD")).rate).to.equal("3000");
        }
      }
    });

    it("a missing feed says which one and how to configure it", async () => {
      const { source } = fakeChain();
      expect(source.canPrice(CHAIN, "BTC", "USD")).to.equal(false);
      expect(source.canPrice(CHAIN, "ETH", "EUR")).to.equal(true);
      const missing = await problemOf(source.rate(CHAIN, "BTC", "EUR"));
      expect(missing.extensions).to.deep.include({ pair: "BTC/EUR", reason: "not_configured" });
      expect(missing.detail).to.equal(`No fresh BTC/EUR rate on chain ${CHAIN}: no BTC/USD price feed is configured for chain ${CHAIN} (its operator sets CHAIN_${CHAIN}_PRICE_FEEDS, see docs/PRICES.md).`);
      const other = await problemOf(source.rate(1, "ETH", "USD"));
      expect(other.extensions.reason).to.equal("not_configured");
    });

    it("an unreadable feed is `unreachable`", async () => {
      const chain = fakeChain();
      chain.rounds.delete(address(3));
      const failed = await problemOf(chain.source.rate(CHAIN, "ETH", "EUR"));
      expect(failed.extensions).to.deep.include({ reason: "unreachable", pair: "ETH/EUR", feed: address(3) });
    });
  });

  describe("configuration", () => {
    it("reads CHAIN_<id>_PRICE_FEEDS over the deployment's feeds", () => {
      const parsed = parseFeedList("ETH/USD=0x694aa1769357215de4fac081bf1f309adc325306@3600, eur/usd=0x0000000000000000000000000000000000000003");
      expect(parsed.get("ETH/USD")).to.deep.equal({ pair: "ETH/USD", address: "0x694AA1769357215DE4FAC081bf1f309aDC325306", heartbeatSeconds: 3_600 });
      expect(parsed.get("EUR/USD")?.heartbeatSeconds).to.equal(3_600);
      expect(() => parseFeedList("ETH/USD=0x12")).to.throw(PriceFeedConfigError, /must look like ETH\/USD=0x<feed address>@3600/);
      const deployment = { priceFeeds: { "ETH/USD": { address: address(1), decimals: 8, heartbeatSeconds: 86_400 }, "BTC/USD": { address: address(5), decimals: 8, heartbeatSeconds: 86_400 } } };
      const feeds = loadPriceFeeds([{ id: 5, deployment: deployment as never }], { CHAIN_5_PRICE_FEEDS: `ETH/USD=${address(7)}@60` }).get(5)!;
      expect(feeds.get("ETH/USD")).to.deep.equal({ pair: "ETH/USD", address: address(7), heartbeatSeconds: 60 });
      expect(feeds.get("BTC/USD")?.address).to.equal(address(5));
    });
  });

  describe("Chainlink MockV3Aggregator on the in-process network", () => {
    it("reads latestRoundData and decimals, and follows updateAnswer / updateRoundData", async () => {
      const ethUsd = await ethers.deployContract("MockV3Aggregator", [8, 3_000n * 10n ** 8n]);
      const eurUsd = await ethers.deployContract("MockV3Aggregator", [8, 108_000_000n]);
      const client = createPublicClient({ transport: custom(hre.network.provider) }) as PublicClient;
      const runtime = { id: CHAIN, client, headBlock: () => client.getBlockNumber({ cacheTime: 0 }), caches: { tokens: new Map(), headTime: {} } } as unknown as ChainRuntime;
      const feeds = new Map<string, FeedConfig>([
        ["ETH/USD", { pair: "ETH/USD", address: (await ethUsd.getAddress()) as Address, heartbeatSeconds: 3_600 }],
        ["EUR/USD", { pair: "EUR/USD", address: (await eurUsd.getAddress()) as Address, heartbeatSeconds: 86_400 }],
      ]);
      const source = createPriceSource({ feeds: () => feeds, reader: chainlinkReader(new Map([[CHAIN, runtime]])), cacheMs: 0 });
      const first = await source.rate(CHAIN, "ETH", "EUR");
      expect(first.rate).to.equal("2777.777777777777777777");
      expect(first.feeds[0]).to.deep.include({ roundId: 1n, answer: 300_000_000_000n, decimals: 8 });
      await (await ethUsd.updateAnswer(3_100n * 10n ** 8n)).wait();
      const second = await source.rate(CHAIN, "ETH", "USD");
      expect(second.rate).to.equal("3100");
      expect(second.feeds[0].roundId).to.equal(2n);
      // A round published long ago: stale against the chain's clock.
      const latest = await client.getBlock();
      await (await ethUsd.updateRoundData(3n, 3_100n * 10n ** 8n, latest.timestamp - 3_700n, latest.timestamp - 3_700n)).wait();
      const stale = await problemOf(source.rate(CHAIN, "ETH", "USD"));
      expect(stale.extensions.reason).to.equal("stale");
      await (await ethUsd.updateAnswer(-5n)).wait();
      expect((await problemOf(source.rate(CHAIN, "ETH", "USD"))).extensions.reason).to.equal("non_positive");
    });
  });
});
