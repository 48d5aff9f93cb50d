/**
 * Repricing of plans priced in fiat (api/subscriptions/fiat.ts): the threshold at its boundary, the subscriber
 * cap's buffer, and the decision against a price source fed by a fake chain — a move beyond the threshold
 * reprices, one within it keeps the price, a stale, deviating or de-pegged rate changes nothing.
 */
import { expect } from "chai";
import { getAddress, type Address } from "viem";
import { fiatToUnits } from "../../api/prices/math";
import { createPriceSource, type FeedReader } from "../../api/prices/source";
import type { FeedConfig, FeedRound } from "../../api/prices/types";
import { decideReprice, maxPriceFor, needsReprice, REPRICE_THRESHOLD_BPS } from "../../api/subscriptions/fiat";

const CHAIN = 31337;
const NOW = 1_800_000_000n;
const address = (n: number) => getAddress(`0x${n.toString(16).padStart(40, "0")}`) as Address;
const FEEDS = new Map<string, FeedConfig>([
  ["USDC/USD", { pair: "USDC/USD", address: address(2), heartbeatSeconds: 86_400 }],
  ["EUR/USD", { pair: "EUR/USD", address: address(3), heartbeatSeconds: 86_400 }],
]);

function fakeSource() {
  const rounds = new Map<string, FeedRound>();
  let round = 1n;
  const clock = { now: NOW };
  const set = (pair: string, answer: bigint, updatedAt = clock.now) => {
    round += 1n;
    rounds.set(FEEDS.get(pair)!.address, { roundId: round, answer, startedAt: updatedAt, updatedAt, answeredInRound: round, decimals: 8 });
  };
  const reader: FeedReader = {
    async read(_chainId, feed) {
      const found = rounds.get(feed.address);
      if (!found) throw new Error("no such feed");
      return found;
    },
    now: async () => clock.now,
  };
  return { set, clock, source: createPriceSource({ feeds: () => FEEDS, reader, cacheMs: 0 }) };
}

describe("fiat plans: repricing decision", () => {
  it("reprices only beyond 0.5% of the on-chain price (exactly 0.5% keeps it), either way", () => {
    expect(REPRICE_THRESHOLD_BPS).to.equal(50n);
    expect(needsReprice(1_000_000n, 1_005_000n)).to.equal(false);
    expect(needsReprice(1_000_000n, 1_005_001n)).to.equal(true);
    expect(needsReprice(1_000_000n, 995_000n)).to.equal(false);
    expect(needsReprice(1_000_000n, 994_999n)).to.equal(true);
    expect(needsReprice(1_000_000n, 1_000_000n)).to.equal(false);
    expect(needsReprice(1_000_000n, 1_000_001n, 0n)).to.equal(true);
  });

  it("suggests a cap of the price + 20%, rounded up", () => {
    expect(maxPriceFor(10_000_000n)).to.equal(12_000_000n);
    expect(maxPriceFor(9_720_001n)).to.equal(11_664_002n); // 11,664,001.2 → up
    expect(maxPriceFor(1n)).to.equal(2n);
  });

  it("converts the fiat price at the current rate: keep within the threshold, reprice beyond it", async () => {
    const { set, source } = fakeSource();
    set("USDC/USD", 100_000_000n);
    set("EUR/USD", 108_000_000n);
    const plan = { chainId: CHAIN, payCurrency: "USDC", decimals: 6, fiatCurrency: "EUR" as const, fiatMinor: 900n };
    const first = await decideReprice(source, { ...plan, onchainPrice: 0n });
    expect(first.action).to.equal("reprice");
    if (first.action === "unavailable") throw new Error("unreachable");
    expect(first.target).to.equal(fiatToUnits(900n, "0.925925925925925925", 6));
    expect(first.price).to.include({ fiatCurrency: "EUR", fiatAmount: "9.00", rate: "0.925925925925925925" });
    expect(first.price.lockedUntil).to.equal(undefined);

    // EUR/USD 1.08 → 1.085 (+0.46%): within the threshold.
    set("EUR/USD", 108_500_000n);
    const small = await decideReprice(source, { ...plan, onchainPrice: first.target });
    expect(small.action).to.equal("keep");

    // 1.08 → 1.17 (+8.3%): reprice to 9 EUR at 1/1.17 USDC.
    set("EUR/USD", 117_000_000n);
    const moved = await decideReprice(source, { ...plan, onchainPrice: first.target });
    expect(moved.action).to.equal("reprice");
    if (moved.action === "unavailable") throw new Error("unreachable");
    expect(moved.target).to.equal(fiatToUnits(900n, moved.price.rate, 6));
    expect(moved.target > first.target).to.equal(true);
  });

  it("never reprices on a stale, deviating or de-pegged rate: unavailable, with the reason", async () => {
    const { set, clock, source } = fakeSource();
    set("USDC/USD", 100_000_000n);
    set("EUR/USD", 108_000_000n);
    const plan = { chainId: CHAIN, payCurrency: "USDC", decimals: 6, fiatCurrency: "EUR" as const, fiatMinor: 900n, onchainPrice: 9_720_001n };
    expect((await decideReprice(source, plan)).action).to.equal("keep");

    // Stale: the EUR/USD answer moved but is older than heartbeat + 60 s.
    set("EUR/USD", 117_000_000n, clock.now - 86_461n);
    const stale = await decideReprice(source, plan);
    expect(stale.action).to.equal("unavailable");
    if (stale.action !== "unavailable") throw new Error("unreachable");
    expect(stale.detail).to.contain("stale");

    // Deviation: +20% within 10 minutes of the last accepted answer.
    set("EUR/USD", 129_600_000n);
    const jump = await decideReprice(source, plan);
    expect(jump.action).to.equal("unavailable");
    if (jump.action !== "unavailable") throw new Error("unreachable");
    expect(jump.detail).to.contain("moved 20%");

    // De-peg of the paying coin.
    clock.now += 601n;
    set("EUR/USD", 108_000_000n);
    set("USDC/USD", 97_000_000n);
    const depeg = await decideReprice(source, plan);
    expect(depeg.action).to.equal("unavailable");
    if (depeg.action !== "unavailable") throw new Error("unreachable");
    expect(depeg.detail).to.contain("peg band");
  });
});
