/**
 * The keeper moves money by rule with nobody asking: releases held payments once their hold is over, refunds
 * the ones whose `fulfillBy` passed unfulfilled or whose dispute expired, renews due subscriptions, and pays out
 * subscription income on the merchant's schedule — simulating every call first, so two keepers at once, or one
 * run again, never do a thing twice.
 */
import { expect } from "chai";
import type { Address } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { invoiceFromJson, type InvoiceJson as Terms } from "../../contracts/invoice";
import { createApiClient } from "../../scripts/lib/api-client";
import { runKeeperOnce, type KeeperAction } from "../../scripts/lib/keeper";
import { depositTests } from "./deposits";
import { createMerchant, invoicesOf, mintStablecoin, mockStablecoinAbi, payWithInstructions, startStack, testAccount, timeTravel, usdc, waitUntil, type InvoiceJson, type LocalChain, type Stack, type TestMerchant } from "./harness";

const DAY = 86_400;

describe("stack: the keeper", function () {
  this.timeout(300_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let token: Address;
  let read: ReturnType<typeof invoicesOf>["read"];
  let paid: (body: Record<string, unknown>) => Promise<InvoiceJson>;

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
    token = chain.deployment.contracts.MockStablecoin!.address;
    merchant = await createMerchant(stack, 1, "Keeper merchant");
    await mintStablecoin(chain, 4, usdc(10_000));
    const invoices = invoicesOf(stack, merchant, chain);
    read = invoices.read;
    paid = (body) => invoices.paid({ currency: "USDC", ...body });
  });
  after(async () => {
    await stack?.stop();
  });

  const keeper = (account = 8) =>
    runKeeperOnce({
      api: createApiClient(stack.apiUrl),
      adminKey: stack.adminKey,
      chains: [{ id: chain.id, rpcUrl: chain.rpcUrl, client: chain.client }],
      account: testAccount(account),
      maxGasPerRun: 10_000_000n,
      log: () => undefined,
    });
  const done = (actions: KeeperAction[], label: string) => actions.filter((action) => action.label.startsWith(label) && action.hash && !action.skipped);
  const balance = async (holder: Address) => (await chain.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [holder] })) as bigint;
  /** Lets the indexer and the API's head cache see the latest block before asking for work. */
  const settled = () => new Promise((resolve) => setTimeout(resolve, 800));

  it("releases a held payment only once its hold is over, to the payout address", async () => {
    const invoice = await paid({ amount: "30.00", holdSeconds: DAY });
    await settled();
    expect(done(await keeper(), `release ${invoice.id}`)).to.have.length(0);
    await timeTravel(chain, DAY + 1);
    await settled();
    const before = await balance(merchant.payout);
    const actions = await keeper();
    const [release] = done(actions, `release ${invoice.id}`);
    expect(release.reason).to.match(/^hold ended/);
    expect(release.gasUsed).to.be.greaterThan(0n);
    expect((await balance(merchant.payout)) - before).to.equal(usdc(30));
    await waitUntil("released", async () => (await read(invoice.id)).status === "released");
  });

  it("refunds a payment whose fulfillBy passed unfulfilled, and one whose dispute expired, without the merchant", async () => {
    const now = Number((await chain.client.getBlock()).timestamp);
    const unfulfilled = await paid({ amount: "5.00", fulfillBy: new Date((now + 2 * DAY) * 1000).toISOString() });
    const disputed = await paid({ amount: "6.00", holdSeconds: DAY });
    const dispute = await chain.wallet(4).writeContract({ address: disputed.payment.evm!.contract as Address, abi: billingEscrowAbi, functionName: "dispute", args: [invoiceFromJson(disputed.payment.evm!.invoice as Terms)], chain: null });
    await chain.client.waitForTransactionReceipt({ hash: dispute });
    // Past fulfillBy, the hold and the 7-day dispute period.
    await timeTravel(chain, 9 * DAY);
    await settled();
    const payerBefore = await balance(testAccount(4).address);
    const actions = await keeper();
    expect(done(actions, `refund (missed fulfillBy) ${unfulfilled.id}`)).to.have.length(1);
    expect(done(actions, `refund (expired dispute) ${disputed.id}`)).to.have.length(1);
    expect((await balance(testAccount(4).address)) - payerBefore).to.equal(usdc(11));
    await waitUntil("both refunded", async () => (await read(unfulfilled.id)).status === "refunded" && (await read(disputed.id)).status === "refunded");
  });

  it("renews due subscriptions and pays subscription income out on the merchant's schedule", async () => {
    const schedule = await stack.api("PATCH", "/v1/merchants/me", { key: merchant.apiKey, body: { subscriptionPayoutIntervalSeconds: DAY } });
    expect(schedule.status, await schedule.clone().text()).to.equal(200);
    const plan = (await (await stack.api("POST", "/v1/plans", { key: merchant.apiKey, body: { chainId: chain.id, currency: "USDC", amount: "10.00", periodSeconds: 30 * DAY } })).json()) as {
      subscribe: { transactions: { to: string; data: string; value: string }[] };
    };
    await payWithInstructions(chain, 4, plan.subscribe.transactions);
    await timeTravel(chain, 30 * DAY + 1);
    await settled();
    const payoutBefore = await balance(merchant.payout);
    const actions = await keeper();
    expect(done(actions, "renew")).to.have.length(1);
    const [payout] = done(actions, "pay out subscription income");
    expect(payout, JSON.stringify(actions.map((action) => [action.label, action.skipped]))).to.not.equal(undefined);
    // The first period is earned in full; the renewal's period has just begun.
    expect((await balance(merchant.payout)) - payoutBefore).to.be.at.least(usdc(10));
    await waitUntil("the renewal and the withdrawal indexed", async () => {
      const payouts = (await (await stack.api("GET", "/v1/payouts", { key: merchant.apiKey })).json()) as { data: { kind: string; transactionHash: string }[] };
      return payouts.data.some((item) => item.kind === "withdrawal" && item.transactionHash === payout.hash);
    });
    // Within the schedule, nothing more is paid out.
    await settled();
    expect(done(await keeper(), "pay out subscription income")).to.have.length(0);
  });

  it("two keepers at once do each piece of work once; a run with nothing due sends nothing", async () => {
    const invoices = [await paid({ amount: "1.00" }), await paid({ amount: "2.00" }), await paid({ amount: "3.00" })];
    await settled();
    const before = await balance(merchant.payout);
    const [first, second] = await Promise.all([keeper(8), keeper(9)]);
    for (const invoice of invoices) {
      const sent = [...done(first, `release ${invoice.id}`), ...done(second, `release ${invoice.id}`)];
      expect(sent, invoice.id).to.have.length(1);
    }
    expect((await balance(merchant.payout)) - before).to.equal(usdc(6));
    await waitUntil("released", async () => (await Promise.all(invoices.map((invoice) => read(invoice.id)))).every((invoice) => invoice.status === "released"));
    await settled();
    const again = await keeper();
    expect(again.filter((action) => action.hash)).to.deep.equal([]);
  });
  depositTests(() => ({ stack, chain, merchant, keeper: () => keeper() }));
});
