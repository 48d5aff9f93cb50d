import { expect } from "chai";
import { OpenAPIHono } from "@hono/zod-openapi";
import { and, asc, eq } from "drizzle-orm";
import {
  ALERT_RULES,
  ALERT_RULE_NAMES,
  alertIdFor,
  alertRuleFor,
  apiKeyUsedFrom,
  evaluateEventAlerts,
  forgetKnownClients,
  raiseAlert,
  twiceMedian,
  type StoredEvent,
} from "../../api/alerts";
import type { ApiDeps, AppEnv, MerchantRecord, Principal } from "../../api/env";
import { errorHandler } from "../../api/middleware";
import { alertRoutes } from "../../api/routes/alerts";
import type { Store } from "../../api/store";
import { alertRules, alerts, apiKeyClients, auditLog, webhookDeliveries, webhookEndpoints, webhookEvents } from "../../api/store/schema";
import { eventId, recordEvent, type EventType } from "../../api/webhooks/events";
import { recordingLogger } from "./helpers/logger";
import { sharedStore, uniqueId } from "./helpers/store";

const T = new Date("2025-03-01T12:00:00.000Z");
const minutes = (count: number) => new Date(T.getTime() + count * 60_000);
const PAYER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
const OTHER_PAYER = "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC";

describe("unit: api/alerts (real store)", function () {
  this.timeout(10_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  /** Stores an event as the deriver does and returns it as `evaluateEventAlerts` takes it. */
  async function emit(merchantId: string, type: EventType, data: Record<string, unknown>, at: Date): Promise<StoredEvent> {
    const id = eventId(uniqueId("src"), type);
    await recordEvent(store.db, id, { merchantId, type, orderKey: uniqueId("ord"), occurredAt: at, data });
    const [row] = await store.db.select().from(webhookEvents).where(eq(webhookEvents.id, id));
    return { id: row.id, merchantId: row.merchantId, type: row.type, payload: row.payload };
  }

  async function emitAndEvaluate(merchantId: string, type: EventType, data: Record<string, unknown>, at: Date): Promise<StoredEvent> {
    const event = await emit(merchantId, type, data, at);
    await evaluateEventAlerts(store.db, event);
    return event;
  }

  const alertsOf = (merchantId: string) => store.db.select().from(alerts).where(eq(alerts.merchantId, merchantId)).orderBy(asc(alerts.sequence));
  const alertEventsOf = (merchantId: string) =>
    store.db
      .select()
      .from(webhookEvents)
      .where(and(eq(webhookEvents.merchantId, merchantId), eq(webhookEvents.type, "alert.raised")))
      .orderBy(asc(webhookEvents.sequence));

  async function setRule(merchantId: string, rule: string, enabled: boolean, settings: Record<string, number> = {}) {
    await store.db.insert(alertRules).values({ merchantId, rule, enabled, settings });
  }

  const refund = (index: number) => ({ object: "invoice", invoiceId: `inv_${index}`, amountBaseUnits: "100" });
  const paid = (amountBaseUnits: string, currency = "USDC", chainId = 31337) => ({ object: "invoice", invoiceId: uniqueId("inv"), chainId, currency, amountBaseUnits });

  describe("refunds_per_hour", () => {
    it("raises nothing at exactly maxCount refunds within the hour, and one alert (with an alert.raised event) at maxCount + 1", async () => {
      const merchantId = uniqueId("mer");
      for (let index = 0; index < 10; index += 1) await emitAndEvaluate(merchantId, "invoice.refunded", refund(index), minutes(index));
      expect(await alertsOf(merchantId)).to.have.length(0);
      const trigger = await emitAndEvaluate(merchantId, "invoice.refunded", refund(10), minutes(10));
      const raised = await alertsOf(merchantId);
      expect(raised).to.have.length(1);
      expect(raised[0]).to.include({ id: alertIdFor(merchantId, "refunds_per_hour", trigger.id), rule: "refunds_per_hour" });
      expect(raised[0].message).to.equal("11 refunds within the hour up to 2025-03-01T12:10:00.000Z: more than the 10 the refunds_per_hour rule allows.");
      expect(raised[0].details).to.deep.equal({ eventId: trigger.id, at: minutes(10).toISOString(), count: 11, maxCount: 10, windowSeconds: 3600 });
      const events = await alertEventsOf(merchantId);
      expect(events).to.have.length(1);
      expect(events[0].id).to.equal(eventId("alert", raised[0].id));
      expect(events[0].orderKey).to.equal(`alerts:${merchantId}`);
      expect(events[0].payload).to.deep.include({ id: events[0].id, type: "alert.raised" });
      expect((events[0].payload as { data: unknown }).data).to.deep.equal({
        object: "alert",
        alertId: raised[0].id,
        rule: "refunds_per_hour",
        message: raised[0].message,
        details: raised[0].details,
      });
    });

    it("raises once however often the same event is evaluated", async () => {
      const merchantId = uniqueId("mer");
      let last: StoredEvent | undefined;
      for (let index = 0; index < 11; index += 1) last = await emit(merchantId, "invoice.refunded", refund(index), minutes(index));
      for (let round = 0; round < 3; round += 1) await evaluateEventAlerts(store.db, last!);
      await Promise.all([evaluateEventAlerts(store.db, last!), evaluateEventAlerts(store.db, last!)]);
      expect(await alertsOf(merchantId)).to.have.length(1);
      expect(await alertEventsOf(merchantId)).to.have.length(1);
    });

    it("stays quiet for an hour after it fired, then fires again for a new burst", async () => {
      const merchantId = uniqueId("mer");
      for (let index = 0; index < 15; index += 1) await emitAndEvaluate(merchantId, "invoice.refunded", refund(index), minutes(index));
      expect(await alertsOf(merchantId)).to.have.length(1);
      for (let index = 0; index < 11; index += 1) await emitAndEvaluate(merchantId, "invoice.refunded", refund(100 + index), minutes(120 + index));
      const raised = await alertsOf(merchantId);
      expect(raised).to.have.length(2);
      expect(raised[1].details).to.include({ at: minutes(130).toISOString(), count: 11 });
    });

    it("counts only refunds of the hour up to the event (one exactly an hour before is out), of this merchant, not reverted", async () => {
      const merchantId = uniqueId("mer");
      const other = uniqueId("mer");
      for (let index = 0; index < 5; index += 1) await emit(merchantId, "invoice.refunded", refund(index), minutes(-60));
      for (let index = 0; index < 5; index += 1) await emit(other, "invoice.refunded", refund(index), minutes(0));
      const reverted = await emit(merchantId, "invoice.refunded", refund(99), minutes(1));
      await store.db.update(webhookEvents).set({ revertedAt: new Date() }).where(eq(webhookEvents.id, reverted.id));
      await emit(merchantId, "invoice.paid", paid("100"), minutes(1));
      for (let index = 0; index < 9; index += 1) await emit(merchantId, "invoice.refunded", refund(index), minutes(index - 59));
      await emitAndEvaluate(merchantId, "invoice.refunded", refund(9), minutes(0));
      expect(await alertsOf(merchantId)).to.have.length(0);
      await emitAndEvaluate(merchantId, "invoice.refunded", refund(10), minutes(0));
      expect(await alertsOf(merchantId)).to.have.length(1);
    });

    it("takes the merchant's maxCount, and raises nothing when the merchant disabled the rule", async () => {
      const custom = uniqueId("mer");
      await setRule(custom, "refunds_per_hour", true, { maxCount: 2 });
      for (let index = 0; index < 2; index += 1) await emitAndEvaluate(custom, "invoice.refunded", refund(index), minutes(index));
      expect(await alertsOf(custom)).to.have.length(0);
      await emitAndEvaluate(custom, "invoice.refunded", refund(2), minutes(2));
      expect((await alertsOf(custom))[0].details).to.include({ count: 3, maxCount: 2 });

      const disabled = uniqueId("mer");
      await setRule(disabled, "refunds_per_hour", false);
      for (let index = 0; index < 20; index += 1) await emitAndEvaluate(disabled, "invoice.refunded", refund(index), minutes(index));
      expect(await alertsOf(disabled)).to.have.length(0);
      expect(await alertEventsOf(disabled)).to.have.length(0);
    });
  });

  describe("payer_failures", () => {
    it("raises nothing at exactly maxCount failures of one payer, and an alert at maxCount + 1 (failed and reverted payments, any letter case)", async () => {
      const merchantId = uniqueId("mer");
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { object: "subscription", subscriber: PAYER }, minutes(0));
      await emitAndEvaluate(merchantId, "invoice.payment_reverted", { object: "invoice", payer: PAYER.toLowerCase() }, minutes(1));
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { object: "subscription", subscriber: PAYER }, minutes(2));
      // Another payer's failures and other events do not count.
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { object: "subscription", subscriber: OTHER_PAYER }, minutes(2));
      await emitAndEvaluate(merchantId, "invoice.paid", { ...paid("5"), payer: PAYER }, minutes(2));
      expect(await alertsOf(merchantId)).to.have.length(0);
      const trigger = await emitAndEvaluate(merchantId, "invoice.payment_reverted", { object: "invoice", payer: PAYER }, minutes(3));
      const raised = await alertsOf(merchantId);
      expect(raised).to.have.length(1);
      expect(raised[0]).to.include({ id: alertIdFor(merchantId, "payer_failures", trigger.id), rule: "payer_failures" });
      expect(raised[0].details).to.deep.equal({ eventId: trigger.id, at: minutes(3).toISOString(), payer: PAYER, count: 4, maxCount: 3, windowSeconds: 3600 });
      expect(await alertEventsOf(merchantId)).to.have.length(1);
      // The same payer within the window: quiet; evaluating the trigger again: nothing new.
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { object: "subscription", subscriber: PAYER }, minutes(4));
      await evaluateEventAlerts(store.db, trigger);
      expect(await alertsOf(merchantId)).to.have.length(1);
    });

    it("counts within the merchant's windowSeconds only, and alerts per payer", async () => {
      const merchantId = uniqueId("mer");
      await setRule(merchantId, "payer_failures", true, { maxCount: 1, windowSeconds: 600 });
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { subscriber: PAYER }, minutes(0));
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { subscriber: PAYER }, minutes(10));
      expect(await alertsOf(merchantId), "exactly 600 s apart: the first is out of the window").to.have.length(0);
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { subscriber: PAYER }, minutes(19));
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { subscriber: OTHER_PAYER }, minutes(19));
      await emitAndEvaluate(merchantId, "subscription.payment_failed", { subscriber: OTHER_PAYER }, minutes(20));
      const raised = await alertsOf(merchantId);
      expect(raised.map((alert) => alert.details.payer)).to.deep.equal([PAYER, OTHER_PAYER]);
    });

    it("raises nothing when disabled, or for an event without a payer", async () => {
      const disabled = uniqueId("mer");
      await setRule(disabled, "payer_failures", false);
      for (let index = 0; index < 6; index += 1) await emitAndEvaluate(disabled, "subscription.payment_failed", { subscriber: PAYER }, minutes(index));
      expect(await alertsOf(disabled)).to.have.length(0);
      const anonymous = uniqueId("mer");
      for (let index = 0; index < 6; index += 1) await emitAndEvaluate(anonymous, "subscription.payment_failed", { reason: "insufficient_allowance" }, minutes(index));
      expect(await alertsOf(anonymous)).to.have.length(0);
    });
  });

  describe("payment_above_median", () => {
    it("computes twice the median exactly, for odd and even counts", () => {
      expect(twiceMedian([5n])).to.equal(10n);
      expect(twiceMedian([3n, 1n, 2n])).to.equal(4n);
      expect(twiceMedian([4n, 1n, 3n, 2n])).to.equal(5n);
      expect(twiceMedian([10n ** 30n, 1n])).to.equal(10n ** 30n + 1n);
    });

    it("raises nothing with fewer than minSamples previous payments, however large the payment", async () => {
      const merchantId = uniqueId("mer");
      for (let index = 0; index < 4; index += 1) await emitAndEvaluate(merchantId, "invoice.paid", paid("100"), minutes(index));
      await emitAndEvaluate(merchantId, "invoice.paid", paid("100000000"), minutes(5));
      expect(await alertsOf(merchantId)).to.have.length(0);
    });

    it("raises nothing at exactly multiple × the median, and an alert one base unit above", async () => {
      const merchantId = uniqueId("mer");
      for (const amount of ["100", "90", "300", "100", "5000"]) await emitAndEvaluate(merchantId, "invoice.paid", paid(amount), minutes(0));
      // median of 90, 100, 100, 300, 5000: 100
      await emitAndEvaluate(merchantId, "invoice.paid", paid("1000"), minutes(1));
      expect(await alertsOf(merchantId)).to.have.length(0);
      // now 6 samples: 90, 100, 100, 300, 1000, 5000 → median 200 (twice: 400); 2001 > 10 × 200
      const trigger = await emitAndEvaluate(merchantId, "invoice.paid", { ...paid("2001"), amount: "0.002001" }, minutes(3));
      const raised = await alertsOf(merchantId);
      expect(raised).to.have.length(1);
      expect(raised[0].id).to.equal(alertIdFor(merchantId, "payment_above_median", trigger.id));
      expect(raised[0].details).to.deep.include({ eventId: trigger.id, currency: "USDC", chainId: 31337, amountBaseUnits: "2001", medianBaseUnits: "200", multiple: 10, samples: 6 });
      expect(raised[0].message).to.contain("A payment of 0.002001 USDC").and.contain("more than 10 times the median of the previous 6 payments (200 base units)");
      await evaluateEventAlerts(store.db, trigger);
      expect(await alertsOf(merchantId)).to.have.length(1);
      expect(await alertEventsOf(merchantId)).to.have.length(1);
    });

    it("keeps a half base unit median exact (no rounding)", async () => {
      const merchantId = uniqueId("mer");
      await setRule(merchantId, "payment_above_median", true, { multiple: 2, minSamples: 2 });
      for (const amount of ["100", "101"]) await emitAndEvaluate(merchantId, "invoice.paid", paid(amount), minutes(0));
      // median 100.5: 2 × 100.5 = 201
      await emitAndEvaluate(merchantId, "invoice.paid", paid("201"), minutes(1));
      expect(await alertsOf(merchantId)).to.have.length(0);
      const merchant2 = uniqueId("mer");
      await setRule(merchant2, "payment_above_median", true, { multiple: 2, minSamples: 2 });
      for (const amount of ["100", "101"]) await emitAndEvaluate(merchant2, "invoice.paid", paid(amount), minutes(0));
      await emitAndEvaluate(merchant2, "invoice.paid", paid("202"), minutes(1));
      expect((await alertsOf(merchant2))[0].details).to.include({ medianBaseUnits: "100.5", samples: 2 });
    });

    it("compares amounts beyond 2^53 exactly, within one currency and chain, ignoring later and reverted payments", async () => {
      const merchantId = uniqueId("mer");
      const big = 10n ** 24n;
      for (let index = 0; index < 5; index += 1) await emit(merchantId, "invoice.paid", paid(big.toString()), minutes(0));
      // Other currencies, other chains and reverted payments are not samples.
      for (let index = 0; index < 5; index += 1) {
        await emit(merchantId, "invoice.paid", paid("1", "DAI"), minutes(0));
        await emit(merchantId, "invoice.paid", paid("1", "USDC", 1), minutes(0));
      }
      const reverted = await emit(merchantId, "invoice.paid", paid("1"), minutes(0));
      await store.db.update(webhookEvents).set({ revertedAt: new Date() }).where(eq(webhookEvents.id, reverted.id));
      const exact = await emit(merchantId, "invoice.paid", paid((big * 10n).toString()), minutes(1));
      const above = await emit(merchantId, "invoice.paid", paid((big * 10n + 1n).toString()), minutes(2));
      // Evaluated after a later payment was stored: the later one is not a sample of the earlier one.
      await emit(merchantId, "invoice.paid", paid("1"), minutes(3));
      await evaluateEventAlerts(store.db, exact);
      expect(await alertsOf(merchantId)).to.have.length(0);
      await evaluateEventAlerts(store.db, above);
      const raised = await alertsOf(merchantId);
      expect(raised).to.have.length(1);
      // Samples: the five big ones and `exact`.
      expect(raised[0].details).to.include({ amountBaseUnits: (big * 10n + 1n).toString(), medianBaseUnits: big.toString(), samples: 6 });
    });

    it("raises nothing when disabled", async () => {
      const merchantId = uniqueId("mer");
      await setRule(merchantId, "payment_above_median", false, { multiple: 2 });
      for (let index = 0; index < 5; index += 1) await emitAndEvaluate(merchantId, "invoice.paid", paid("100"), minutes(index));
      await emitAndEvaluate(merchantId, "invoice.paid", paid("100000"), minutes(6));
      expect(await alertsOf(merchantId)).to.have.length(0);
    });
  });

  it("never evaluates an alert.raised event", async () => {
    const merchantId = uniqueId("mer");
    await setRule(merchantId, "refunds_per_hour", true, { maxCount: 1 });
    for (let index = 0; index < 2; index += 1) await emitAndEvaluate(merchantId, "invoice.refunded", refund(index), minutes(index));
    const [alertEvent] = await alertEventsOf(merchantId);
    await evaluateEventAlerts(store.db, { id: alertEvent.id, merchantId, type: "alert.raised", payload: alertEvent.payload });
    await evaluateEventAlerts(store.db, { id: alertEvent.id, merchantId, type: "alert.raised", payload: { ...alertEvent.payload, type: "invoice.refunded" } });
    expect(await alertsOf(merchantId)).to.have.length(1);
    expect(await alertEventsOf(merchantId)).to.have.length(1);
  });

  it("queues an alert.raised delivery for each endpoint of the merchant that takes it", async () => {
    const merchantId = uniqueId("mer");
    const every = uniqueId("we");
    const alertsOnly = uniqueId("we");
    const paymentsOnly = uniqueId("we");
    await store.db.insert(webhookEndpoints).values([
      { id: every, merchantId, url: "https://example.com/a", eventTypes: [], secretEncrypted: "00" },
      { id: alertsOnly, merchantId, url: "https://example.com/b", eventTypes: ["alert.raised"], secretEncrypted: "00" },
      { id: paymentsOnly, merchantId, url: "https://example.com/c", eventTypes: ["invoice.paid"], secretEncrypted: "00" },
    ]);
    const alertId = await raiseAlert(store.db, merchantId, "endpoint_disabled", "Endpoint we_x was disabled.", { endpointId: "we_x" }, "we_x:1");
    expect(alertId).to.equal(alertIdFor(merchantId, "endpoint_disabled", "we_x:1"));
    const deliveries = await store.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.eventId, eventId("alert", alertId!)));
    expect(deliveries.map((delivery) => delivery.endpointId).sort()).to.deep.equal([every, alertsOnly].sort());
  });

  describe("raiseAlert", () => {
    it("raises once per (rule, dedupe key), and nothing when the merchant disabled the rule", async () => {
      const merchantId = uniqueId("mer");
      const first = await raiseAlert(store.db, merchantId, "endpoint_disabled", "Endpoint disabled.", { endpointId: "we_1" }, "we_1");
      expect(first).to.be.a("string");
      expect(await raiseAlert(store.db, merchantId, "endpoint_disabled", "Endpoint disabled.", { endpointId: "we_1" }, "we_1")).to.equal(undefined);
      expect(await raiseAlert(store.db, merchantId, "endpoint_disabled", "Endpoint disabled.", { endpointId: "we_2" }, "we_2")).to.be.a("string");
      expect(await alertsOf(merchantId)).to.have.length(2);
      expect(await alertEventsOf(merchantId)).to.have.length(2);
      const muted = uniqueId("mer");
      await setRule(muted, "endpoint_disabled", false);
      expect(await raiseAlert(store.db, muted, "endpoint_disabled", "Endpoint disabled.", {}, "we_3")).to.equal(undefined);
      expect(await alertsOf(muted)).to.have.length(0);
    });

    it("rolls the alert and its event back with the caller's transaction", async () => {
      const merchantId = uniqueId("mer");
      const failure = await store.db
        .transaction(async (tx) => {
          await raiseAlert(tx, merchantId, "endpoint_disabled", "x", {}, "k");
          throw new Error("caller failed");
        })
        .catch((error: Error) => error);
      expect(failure).to.be.instanceOf(Error);
      expect(await alertsOf(merchantId)).to.have.length(0);
      expect(await alertEventsOf(merchantId)).to.have.length(0);
    });
  });

  describe("api_key_new_client (apiKeyUsedFrom)", () => {
    const clientsOf = (apiKeyId: string) => store.db.select().from(apiKeyClients).where(eq(apiKeyClients.apiKeyId, apiKeyId)).orderBy(asc(apiKeyClients.client));

    it("raises nothing for a key's first client, an alert for a second client, nothing for a client seen before", async () => {
      const key = { id: uniqueId("key"), merchantId: uniqueId("mer") };
      await apiKeyUsedFrom(store.db, key, "203.0.113.1");
      expect(await alertsOf(key.merchantId)).to.have.length(0);
      await apiKeyUsedFrom(store.db, key, "203.0.113.2");
      const raised = await alertsOf(key.merchantId);
      expect(raised).to.have.length(1);
      expect(raised[0]).to.include({ rule: "api_key_new_client", id: alertIdFor(key.merchantId, "api_key_new_client", `${key.id}\u0000203.0.113.2`) });
      expect(raised[0].details).to.include({ apiKeyId: key.id, client: "203.0.113.2" });
      expect(raised[0].message).to.equal(`API key ${key.id} was used from 203.0.113.2, an address it was never used from before.`);
      expect(await alertEventsOf(key.merchantId)).to.have.length(1);
      // Known in this process: no query; forgotten (another process): looked up, still nothing.
      await apiKeyUsedFrom(store.db, key, "203.0.113.1");
      await apiKeyUsedFrom(store.db, key, "203.0.113.2");
      forgetKnownClients();
      await apiKeyUsedFrom(store.db, key, "203.0.113.1");
      await apiKeyUsedFrom(store.db, key, "203.0.113.2");
      expect(await alertsOf(key.merchantId)).to.have.length(1);
      await apiKeyUsedFrom(store.db, key, "2001:db8::3");
      expect(await alertsOf(key.merchantId)).to.have.length(2);
      expect((await clientsOf(key.id)).map((row) => row.client)).to.deep.equal(["2001:db8::3", "203.0.113.1", "203.0.113.2"]);
    });

    it("treats each key apart: another key's first client raises nothing", async () => {
      const merchantId = uniqueId("mer");
      await apiKeyUsedFrom(store.db, { id: uniqueId("key"), merchantId }, "198.51.100.1");
      await apiKeyUsedFrom(store.db, { id: uniqueId("key"), merchantId }, "198.51.100.2");
      expect(await alertsOf(merchantId)).to.have.length(0);
    });

    it("records clients but raises nothing while the rule is disabled (and a client recorded then never alerts later)", async () => {
      const key = { id: uniqueId("key"), merchantId: uniqueId("mer") };
      await setRule(key.merchantId, "api_key_new_client", false);
      await apiKeyUsedFrom(store.db, key, "192.0.2.1");
      await apiKeyUsedFrom(store.db, key, "192.0.2.2");
      expect(await alertsOf(key.merchantId)).to.have.length(0);
      expect(await clientsOf(key.id)).to.have.length(2);
      await store.db.update(alertRules).set({ enabled: true }).where(eq(alertRules.merchantId, key.merchantId));
      forgetKnownClients();
      await apiKeyUsedFrom(store.db, key, "192.0.2.2");
      expect(await alertsOf(key.merchantId)).to.have.length(0);
      await apiKeyUsedFrom(store.db, key, "192.0.2.3");
      expect(await alertsOf(key.merchantId)).to.have.length(1);
    });

    it("stores at most 100 characters of a client address", async () => {
      const key = { id: uniqueId("key"), merchantId: uniqueId("mer") };
      await apiKeyUsedFrom(store.db, key, "x".repeat(500));
      expect((await clientsOf(key.id))[0].client).to.have.length(100);
    });
  });

  describe("alertRuleFor", () => {
    it("gives the defaults without a row, the merchant's settings over them with one, and the defaults for settings that no longer parse", async () => {
      const merchantId = uniqueId("mer");
      expect(await alertRuleFor(store.db, merchantId, "payer_failures")).to.deep.equal({
        rule: "payer_failures",
        enabled: true,
        settings: { maxCount: 3, windowSeconds: 3600 },
        customized: false,
      });
      await setRule(merchantId, "payer_failures", false, { windowSeconds: 60 });
      expect(await alertRuleFor(store.db, merchantId, "payer_failures")).to.deep.equal({
        rule: "payer_failures",
        enabled: false,
        settings: { maxCount: 3, windowSeconds: 60 },
        customized: true,
      });
      await store.db.update(alertRules).set({ settings: { windowSeconds: "soon" } }).where(eq(alertRules.merchantId, merchantId));
      expect((await alertRuleFor(store.db, merchantId, "payer_failures")).settings).to.deep.equal({ maxCount: 3, windowSeconds: 3600 });
    });
  });
});

describe("unit: api/routes/alerts (real store)", function () {
  this.timeout(10_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  function appAs(merchantId: string, scopes: string[] = ["merchant:read", "merchant:write"]) {
    const deps = { store } as unknown as ApiDeps;
    const principal: Principal = { kind: "merchant", merchant: { id: merchantId } as MerchantRecord, apiKeyId: "key_alerts", scopes: new Set(scopes) };
    const app = new OpenAPIHono<AppEnv>();
    app.use("*", async (c, next) => {
      c.set("requestId", "req_alerts");
      c.set("principal", principal);
      await next();
    });
    app.route("/v1", alertRoutes(deps));
    app.onError(errorHandler(recordingLogger().logger));
    return app;
  }

  const put = (app: OpenAPIHono<AppEnv>, rule: string, body: unknown) =>
    app.request(`/v1/alert-rules/${rule}`, { method: "PUT", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

  async function errorsOf(response: Response) {
    expect(response.status).to.equal(422);
    return ((await response.json()) as { errors: { field: string; message: string }[] }).errors;
  }

  it("lists the merchant's alerts newest first, a page at a time", async () => {
    const merchantId = uniqueId("mer");
    for (let index = 1; index <= 3; index += 1) await raiseAlert(store.db, merchantId, "endpoint_disabled", `alert ${index}`, { index }, `k${index}`);
    await raiseAlert(store.db, uniqueId("mer"), "endpoint_disabled", "not mine", {}, "k");
    const app = appAs(merchantId, ["merchant:read"]);
    const first = (await (await app.request("/v1/alerts?limit=2")).json()) as { data: { message: string; rule: string; details: unknown; id: string; createdAt: string }[]; nextCursor: string };
    expect(first.data.map((alert) => alert.message)).to.deep.equal(["alert 3", "alert 2"]);
    expect(first.data[0]).to.include({ rule: "endpoint_disabled", id: alertIdFor(merchantId, "endpoint_disabled", "k3") });
    expect(first.data[0].details).to.deep.equal({ index: 3 });
    const second = (await (await app.request(`/v1/alerts?limit=2&cursor=${first.nextCursor}`)).json()) as { data: { message: string }[]; nextCursor: string | null };
    expect(second.data.map((alert) => alert.message)).to.deep.equal(["alert 1"]);
    expect(second.nextCursor).to.equal(null);
    expect((await app.request("/v1/alerts?cursor=cur_x")).status).to.equal(422);
    expect((await appAs(merchantId, ["invoices:read"]).request("/v1/alerts")).status).to.equal(403);
  });

  it("lists every rule, enabled with its defaults until changed", async () => {
    const response = await appAs(uniqueId("mer"), ["merchant:read"]).request("/v1/alert-rules");
    expect(response.status).to.equal(200);
    const { data } = (await response.json()) as { data: { rule: string; enabled: boolean; settings: unknown; defaults: unknown; customized: boolean; description: string }[] };
    expect(data.map((rule) => rule.rule)).to.deep.equal(ALERT_RULE_NAMES);
    expect(data.map((rule) => rule.rule)).to.include.members(["refunds_per_hour", "payer_failures", "payment_above_median", "api_key_new_client"]);
    for (const rule of data) {
      expect(rule.enabled).to.equal(true);
      expect(rule.customized).to.equal(false);
      expect(rule.settings).to.deep.equal(ALERT_RULES[rule.rule as keyof typeof ALERT_RULES].defaults);
      expect(rule.defaults).to.deep.equal(rule.settings);
      expect(rule.description).to.be.a("string").and.not.equal("");
    }
  });

  it("changes a rule's settings and enabled flag, audits the change, and resets settings with {}", async () => {
    const merchantId = uniqueId("mer");
    const app = appAs(merchantId);
    const changed = await put(app, "payer_failures", { settings: { maxCount: 5 } });
    expect(changed.status).to.equal(200);
    expect(await changed.json()).to.deep.include({ rule: "payer_failures", enabled: true, settings: { maxCount: 5, windowSeconds: 3600 }, customized: true });
    const disabled = (await (await put(app, "payer_failures", { enabled: false })).json()) as { enabled: boolean; settings: unknown };
    expect(disabled).to.deep.include({ enabled: false, settings: { maxCount: 5, windowSeconds: 3600 } });
    expect(await alertRuleFor(store.db, merchantId, "payer_failures")).to.deep.include({ enabled: false, settings: { maxCount: 5, windowSeconds: 3600 } });
    const reset = (await (await put(app, "payer_failures", { settings: {} })).json()) as { enabled: boolean; settings: unknown };
    expect(reset).to.deep.include({ enabled: false, settings: { maxCount: 3, windowSeconds: 3600 } });
    const { data } = (await (await app.request("/v1/alert-rules")).json()) as { data: { rule: string; enabled: boolean }[] };
    expect(data.find((rule) => rule.rule === "payer_failures")!.enabled).to.equal(false);
    expect(data.find((rule) => rule.rule === "refunds_per_hour")!.enabled).to.equal(true);

    const entries = await store.db.select().from(auditLog).where(eq(auditLog.merchantId, merchantId)).orderBy(asc(auditLog.sequence));
    expect(entries.map((entry) => [entry.action, entry.target, entry.actor, entry.apiKeyId, entry.requestId])).to.deep.equal([
      ["alert_rule.update", "payer_failures", "merchant", "key_alerts", "req_alerts"],
      ["alert_rule.update", "payer_failures", "merchant", "key_alerts", "req_alerts"],
      ["alert_rule.update", "payer_failures", "merchant", "key_alerts", "req_alerts"],
    ]);
    expect(entries[0].details).to.deep.equal({
      before: { enabled: true, settings: { maxCount: 3, windowSeconds: 3600 } },
      after: { enabled: true, settings: { maxCount: 5, windowSeconds: 3600 } },
    });
  });

  it("refuses settings out of range, not whole, unknown to the rule, or not numbers (422 naming settings.<name>)", async () => {
    const app = appAs(uniqueId("mer"));
    expect(await errorsOf(await put(app, "refunds_per_hour", { settings: { maxCount: 0 } }))).to.deep.equal([{ field: "settings.maxCount", message: "Too small: expected number to be >=1" }]);
    expect((await errorsOf(await put(app, "refunds_per_hour", { settings: { maxCount: 1.5 } })))[0].field).to.equal("settings.maxCount");
    expect((await errorsOf(await put(app, "refunds_per_hour", { settings: { maxCount: 10_001 } })))[0].field).to.equal("settings.maxCount");
    expect(await errorsOf(await put(app, "refunds_per_hour", { settings: { windowSeconds: 60 } }))).to.deep.equal([{ field: "settings.windowSeconds", message: "is not a known field" }]);
    expect((await errorsOf(await put(app, "payer_failures", { settings: { windowSeconds: 59 } })))[0].field).to.equal("settings.windowSeconds");
    expect((await errorsOf(await put(app, "payment_above_median", { settings: { minSamples: 101 } })))[0].field).to.equal("settings.minSamples");
    expect((await errorsOf(await put(app, "payment_above_median", { settings: { multiple: 1 } })))[0].field).to.equal("settings.multiple");
    expect(await errorsOf(await put(app, "api_key_new_client", { settings: { maxCount: 1 } }))).to.deep.equal([{ field: "settings.maxCount", message: "is not a known field" }]);
    expect((await errorsOf(await put(app, "refunds_per_hour", { settings: { maxCount: "5" } })))[0].field).to.equal("settings.maxCount");
    expect(await errorsOf(await put(app, "refunds_per_hour", { enabled: true, extra: 1 }))).to.deep.equal([{ field: "extra", message: "is not a known field" }]);
    expect((await errorsOf(await put(app, "refunds_per_hour", { enabled: "yes" })))[0].field).to.equal("enabled");
  });

  it("answers 404 for an unknown rule, and 403 without merchant:write", async () => {
    const merchantId = uniqueId("mer");
    const unknown = await put(appAs(merchantId), "no_such_rule", { enabled: false });
    expect(unknown.status).to.equal(404);
    expect(await unknown.json()).to.deep.include({ type: "/problems/not-found", detail: "Alert rule no_such_rule does not exist." });
    expect((await put(appAs(merchantId), "__proto__", { enabled: false })).status).to.equal(404);
    expect((await put(appAs(merchantId, ["merchant:read"]), "refunds_per_hour", { enabled: false })).status).to.equal(403);
    expect(await store.db.select().from(alertRules).where(eq(alertRules.merchantId, merchantId))).to.have.length(0);
  });
});
