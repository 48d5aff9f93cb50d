/**
 * Plans priced in fiat through the real stack (one Hardhat node with the deploy's MockV3Aggregator feeds, Ponder,
 * the API with its repricer every 300 ms): a "9.00 EUR / 30 days" plan paid in USDC created at the current rate
 * (rounded up), a wallet subscribing with the API's instructions (cap = price + 20%), EUR/USD moving 1.08 → 1.17
 * and the repricer sending setPlanPrice, a renewal charged at the new price, a stale feed that changes nothing,
 * and the refusals (fiat without payCurrency, BTC, ETH). Subscriptions charge ERC-20 tokens only, so the plan is
 * paid in USDC and the rate that moves is EUR's (USDC counts as 1 USD while pegged).
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { parseAbi, parseEventLogs, type Address, type Hex } from "viem";
import { subscriptionManagerAbi } from "../../contracts/abi";
import { divide, feedFraction, fiatToUnits, rateText } from "../../api/prices/math";
import { maxPriceFor } from "../../api/subscriptions/fiat";
import { createMerchant, mintStablecoin, startStack, usdc, waitUntil, type LocalChain, type Stack, type TestMerchant } from "./harness";

const MONTH = 30 * 86_400;
const SUBSCRIBER = 5;
const KEEPER = 7;
const feedAbi = parseAbi([
  "function updateAnswer(int256 answer)",
  "function updateRoundData(uint80 roundId, int256 answer, uint256 timestamp, uint256 startedAt)",
  "function latestRound() view returns (uint256)",
]);

interface Transaction {
  to: Address;
  data: Hex;
  value: string;
}
interface PlanBody {
  id: string;
  planId: number;
  currency: string;
  amount: string;
  amountBaseUnits: string;
  price: {
    currency: string;
    amount: string;
    rate: { fiatCurrency: string; fiatAmount: string | null; rate: string; source: string; feeds: { roundId: string }[] };
    checkedAt: string | null;
    rateUnavailable: string | null;
    repriceThresholdBps: number;
  } | null;
  subscribe: { maxPrice: string; maxPriceBaseUnits: string; transactions: (Transaction & { description: string })[] };
}
interface Problem {
  status: number;
  errors?: { field: string; message: string }[];
}

/** USDC per EUR when EUR/USD answers `answer` (8 decimals) and USDC is pegged: 1 ÷ EUR/USD. */
const usdcPerEur = (answer: bigint) => rateText(divide({ numerator: 1n, denominator: 1n }, feedFraction(answer, 8)));

describe("stack: plans priced in fiat", function () {
  this.timeout(240_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let plan: PlanBody;
  let subscriptionId: bigint;
  const firstPrice = fiatToUnits(900n, usdcPerEur(108_000_000n), 6);
  const secondPrice = fiatToUnits(900n, usdcPerEur(117_000_000n), 6);

  const api = async <T>(method: string, route: string, body?: unknown) => {
    const response = await stack.api(method, route, { key: merchant.apiKey, body, headers: method === "POST" ? { "Idempotency-Key": randomUUID() } : {} });
    return { status: response.status, body: (await response.json()) as T };
  };
  const onchainPrice = async () =>
    (await chain.client.readContract({ address: chain.deployment.contracts.SubscriptionManager.address, abi: subscriptionManagerAbi, functionName: "plan", args: [plan.planId] })).price;
  const feed = (pair: string) => chain.deployment.priceFeeds![pair].address;
  async function write(args: { address: Address; functionName: "updateAnswer" | "updateRoundData"; args: readonly bigint[] }) {
    const hash = await chain.wallet(0).writeContract({ address: args.address, abi: feedAbi, functionName: args.functionName, args: args.args as never, chain: null });
    await chain.client.waitForTransactionReceipt({ hash });
  }
  async function send(index: number, transaction: Transaction): Promise<Hex> {
    const hash = await chain.wallet(index).sendTransaction({ to: transaction.to, data: transaction.data, value: BigInt(transaction.value), chain: null });
    const receipt = await chain.client.waitForTransactionReceipt({ hash });
    expect(receipt.status).to.equal("success");
    return hash;
  }

  before(async () => {
    stack = await startStack({ env: { PLAN_REPRICE_INTERVAL_MS: "300" } });
    chain = stack.chains[0];
    merchant = await createMerchant(stack, 1, "Fiat plans merchant");
  });
  after(async () => {
    await stack?.stop();
  });

  it("creates a plan priced in EUR and paid in USDC at the current rate, rounded up, with the rate recorded", async () => {
    const created = await api<PlanBody>("POST", "/v1/plans", { chainId: chain.id, currency: "EUR", amount: "9.00", payCurrency: "USDC", periodSeconds: MONTH });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    plan = created.body;
    expect(usdcPerEur(108_000_000n)).to.equal("0.925925925925925925");
    expect(plan.currency).to.equal("USDC");
    expect(plan.amountBaseUnits).to.equal(firstPrice.toString());
    expect(firstPrice).to.equal(9_720_001n); // 9.72000000000000000… USDC, rounded up to the smallest unit
    expect(await onchainPrice()).to.equal(firstPrice);
    expect(plan.price).to.deep.include({ currency: "EUR", amount: "9.00", rateUnavailable: null, repriceThresholdBps: 50 });
    expect(plan.price!.rate).to.include({ fiatCurrency: "EUR", fiatAmount: "9.00", rate: "0.925925925925925925", source: "chainlink:USDC/USD(peg 1:1)÷EUR/USD" });
    expect(plan.price!.rate.feeds).to.have.length(2);
    // The subscriber's cap leaves room for rate moves: today's price + 20%.
    expect(plan.subscribe.maxPriceBaseUnits).to.equal(maxPriceFor(firstPrice).toString());
    expect(plan.subscribe.maxPriceBaseUnits).to.equal("11664002");
    expect(plan.subscribe.transactions[1].description).to.contain("+ 20%");

    const listed = await api<{ data: PlanBody[] }>("GET", "/v1/plans");
    await waitUntil("the plan to be listed", async () => (await api<{ data: PlanBody[] }>("GET", "/v1/plans")).body.data.some((entry) => entry.id === plan.id), 20_000);
    expect(listed.status).to.equal(200);
    const shown = await api<PlanBody>("GET", `/v1/plans/${plan.id}`);
    expect(shown.body.price?.amount).to.equal("9.00");
  });

  it("refuses a fiat plan without payCurrency, and BTC or ETH as the paying currency (422)", async () => {
    const base = { chainId: chain.id, amount: "9.00", periodSeconds: MONTH };
    const cases: [Record<string, unknown>, string, string][] = [
      [{ ...base, currency: "USD" }, "payCurrency", "is required with a fiat currency"],
      [{ ...base, currency: "USD", payCurrency: "BTC" }, "payCurrency", "BTC cannot pay a plan"],
      [{ ...base, currency: "BTC" }, "currency", "BTC cannot pay a plan"],
      [{ ...base, currency: "EUR", payCurrency: "ETH" }, "payCurrency", "ERC-20 tokens only"],
      [{ ...base, currency: "USDC", payCurrency: "USDC" }, "payCurrency", "goes with a fiat currency"],
      [{ ...base, currency: "USD", payCurrency: "USDC", amount: "9.001" }, "amount", ""],
    ];
    for (const [body, field, message] of cases) {
      const response = await api<Problem>("POST", "/v1/plans", body);
      expect(response.status, JSON.stringify(body)).to.equal(422);
      expect(response.body.errors?.[0].field, JSON.stringify(response.body)).to.equal(field);
      expect(response.body.errors?.[0].message).to.contain(message);
    }
  });

  it("a wallet subscribes with the returned transactions, capped at the price + 20%", async () => {
    await mintStablecoin(chain, SUBSCRIBER, usdc(1_000));
    const [approve, subscribe] = plan.subscribe.transactions;
    await send(SUBSCRIBER, approve);
    const receipt = await chain.client.getTransactionReceipt({ hash: await send(SUBSCRIBER, subscribe) });
    const [created] = parseEventLogs({ abi: subscriptionManagerAbi, eventName: "SubscriptionCreated", logs: receipt.logs });
    subscriptionId = created.args.subscriptionId;
    const onchain = await chain.client.readContract({ address: chain.deployment.contracts.SubscriptionManager.address, abi: subscriptionManagerAbi, functionName: "subscription", args: [subscriptionId] });
    expect(onchain.maxPrice).to.equal(maxPriceFor(firstPrice));
  });

  it("follows EUR/USD 1.08 → 1.17: the repricer sets the new token price on-chain and records the rate", async () => {
    await write({ address: feed("EUR/USD"), functionName: "updateAnswer", args: [117_000_000n] });
    await waitUntil("the plan to be repriced on-chain", async () => (await onchainPrice()) === secondPrice, 20_000);
    expect(secondPrice).to.equal(10_530_001n);
    await waitUntil("the new rate to be shown", async () => (await api<PlanBody>("GET", `/v1/plans/${plan.id}`)).body.amountBaseUnits === secondPrice.toString(), 20_000);
    const shown = (await api<PlanBody>("GET", `/v1/plans/${plan.id}`)).body;
    expect(shown.price!.rate.rate).to.equal(usdcPerEur(117_000_000n));
    expect(shown.price!.amount).to.equal("9.00");
    expect(shown.subscribe.maxPriceBaseUnits).to.equal(maxPriceFor(secondPrice).toString());
  });

  it("after a period, the renewal charges the new price (within the subscriber's cap)", async () => {
    await chain.client.request({ method: "evm_increaseTime", params: [MONTH + 60] } as never);
    await chain.client.request({ method: "evm_mine", params: [] } as never);
    const hash = await chain.wallet(KEEPER).writeContract({
      address: chain.deployment.contracts.SubscriptionManager.address,
      abi: subscriptionManagerAbi,
      functionName: "renew",
      args: [[subscriptionId]],
      chain: null,
    });
    const receipt = await chain.client.waitForTransactionReceipt({ hash });
    const charged = parseEventLogs({ abi: subscriptionManagerAbi, logs: receipt.logs }).filter((log) => log.eventName === "SubscriptionCharged");
    expect(charged.length, "a charge event").to.be.greaterThan(0);
    const id = `sub_${chain.id}_${subscriptionId}`;
    let amounts: string[] = [];
    await waitUntil("the renewal to be indexed", async () => {
      const response = await api<{ data: { amountBaseUnits: string }[] }>("GET", `/v1/subscriptions/${id}/charges`);
      amounts = response.status === 200 ? response.body.data.map((charge) => charge.amountBaseUnits) : [];
      return amounts.length === 2;
    }, 20_000);
    expect(amounts).to.deep.equal([firstPrice.toString(), secondPrice.toString()]);
  });

  it("a stale feed changes nothing: the old price stays and the plan says why", async () => {
    // A month later every feed is past its one-day heartbeat; a new but stale EUR/USD answer must not count either.
    const now = (await chain.client.getBlock()).timestamp;
    const round = (await chain.client.readContract({ address: feed("EUR/USD"), abi: feedAbi, functionName: "latestRound" })) + 1n;
    await write({ address: feed("EUR/USD"), functionName: "updateRoundData", args: [round, 125_000_000n, now - 2n * 86_400n, now - 2n * 86_400n] });
    const after = Date.now();
    await waitUntil("a repricing check after the stale answer", async () => {
      const shown = (await api<PlanBody>("GET", `/v1/plans/${plan.id}`)).body;
      return shown.price?.checkedAt !== null && Date.parse(shown.price!.checkedAt!) > after + 300 && shown.price!.rateUnavailable !== null;
    }, 20_000);
    const shown = (await api<PlanBody>("GET", `/v1/plans/${plan.id}`)).body;
    expect(shown.price!.rateUnavailable).to.contain("stale");
    expect(shown.price!.rate.rate).to.equal(usdcPerEur(117_000_000n));
    expect(await onchainPrice()).to.equal(secondPrice);
  });
});
