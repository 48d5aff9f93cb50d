import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { startReceiver, type Receiver } from "../helpers/receiver";
import { listenTests } from "./webhooks-listen";
import { bitcoinTests } from "./webhooks-bitcoin";
import { RegtestChain } from "../../scripts/lib/bitcoin-regtest/chain";
import { startEsplora, type BitcoinServer } from "../../scripts/lib/bitcoin-regtest/servers";
import { erc20Abi, type Address } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { invoiceFromJson, type InvoiceJson as Terms } from "../../contracts/invoice";
import { createApiClient } from "../../scripts/lib/api-client";
import { runKeeperOnce } from "../../scripts/lib/keeper";
import { createMerchant, invoicesOf, mintStablecoin, payWithInstructions, startStack, testAccount, timeTravel, usdc, waitUntil, type Stack, type TestMerchant } from "./harness";

/**
 * Webhooks end to end: a real chain, the real indexer and API, a real HTTP receiver verifying every request
 * with the `standardwebhooks` package. Retries run on a compressed schedule (1 s between attempts).
 */
describe("stack: webhooks", function () {
  this.timeout(300_000);
  let stack: Stack;
  let merchant: TestMerchant;
  let receiver: Receiver;
  let endpoint: { id: string; secret: string };
  const bitcoin = new RegtestChain({ wallClock: true });
  let esplora: BitcoinServer;

  const api = (method: string, route: string, body?: unknown, headers?: Record<string, string>) =>
    stack.api(method, route, { key: merchant.apiKey, body, headers });
  const json = async <T>(response: Response, status = 200): Promise<T> => {
    const text = await response.text();
    expect(response.status, text).to.equal(status);
    return JSON.parse(text) as T;
  };
  const eventsOf = (invoiceId: string) => receiver.received.filter((entry) => entry.event.data.invoiceId === invoiceId);
  const typesOf = (invoiceId: string) => [...new Set(eventsOf(invoiceId).map((entry) => entry.event.type))];

  before(async () => {
    bitcoin.fund();
    esplora = await startEsplora(bitcoin);
    stack = await startStack({ env: { WEBHOOK_RETRY_SCHEDULE: "1,1,1", BITCOIN_NETWORK: "regtest", BITCOIN_ESPLORA_URL: esplora.url, BITCOIN_POLL_MS: "200" } });
    merchant = await createMerchant(stack, 3, "Webhook merchant");
    receiver = await startReceiver();
    endpoint = await json(await api("POST", "/v1/webhook-endpoints", { url: receiver.url, description: "all events" }), 201);
    receiver.secrets = [endpoint.secret];
  });
  after(async () => {
    await receiver?.close();
    await stack?.stop();
    await esplora?.close();
  });

  it("an ETH invoice paid on-chain arrives as a signed invoice.paid, then invoice.confirmed after the merchant's confirmations", async () => {
    const chain = stack.chains[0];
    const settings = await json<{ settings: { confirmations: Record<string, number> } }>(await api("PATCH", "/v1/merchants/me", { confirmations: { [chain.id]: 3 } }));
    expect(settings.settings.confirmations[String(chain.id)]).to.equal(3);
    const invoices = invoicesOf(stack, merchant, chain);
    const invoice = await invoices.create({ amount: "0.1", currency: "ETH", metadata: { order: "A-1" } });
    expect(invoice.confirmationsRequired).to.equal(3);
    const [hash] = (await payWithInstructions(chain, 4, invoice.payment.evm!.transactions)).slice(-1);

    await waitUntil("invoice.paid at the receiver", async () => typesOf(invoice.id).includes("invoice.paid"), 30_000);
    const paid = eventsOf(invoice.id).find((entry) => entry.event.type === "invoice.paid")!;
    expect(paid.verifiedWith).to.equal(0);
    expect(paid.event.id).to.equal(paid.id);
    expect(paid.event.data).to.include({ object: "invoice", invoiceId: invoice.id, currency: "ETH", amount: "0.10", amountBaseUnits: "100000000000000000", invoiceAmount: "0.10" });
    expect(paid.event.data.metadata).to.deep.equal({ order: "A-1" });
    expect((paid.event.data.transaction as { hash: string }).hash).to.equal(hash);

    // The harness's node mines a block every second: three confirmations come on their own.
    await waitUntil("invoice.confirmed at the receiver", async () => typesOf(invoice.id).includes("invoice.confirmed"), 30_000);
    const confirmed = eventsOf(invoice.id).find((entry) => entry.event.type === "invoice.confirmed")!;
    expect(confirmed.event.data.confirmations as number).to.be.at.least(3);
    expect(confirmed.event.data.paidEventId).to.equal(paid.id);
    expect(typesOf(invoice.id)).to.deep.equal(["invoice.paid", "invoice.confirmed"]);
    const view = await invoices.read(invoice.id);
    expect(view.confirmations).to.be.at.least(3);

    // The delivery log and the events list tell the same story.
    const log = await json<{ data: { eventId: string; statusCode: number; latencyMs: number; responseExcerpt: string }[] }>(await api("GET", `/v1/webhook-endpoints/${endpoint.id}/attempts?eventId=${paid.id}`));
    expect(log.data).to.have.length(1);
    expect(log.data[0]).to.include({ eventId: paid.id, statusCode: 200, responseExcerpt: "ok" });
    await waitUntil("events listed", async () => {
      const page = await json<{ data: { id: string }[] }>(await api("GET", "/v1/events?limit=100"));
      const ids = page.data.map((event) => event.id);
      return ids.includes(paid.id) && ids.includes(confirmed.id) && ids.indexOf(paid.id) < ids.indexOf(confirmed.id);
    }, 10_000);
    const event = await json<{ deliveries: { status: string; attempts: number }[] }>(await api("GET", `/v1/events/${paid.id}`));
    expect(event.deliveries).to.deep.equal([{ endpointId: endpoint.id, eventId: paid.id, status: "succeeded", attempts: 1, nextAttemptAt: null, lastStatusCode: 200, lastError: null }]);
  });

  it("a USDC invoice's refund, an endpoint filtered to refunds, and a release each arrive once", async () => {
    const chain = stack.chains[0];
    const refundsOnly = await startReceiver();
    try {
      const filtered = await json<{ id: string; secret: string; events: string[] }>(await api("POST", "/v1/webhook-endpoints", { url: refundsOnly.url, events: ["invoice.refunded"] }), 201);
      refundsOnly.secrets = [filtered.secret];
      expect(filtered.events).to.deep.equal(["invoice.refunded"]);
      await mintStablecoin(chain, 5, usdc(100));
      const invoices = invoicesOf(stack, merchant, chain);
      const refunded = await invoices.paid({ amount: "12.5", currency: "USDC", holdSeconds: 3600 }, 5);
      const refund = await api("POST", `/v1/invoices/${refunded.id}/refund`, { amount: "2.5" }, { "Idempotency-Key": randomUUID() });
      expect(refund.status, await refund.clone().text()).to.be.oneOf([200, 202]);
      await waitUntil("invoice.refunded at both receivers", async () => typesOf(refunded.id).includes("invoice.refunded") && refundsOnly.received.length > 0, 30_000);
      expect(refundsOnly.received.map((entry) => entry.event.type)).to.deep.equal(["invoice.refunded"]);
      expect(refundsOnly.received[0].verifiedWith).to.equal(0);
      expect(refundsOnly.received[0].event.data).to.include({ invoiceId: refunded.id, amount: "2.50", amountBaseUnits: "2500000", totalRefunded: "2.50", reason: "merchant", full: false });

      const released = await invoices.paid({ amount: "1", currency: "USDC", holdSeconds: 0 }, 5);
      const release = await api("POST", `/v1/invoices/${released.id}/release`, undefined, { "Idempotency-Key": randomUUID() });
      expect(release.status, await release.clone().text()).to.be.oneOf([200, 202]);
      await waitUntil("invoice.released", async () => typesOf(released.id).includes("invoice.released"), 30_000);
      const event = eventsOf(released.id).find((entry) => entry.event.type === "invoice.released")!;
      expect(event.event.data).to.include({ amount: "1.00", fee: "0.00", payout: merchant.payout });
      expect(refundsOnly.received.map((entry) => entry.event.type)).to.deep.equal(["invoice.refunded"]);
      for (const [, deliveries] of receiver.byEvent()) expect(deliveries.filter((entry) => entry.event.type !== "invoice.confirmed").length).to.be.at.most(1);
    } finally {
      await refundsOnly.close();
    }
  });

  it("an invoice nobody pays arrives as invoice.expired; a voided one as invoice.voided", async () => {
    const chain = stack.chains[0];
    const invoices = invoicesOf(stack, merchant, chain);
    const expiring = await invoices.create({ amount: "0.01", currency: "ETH", expiresInSeconds: 60 });
    const voided = await invoices.create({ amount: "0.01", currency: "ETH" });
    const response = await api("POST", `/v1/invoices/${voided.id}/void`, undefined, { "Idempotency-Key": randomUUID() });
    expect(response.status, await response.clone().text()).to.be.oneOf([200, 202]);
    await timeTravel(chain, 120);
    await waitUntil(
      "invoice.expired and invoice.voided",
      async () => typesOf(expiring.id).includes("invoice.expired") && typesOf(voided.id).includes("invoice.voided"),
      30_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message}: expiring got ${typesOf(expiring.id).join(",") || "nothing"}, voided got ${typesOf(voided.id).join(",") || "nothing"}`);
    });
    expect(typesOf(voided.id)).to.deep.equal(["invoice.voided"]);
    expect(eventsOf(expiring.id)[0].event.data).to.include({ invoiceId: expiring.id, invoiceAmount: "0.01" });
  });

  it("a failing receiver gets the same webhook-id again until it answers 2xx, and the log shows every attempt", async () => {
    const chain = stack.chains[0];
    let refusals = 2;
    const invoices = invoicesOf(stack, merchant, chain);
    const invoice = await invoices.create({ amount: "0.02", currency: "ETH" });
    receiver.respond = (entry) => (entry.event.type === "invoice.paid" && entry.event.data.invoiceId === invoice.id && refusals-- > 0 ? 503 : 200);
    try {
      await payWithInstructions(chain, 4, invoice.payment.evm!.transactions);
      await waitUntil("delivered on the third attempt", async () => eventsOf(invoice.id).filter((entry) => entry.event.type === "invoice.paid").length === 3, 30_000);
      const attempts = eventsOf(invoice.id).filter((entry) => entry.event.type === "invoice.paid");
      expect(new Set(attempts.map((entry) => entry.id)).size).to.equal(1);
      const log = await json<{ data: { attempt: number; statusCode: number; responseExcerpt: string }[] }>(await api("GET", `/v1/webhook-endpoints/${endpoint.id}/attempts?eventId=${attempts[0].id}`));
      expect(log.data.map((entry) => [entry.attempt, entry.statusCode])).to.deep.equal([
        [3, 200],
        [2, 503],
        [1, 503],
      ]);
      expect(log.data[1].responseExcerpt).to.equal("refused with 503");
    } finally {
      receiver.respond = () => 200;
    }
  });

  it("after a rotation both secrets verify during the overlap; redelivering an event sends the same id again", async () => {
    const chain = stack.chains[0];
    const rotated = await json<{ secret: string; previousSecretValidUntil: string }>(await api("POST", `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, { overlapSeconds: 600 }));
    expect(rotated.secret).to.match(/^whsec_/).and.not.equal(endpoint.secret);
    expect(Date.parse(rotated.previousSecretValidUntil)).to.be.greaterThan(Date.now() + 500_000);
    const invoice = await invoicesOf(stack, merchant, chain).paid({ amount: "0.03", currency: "ETH" });
    await waitUntil("invoice.paid", async () => typesOf(invoice.id).includes("invoice.paid"), 30_000);
    const delivered = eventsOf(invoice.id).find((entry) => entry.event.type === "invoice.paid")!;
    expect(delivered.signature.split(" ")).to.have.length(2);
    for (const secrets of [[endpoint.secret], [rotated.secret]]) {
      receiver.secrets = secrets;
      const { Webhook } = await import("standardwebhooks");
      expect(() => new Webhook(secrets[0]).verify(delivered.body, { "webhook-id": delivered.id, "webhook-timestamp": delivered.timestamp, "webhook-signature": delivered.signature })).to.not.throw();
    }
    receiver.secrets = [rotated.secret];
    const before = eventsOf(invoice.id).filter((entry) => entry.id === delivered.id).length;
    const requeued = await json<{ requeued: number }>(await api("POST", `/v1/events/${delivered.id}/redeliver`, {}, { "Idempotency-Key": randomUUID() }), 202);
    expect(requeued.requeued).to.equal(1);
    await waitUntil("redelivered", async () => eventsOf(invoice.id).filter((entry) => entry.id === delivered.id).length === before + 1, 20_000);
    endpoint.secret = rotated.secret;
  });

  it("a subscription's life arrives as subscription.created, subscription.renewed, payout.sent (the keeper's payout) and subscription.canceled", async () => {
    const chain = stack.chains[0];
    await mintStablecoin(chain, 6, usdc(1_000));
    const plan = await json<{ subscribe: { transactions: { to: string; data: string; value: string }[] } }>(
      await api("POST", "/v1/plans", { chainId: chain.id, currency: "USDC", amount: "10.00", periodSeconds: 30 * 86_400 }, { "Idempotency-Key": randomUUID() }),
      201,
    );
    await payWithInstructions(chain, 6, plan.subscribe.transactions);
    const subscriptionEvents = () => receiver.received.filter((entry) => entry.event.type.startsWith("subscription.") || entry.event.type === "payout.sent");
    await waitUntil("subscription.created", async () => subscriptionEvents().some((entry) => entry.event.type === "subscription.created"), 30_000);
    const created = subscriptionEvents().find((entry) => entry.event.type === "subscription.created")!;
    const subscriptionId = created.event.data.subscriptionId as string;
    expect(subscriptionId).to.match(/^sub_31337_\d+$/);
    expect(created.event.data.subscriber).to.equal(testAccount(6).address);

    await timeTravel(chain, 30 * 86_400 + 60);
    const actions = await runKeeperOnce({
      api: createApiClient(stack.apiUrl),
      adminKey: stack.adminKey,
      chains: [{ id: chain.id, rpcUrl: chain.rpcUrl, client: chain.client }],
      account: testAccount(8),
      maxGasPerRun: 10_000_000n,
      log: () => undefined,
    });
    expect(actions.filter((action) => action.hash).map((action) => action.label.split(" ")[0])).to.include.members(["renew", "pay"]);
    await waitUntil("subscription.renewed and payout.sent", async () => {
      const types = subscriptionEvents().map((entry) => entry.event.type);
      return types.includes("subscription.renewed") && types.includes("payout.sent");
    }, 30_000);
    const renewed = subscriptionEvents().find((entry) => entry.event.type === "subscription.renewed")!;
    expect(renewed.event.data).to.include({ subscriptionId, amountBaseUnits: "10000000" });
    const payout = subscriptionEvents().find((entry) => entry.event.type === "payout.sent")!;
    expect(payout.event.data).to.include({ object: "payout", source: "subscriptions", payout: merchant.payout });

    const cancel = await api("POST", `/v1/subscriptions/${subscriptionId}/cancel`, undefined, { "Idempotency-Key": randomUUID() });
    expect(cancel.status, await cancel.clone().text()).to.equal(202);
    await waitUntil("subscription.canceled", async () => subscriptionEvents().some((entry) => entry.event.type === "subscription.canceled"), 30_000);
    const order = subscriptionEvents().filter((entry) => entry.event.data.subscriptionId === subscriptionId).map((entry) => entry.event.type);
    expect(order).to.deep.equal(["subscription.created", "subscription.renewed", "subscription.canceled"]);
  });

  it("a dispute and a subscription that cannot be charged arrive as invoice.disputed, invoice.dispute_resolved, subscription.payment_failed and subscription.lapsed", async () => {
    const chain = stack.chains[0];
    const keeper = () =>
      runKeeperOnce({
        api: createApiClient(stack.apiUrl),
        adminKey: stack.adminKey,
        chains: [{ id: chain.id, rpcUrl: chain.rpcUrl, client: chain.client }],
        account: testAccount(8),
        maxGasPerRun: 10_000_000n,
        log: () => undefined,
      });
    const arbiter = chain.wallet(9);
    await mintStablecoin(chain, 7, usdc(1_000));
    const invoices = invoicesOf(stack, merchant, chain);
    const invoice = await invoices.paid({ amount: "8.00", currency: "USDC", holdSeconds: 86_400, arbiter: arbiter.account.address }, 7);
    const terms = invoiceFromJson(invoice.payment.evm!.invoice as Terms);
    const escrow = invoice.payment.evm!.contract as Address;
    const send = async (wallet: ReturnType<typeof chain.wallet>, functionName: "dispute" | "resolveDispute", args: readonly unknown[]) =>
      chain.client.waitForTransactionReceipt({ hash: await wallet.writeContract({ address: escrow, abi: billingEscrowAbi, functionName, args: args as never, chain: null }) });
    await send(chain.wallet(7), "dispute", [terms]);
    await waitUntil("invoice.disputed", async () => typesOf(invoice.id).includes("invoice.disputed"), 30_000);
    await send(arbiter, "resolveDispute", [terms, 2_500]);
    await waitUntil("invoice.dispute_resolved", async () => typesOf(invoice.id).includes("invoice.dispute_resolved"), 30_000);
    const resolved = eventsOf(invoice.id).find((entry) => entry.event.type === "invoice.dispute_resolved")!;
    expect(resolved.event.data).to.include({ outcome: "resolved", arbiter: arbiter.account.address, refunded: "2.00", released: "6.00", refundShareBps: 2_500 });
    expect(eventsOf(invoice.id).find((entry) => entry.event.type === "invoice.disputed")!.event.data).to.include({ payer: testAccount(7).address });

    // A subscriber who withdraws the allowance: the renewal fails, and after the grace period the subscription lapses.
    const plan = await json<{ subscribe: { transactions: { to: string; data: string; value: string }[] } }>(
      await api("POST", "/v1/plans", { chainId: chain.id, currency: "USDC", amount: "3.00", periodSeconds: 30 * 86_400, gracePeriodSeconds: 2 * 86_400 }, { "Idempotency-Key": randomUUID() }),
      201,
    );
    await payWithInstructions(chain, 7, plan.subscribe.transactions);
    const token = chain.deployment.contracts.MockStablecoin!.address;
    const manager = chain.deployment.contracts.SubscriptionManager.address;
    await chain.client.waitForTransactionReceipt({ hash: await chain.wallet(7).writeContract({ address: token, abi: erc20Abi, functionName: "approve", args: [manager, 0n], chain: null }) });
    const ofSubscriber = () => receiver.received.filter((entry) => entry.event.type.startsWith("subscription.") && entry.event.data.subscriber === testAccount(7).address);
    await waitUntil("subscription.created", async () => ofSubscriber().length > 0, 30_000);
    const subscriptionId = ofSubscriber()[0].event.data.subscriptionId;
    const ofThis = () => receiver.received.filter((entry) => entry.event.data.subscriptionId === subscriptionId).map((entry) => entry.event.type);
    await timeTravel(chain, 30 * 86_400 + 60);
    await keeper();
    await waitUntil("subscription.payment_failed", async () => ofThis().includes("subscription.payment_failed"), 30_000);
    const failed = receiver.received.find((entry) => entry.event.data.subscriptionId === subscriptionId && entry.event.type === "subscription.payment_failed")!;
    expect(failed.event.data).to.include({ subscriber: testAccount(7).address, reason: "transfer_failed" });
    await timeTravel(chain, 3 * 86_400);
    await keeper();
    await waitUntil("subscription.lapsed", async () => ofThis().includes("subscription.lapsed"), 30_000);
    expect(ofThis()).to.deep.equal(["subscription.created", "subscription.payment_failed", "subscription.lapsed"]);
  });

  it("the audit log holds every administrative action of the run, with actor, key and request id, and its hash chain verifies", async () => {
    const page = await json<{ data: { action: string; actor: string; apiKeyId: string | null; requestId: string | null; target: string | null; details: { status: number } }[] }>(
      await api("GET", "/v1/audit-log?limit=100"),
    );
    const actions = page.data.map((entry) => entry.action);
    for (const action of [
      "PATCH /v1/merchants/me",
      "POST /v1/webhook-endpoints",
      "POST /v1/invoices/{id}/refund",
      "POST /v1/invoices/{id}/release",
      "POST /v1/invoices/{id}/void",
      "POST /v1/webhook-endpoints/{id}/rotate-secret",
      "POST /v1/events/{id}/redeliver",
    ]) {
      expect(actions, action).to.include(action);
    }
    expect(actions).to.not.include("POST /v1/invoices");
    for (const entry of page.data) {
      expect(entry.actor).to.equal("merchant");
      expect(entry.apiKeyId).to.match(/^key_/);
      expect(entry.requestId).to.be.a("string").and.not.equal("");
    }
    const verified = await json<{ ok: boolean; entries: number }>(await api("GET", "/v1/audit-log/verify"));
    expect(verified.ok).to.equal(true);
    expect(verified.entries).to.be.at.least(page.data.length);
  });

  listenTests(() => stack);
  bitcoinTests(() => ({ stack, merchant, receiver, chain: bitcoin }));
});
