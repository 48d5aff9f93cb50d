/**
 * Plans and subscriptions through the real stack: a plan created over HTTP (sent on-chain with the operator
 * key), wallets subscribing with nothing but the transactions the API returned, renewals after time travel,
 * a past-due renewal, a merchant cancel with its refund, plan changes, listing and isolation between merchants.
 */
import { expect } from "chai";
import { parseEventLogs, type Address, type Hex } from "viem";
import { subscriptionManagerAbi } from "../../contracts/abi";
import { createMerchant, startStack, waitUntil, type LocalChain, type Stack, type TestMerchant, mockStablecoinAbi, usdc } from "./harness";

const MONTH = 30 * 86_400;
const GRACE = 3 * 86_400;

interface Transaction {
  to: Address;
  data: Hex;
  value: string;
}
interface PlanBody {
  id: string;
  planId: number;
  token: Address;
  currency: string;
  amount: string;
  amountBaseUnits: string;
  periodSeconds: number;
  trialSeconds: number;
  gracePeriodSeconds: number;
  active: boolean;
  transactionHash: Hex;
  subscribe: { maxPriceBaseUnits: string; transactions: Transaction[] };
}
interface SubscriptionBody {
  id: string;
  status: string;
  subscriber: Address;
  plan: { id: string; amount: string } | null;
  maxPrice: string;
  maxPriceBaseUnits: string;
  currentPeriodStart: string | null;
  currentPeriodEnd: string | null;
  nextChargeAt: string | null;
  nextChargeAmount: string | null;
  retryUntil: string | null;
  lastFailure: string | null;
  chargeCount: number;
  canceledAt: string | null;
}
interface ChargeBody {
  kind: string;
  amount: string;
  amountBaseUnits: string;
  periodStart: string;
  periodEnd: string;
  transactionHash: Hex;
}

describe("stack: plans and subscriptions", function () {
  this.timeout(240_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let plan: PlanBody;
  let paying: string; // subscription that keeps its allowance
  let revoked: string; // subscription whose wallet withdraws its allowance
  const SUBSCRIBER = 5;
  const REVOKER = 6;
  const KEEPER = 7;

  const api = async <T>(method: string, route: string, body?: unknown, headers?: Record<string, string>) => {
    const response = await stack.api(method, route, { key: merchant.apiKey, body, headers });
    return { status: response.status, headers: response.headers, body: (await response.json()) as T };
  };

  async function send(walletIndex: number, transaction: Transaction): Promise<Hex> {
    const hash = await chain.wallet(walletIndex).sendTransaction({ to: transaction.to, data: transaction.data, value: BigInt(transaction.value), chain: null });
    const receipt = await chain.client.waitForTransactionReceipt({ hash });
    expect(receipt.status).to.equal("success");
    return hash;
  }

  async function mint(walletIndex: number, amount: bigint) {
    const wallet = chain.wallet(walletIndex);
    const hash = await wallet.writeContract({
      address: chain.deployment.contracts.MockStablecoin!.address,
      abi: mockStablecoinAbi,
      functionName: "mint",
      args: [wallet.account.address, amount],
      chain: null,
    });
    await chain.client.waitForTransactionReceipt({ hash });
  }

  /** Subscribes wallet `index` with the plan's ready transactions; returns the public subscription id. */
  async function subscribe(index: number): Promise<string> {
    const [approve, subscribeTx] = plan.subscribe.transactions;
    await send(index, approve);
    const hash = await send(index, subscribeTx);
    const receipt = await chain.client.getTransactionReceipt({ hash });
    const [created] = parseEventLogs({ abi: subscriptionManagerAbi, eventName: "SubscriptionCreated", logs: receipt.logs });
    return `sub_${chain.id}_${created.args.subscriptionId}`;
  }

  async function waitForSubscription(id: string, ready: (body: SubscriptionBody) => boolean): Promise<SubscriptionBody> {
    let last: SubscriptionBody | undefined;
    await waitUntil(`${id} to be indexed as expected`, async () => {
      const response = await api<SubscriptionBody>("GET", `/v1/subscriptions/${id}`);
      if (response.status !== 200) return false;
      last = response.body;
      return ready(response.body);
    }, 20_000);
    return last!;
  }

  async function timeTravel(seconds: number) {
    await chain.client.request({ method: "evm_increaseTime", params: [seconds] } as never);
    // One block only: Ponder's live indexing does not survive several blocks mined at once.
    await chain.client.request({ method: "evm_mine", params: [] } as never);
  }

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
    merchant = await createMerchant(stack, 1, "Subscriptions merchant");
  });
  after(async () => {
    await stack?.stop();
  });

  it("creates a plan on-chain over HTTP and returns the subscriber's transactions", async () => {
    const created = await api<PlanBody>("POST", "/v1/plans", { chainId: chain.id, currency: "USDC", amount: "10.00", periodSeconds: MONTH, gracePeriodSeconds: GRACE });
    expect(created.status, JSON.stringify(created.body)).to.equal(201);
    plan = created.body;
    expect(plan.id).to.equal(`plan_${chain.id}_${plan.planId}`);
    expect(plan).to.include({ currency: "USDC", amount: "10.00", amountBaseUnits: "10000000", periodSeconds: MONTH, trialSeconds: 0, gracePeriodSeconds: GRACE, active: true });
    expect(plan.token).to.equal(chain.deployment.contracts.MockStablecoin!.address);
    expect(plan.transactionHash).to.match(/^0x[0-9a-f]{64}$/);
    const [approve, subscribeTx] = plan.subscribe.transactions;
    expect(approve.to).to.equal(plan.token);
    expect(subscribeTx.to).to.equal(chain.deployment.contracts.SubscriptionManager.address);
    expect(plan.subscribe.maxPriceBaseUnits).to.equal("10000000");

    const onchain = await chain.client.readContract({ address: chain.deployment.contracts.SubscriptionManager.address, abi: subscriptionManagerAbi, functionName: "plan", args: [plan.planId] });
    expect(onchain.merchantId).to.equal(merchant.onchainIds.get(chain.id));
    expect(onchain.price).to.equal(usdc(10));

    await waitUntil("the plan to be listed", async () => {
      const listed = await api<{ data: PlanBody[] }>("GET", "/v1/plans");
      return listed.body.data.some((candidate) => candidate.id === plan.id && candidate.transactionHash === plan.transactionHash);
    }, 20_000);
  });

  it("refuses ETH, unknown currencies, too precise amounts and a grace period longer than the period", async () => {
    const base = { chainId: chain.id, currency: "USDC", amount: "10.00", periodSeconds: MONTH };
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ...base, currency: "ETH" }, "currency", /ERC-20/],
      [{ ...base, currency: "DOGE" }, "currency", /not a currency/],
      [{ ...base, amount: "1.0000001" }, "amount", /decimal places/],
      [{ ...base, amount: "0" }, "amount", /greater than zero/],
      [{ ...base, gracePeriodSeconds: MONTH + 1 }, "gracePeriodSeconds", /periodSeconds/],
      [{ ...base, chainId: 999 }, "chainId", /unknown chain/],
      [{ ...base, periodSeconds: 0 }, "periodSeconds", /./],
    ];
    for (const [body, field, message] of cases) {
      const response = await stack.api("POST", "/v1/plans", { key: merchant.apiKey, body });
      expect(response.status, JSON.stringify(body)).to.equal(422);
      expect(response.headers.get("content-type")).to.contain("application/problem+json");
      const problem = (await response.json()) as { errors: { field: string; message: string }[] };
      const error = problem.errors.find((candidate) => candidate.field === field);
      expect(error, JSON.stringify(problem)).to.not.equal(undefined);
      expect(error!.message).to.match(message);
    }
  });

  it("replays a plan creation sent again with the same Idempotency-Key instead of creating a second plan", async () => {
    const body = { chainId: chain.id, currency: "USDC", amount: "99.00", periodSeconds: 7 * 86_400 };
    const headers = { "idempotency-key": `plan-${Date.now()}` };
    const first = await api<PlanBody>("POST", "/v1/plans", body, headers);
    const second = await api<PlanBody>("POST", "/v1/plans", body, headers);
    expect(first.status).to.equal(201);
    expect(second.status).to.equal(201);
    expect(second.headers.get("idempotent-replayed")).to.equal("true");
    expect(second.body.id).to.equal(first.body.id);
    expect(first.body.gracePeriodSeconds).to.equal(3 * 86_400);
    const reused = await api<unknown>("POST", "/v1/plans", { ...body, amount: "98.00" }, headers);
    expect(reused.status).to.equal(409);
  });

  it("a wallet subscribes with only the returned transactions: active, with its first charge", async () => {
    await mint(SUBSCRIBER, usdc(1_000));
    paying = await subscribe(SUBSCRIBER);
    const subscription = await waitForSubscription(paying, (body) => body.status === "active");
    expect(subscription.subscriber).to.equal(chain.wallet(SUBSCRIBER).account.address);
    expect(subscription.plan?.id).to.equal(plan.id);
    expect(subscription).to.include({ maxPrice: "10.00", maxPriceBaseUnits: "10000000", nextChargeAmount: "10.00", chargeCount: 1 });
    const start = Date.parse(subscription.currentPeriodStart!);
    const end = Date.parse(subscription.currentPeriodEnd!);
    expect(end - start).to.equal(MONTH * 1000);
    expect(subscription.nextChargeAt).to.equal(subscription.currentPeriodEnd);

    const charges = await api<{ data: ChargeBody[] }>("GET", `/v1/subscriptions/${paying}/charges`);
    expect(charges.status).to.equal(200);
    expect(charges.body.data).to.have.length(1);
    expect(charges.body.data[0]).to.include({ kind: "initial", amount: "10.00", amountBaseUnits: "10000000" });
  });

  it("a second wallet subscribes and then withdraws its allowance", async () => {
    await mint(REVOKER, usdc(1_000));
    revoked = await subscribe(REVOKER);
    await waitForSubscription(revoked, (body) => body.status === "active");
    const wallet = chain.wallet(REVOKER);
    const hash = await wallet.writeContract({
      address: plan.token,
      abi: mockStablecoinAbi,
      functionName: "approve",
      args: [chain.deployment.contracts.SubscriptionManager.address, 0n],
      chain: null,
    });
    await chain.client.waitForTransactionReceipt({ hash });
  });

  it("after a period, renew from any wallet charges again; the wallet without allowance goes past_due", async () => {
    const before = await waitForSubscription(paying, () => true);
    await timeTravel(MONTH + 60);
    const ids = [paying, revoked].map((id) => BigInt(id.split("_")[2]));
    const hash = await chain.wallet(KEEPER).writeContract({
      address: chain.deployment.contracts.SubscriptionManager.address,
      abi: subscriptionManagerAbi,
      functionName: "renew",
      args: [ids],
      chain: null,
    });
    await chain.client.waitForTransactionReceipt({ hash });

    const renewed = await waitForSubscription(paying, (body) => body.chargeCount === 2);
    expect(renewed.status).to.equal("active");
    // Within the grace period the billing anchor is kept: the new period starts where the old one ended.
    expect(renewed.currentPeriodStart).to.equal(before.currentPeriodEnd);
    const charges = await api<{ data: ChargeBody[] }>("GET", `/v1/subscriptions/${paying}/charges`);
    expect(charges.body.data.map((charge) => charge.kind)).to.deep.equal(["initial", "renewal"]);
    expect(charges.body.data[1]).to.include({ amount: "10.00", periodStart: before.currentPeriodEnd, transactionHash: hash });

    const pastDue = await waitForSubscription(revoked, (body) => body.status === "past_due");
    expect(pastDue.lastFailure).to.equal("transfer_failed");
    expect(pastDue.chargeCount).to.equal(1);
    expect(Date.parse(pastDue.retryUntil!)).to.equal(Date.parse(pastDue.currentPeriodEnd!) + GRACE * 1000);
    expect(pastDue.nextChargeAt).to.equal(pastDue.currentPeriodEnd);
  });

  it("lists subscriptions with filters and cursor pagination", async () => {
    const first = await api<{ data: SubscriptionBody[]; nextCursor: string | null }>("GET", "/v1/subscriptions?limit=1");
    expect(first.status).to.equal(200);
    expect(first.body.data.map((subscription) => subscription.id)).to.deep.equal([paying]);
    expect(first.body.nextCursor).to.be.a("string");
    const second = await api<{ data: SubscriptionBody[]; nextCursor: string | null }>("GET", `/v1/subscriptions?limit=1&cursor=${first.body.nextCursor}`);
    expect(second.body.data.map((subscription) => subscription.id)).to.deep.equal([revoked]);
    expect(second.body.nextCursor).to.equal(null);

    const pastDue = await api<{ data: SubscriptionBody[] }>("GET", "/v1/subscriptions?status=past_due");
    expect(pastDue.body.data.map((subscription) => subscription.id)).to.deep.equal([revoked]);
    const bySubscriber = await api<{ data: SubscriptionBody[] }>("GET", `/v1/subscriptions?subscriber=${chain.wallet(SUBSCRIBER).account.address}`);
    expect(bySubscriber.body.data.map((subscription) => subscription.id)).to.deep.equal([paying]);
    const byPlan = await api<{ data: SubscriptionBody[] }>("GET", `/v1/subscriptions?planId=${plan.id}`);
    expect(byPlan.body.data).to.have.length(2);

    for (const query of ["cursor=nonsense!", "status=paused", "planId=plan_x", "subscriber=0x123"]) {
      const response = await stack.api("GET", `/v1/subscriptions?${query}`, { key: merchant.apiKey });
      expect(response.status, query).to.equal(422);
    }
  });

  it("merchant cancel over HTTP refunds the unearned part and shows the subscription canceled", async () => {
    const subscriber = chain.wallet(SUBSCRIBER).account.address;
    const balanceBefore = (await chain.client.readContract({ address: plan.token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [subscriber] })) as bigint;
    const canceled = await api<{ id: string; status: string; transactionHash: Hex; refunded: string; refundedBaseUnits: string; earnedBaseUnits: string; canceledAt: string }>(
      "POST",
      `/v1/subscriptions/${paying}/cancel`,
    );
    expect(canceled.status, JSON.stringify(canceled.body)).to.equal(202);
    expect(canceled.body).to.include({ id: paying, status: "canceled" });

    const receipt = await chain.client.getTransactionReceipt({ hash: canceled.body.transactionHash });
    const [event] = parseEventLogs({ abi: subscriptionManagerAbi, eventName: "SubscriptionCanceled", logs: receipt.logs });
    expect(event.args.canceledBy).to.equal(merchant.operator);
    const refunded = BigInt(canceled.body.refundedBaseUnits);
    expect(refunded).to.equal(event.args.refunded);
    // Early in the second period: nearly all of it comes back, never more than the period's price.
    expect(refunded > usdc(9) && refunded <= usdc(10)).to.equal(true);
    expect(refunded + BigInt(canceled.body.earnedBaseUnits)).to.equal(usdc(10));
    const balanceAfter = (await chain.client.readContract({ address: plan.token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [subscriber] })) as bigint;
    expect(balanceAfter - balanceBefore).to.equal(refunded);

    const shown = await waitForSubscription(paying, (body) => body.status === "canceled");
    expect(shown.canceledAt).to.equal(canceled.body.canceledAt);
    expect(shown.nextChargeAt).to.equal(null);
    expect(shown.nextChargeAmount).to.equal(null);

    const again = await stack.api("POST", `/v1/subscriptions/${paying}/cancel`, { key: merchant.apiKey });
    expect(again.status).to.equal(409);
    expect(((await again.json()) as { type: string }).type).to.equal("/problems/subscription-not-cancelable");
  });

  it("changes a plan's price and closes it to new subscribers on-chain", async () => {
    const repriced = await api<PlanBody & { updateTransactions: Hex[] }>("PATCH", `/v1/plans/${plan.id}`, { amount: "12.50" });
    expect(repriced.status, JSON.stringify(repriced.body)).to.equal(200);
    expect(repriced.body).to.include({ amount: "12.50", amountBaseUnits: "12500000", active: true });
    expect(repriced.body.updateTransactions).to.have.length(1);
    const closed = await api<PlanBody & { updateTransactions: Hex[] }>("PATCH", `/v1/plans/${plan.id}`, { active: false, amount: "12.50" });
    expect(closed.body).to.include({ active: false, amount: "12.50" });
    expect(closed.body.updateTransactions).to.have.length(1); // the unchanged price sends nothing
    await waitUntil("the plan change to be indexed", async () => {
      const shown = await api<PlanBody>("GET", `/v1/plans/${plan.id}`);
      return shown.body.active === false && shown.body.amount === "12.50";
    }, 20_000);
    const invalid = await stack.api("PATCH", `/v1/plans/${plan.id}`, { key: merchant.apiKey, body: {} });
    expect(invalid.status).to.equal(422);

    // The past-due subscription now also shows that its next renewal would exceed the subscriber's cap.
    const pastDue = await waitForSubscription(revoked, (body) => body.nextChargeAmount === "12.50");
    expect((pastDue as SubscriptionBody & { renewalBlockedBy: string | null }).renewalBlockedBy).to.equal("price_above_maximum");
  });

  it("keeps other merchants out and enforces scopes", async () => {
    const other = await createMerchant(stack, 3, "Other merchant");
    const asOther = (method: string, route: string, body?: unknown) => stack.api(method, route, { key: other.apiKey, body });
    expect((await asOther("GET", `/v1/subscriptions/${paying}`)).status).to.equal(404);
    expect((await asOther("GET", `/v1/subscriptions/${paying}/charges`)).status).to.equal(404);
    expect((await asOther("POST", `/v1/subscriptions/${revoked}/cancel`)).status).to.equal(404);
    expect((await asOther("PATCH", `/v1/plans/${plan.id}`, { active: true })).status).to.equal(404);
    expect(((await (await asOther("GET", "/v1/plans")).json()) as { data: unknown[] }).data).to.deep.equal([]);
    expect(((await (await asOther("GET", "/v1/subscriptions")).json()) as { data: unknown[] }).data).to.deep.equal([]);
    expect((await stack.api("GET", "/v1/subscriptions/sub_1_1", { key: merchant.apiKey })).status).to.equal(404);

    const readOnly = await api<{ secret: string }>("POST", "/v1/api-keys", { name: "read only", scopes: ["subscriptions:read"] });
    const denied = await stack.api("POST", `/v1/subscriptions/${revoked}/cancel`, { key: readOnly.body.secret });
    expect(denied.status).to.equal(403);
    expect((await stack.api("GET", `/v1/subscriptions/${revoked}`, { key: readOnly.body.secret })).status).to.equal(200);
  });

  it("trials: a wallet gets a plan's trial once, and a plan change during a trial to a plan without one charges at once", async () => {
    const TRIALIST = 8;
    await mint(TRIALIST, 1_000_000_000n);
    const created = async (body: Record<string, unknown>) => (await api<PlanBody>("POST", "/v1/plans", { chainId: chain.id, currency: "USDC", periodSeconds: MONTH, ...body })).body;
    const trialPlan = await created({ amount: "5.00", trialSeconds: 7 * 86_400 });
    const premium = await created({ amount: "20.00" });
    const subscribeTo = async (target: PlanBody): Promise<string> => {
      const [approve, subscribeTx] = target.subscribe.transactions;
      await send(TRIALIST, approve);
      const receipt = await chain.client.getTransactionReceipt({ hash: await send(TRIALIST, subscribeTx) });
      const [event] = parseEventLogs({ abi: subscriptionManagerAbi, eventName: "SubscriptionCreated", logs: receipt.logs });
      return `sub_${chain.id}_${event.args.subscriptionId}`;
    };

    const first = await subscribeTo(trialPlan);
    const trialing = await waitForSubscription(first, (body) => body.status === "trialing");
    expect((trialing as SubscriptionBody & { trialAlreadyUsed: boolean }).trialAlreadyUsed).to.equal(false);

    // During the trial, a change to a plan without one ends it: the new plan is charged now, a period starts.
    const [, premiumSubscribe] = premium.subscribe.transactions;
    await send(TRIALIST, { ...premium.subscribe.transactions[0] });
    const change = await chain.wallet(TRIALIST).writeContract({
      address: chain.deployment.contracts.SubscriptionManager.address,
      abi: subscriptionManagerAbi,
      functionName: "changePlan",
      args: [BigInt(first.split("_")[2]), premium.planId, BigInt(premium.subscribe.maxPriceBaseUnits)],
      chain: null,
    });
    await chain.client.waitForTransactionReceipt({ hash: change });
    expect(premiumSubscribe.to).to.equal(chain.deployment.contracts.SubscriptionManager.address);
    const active = await waitForSubscription(first, (body) => body.status === "active");
    expect(active.plan?.id).to.equal(premium.id);
    const charges = (await api<{ data: ChargeBody[] }>("GET", `/v1/subscriptions/${first}/charges`)).body.data;
    expect(charges.map((charge) => [charge.kind, charge.amount])).to.deep.equal([["plan_change", "20.00"]]);

    // Cancel, and subscribe to the trial plan again: no second trial, charged at once.
    expect((await stack.api("POST", `/v1/subscriptions/${first}/cancel`, { key: merchant.apiKey })).status).to.equal(202);
    const second = await subscribeTo(trialPlan);
    const again = await waitForSubscription(second, (body) => body.status === "active");
    expect((again as SubscriptionBody & { trialAlreadyUsed: boolean }).trialAlreadyUsed).to.equal(true);
    const secondCharges = (await api<{ data: ChargeBody[] }>("GET", `/v1/subscriptions/${second}/charges`)).body.data;
    expect(secondCharges.map((charge) => [charge.kind, charge.amount])).to.deep.equal([["initial", "5.00"]]);
  });

  it("refuses a grace period as long as the period (it must be shorter)", async () => {
    const response = await stack.api("POST", "/v1/plans", { key: merchant.apiKey, body: { chainId: chain.id, currency: "USDC", amount: "1.00", periodSeconds: 86_400, gracePeriodSeconds: 86_400 } });
    expect(response.status).to.equal(422);
    expect(((await response.json()) as { errors: { field: string }[] }).errors[0].field).to.equal("gracePeriodSeconds");
  });
});
