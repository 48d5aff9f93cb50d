/**
 * The webhook delivery worker against a real store (PGlite), real HTTP receivers on 127.0.0.1 and real Standard
 * Webhooks signatures. Workers are driven with `runOnce()` so every step is deterministic; the shared store may
 * hold other tests' deliveries, so every assertion looks at this test's own rows (merchant ids from `uniqueId`),
 * and each test disables its endpoints when it ends so no later worker claims them.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { Webhook } from "standardwebhooks";
import type { Store } from "../../api/store";
import { webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from "../../api/store/schema";
import { eventId, recordEvent, type EventType } from "../../api/webhooks/events";
import { newSigningSecret, sealSecret } from "../../api/webhooks/secrets";
import { createSender } from "../../api/webhooks/send";
import { createWorker, type Worker, type WorkerOptions } from "../../api/webhooks/worker";
import { startReceiver, type Receiver } from "../helpers/receiver";
import { recordingLogger } from "./helpers/logger";
import { sharedStore, uniqueId } from "./helpers/store";

const KEY = Buffer.alloc(32, 7);
const OTHER_KEY = Buffer.alloc(32, 9);
const SCHEDULE = [0.2, 0.2];
const POLL_MS = 20;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A bare HTTP server on loopback whose handler the test writes (delays, redirects, hangs). */
interface TestServer {
  url: string;
  requests: { headers: http.IncomingHttpHeaders; body: string; at: number }[];
  close(): Promise<void>;
}

async function startServer(handler: (request: http.IncomingMessage, response: http.ServerResponse, body: string) => void, path = "/hook"): Promise<TestServer> {
  const requests: TestServer["requests"] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      requests.push({ headers: request.headers, body, at: Date.now() });
      handler(request, response, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function headersOf(request: { headers: http.IncomingHttpHeaders }) {
  return {
    "webhook-id": String(request.headers["webhook-id"]),
    "webhook-timestamp": String(request.headers["webhook-timestamp"]),
    "webhook-signature": String(request.headers["webhook-signature"]),
  };
}

describe("unit: api/webhooks/worker (real store, real HTTP, real signatures)", function () {
  this.timeout(60_000);
  let store: Store;
  const merchantsOfTest: string[] = [];
  const closers: (() => Promise<unknown>)[] = [];

  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  afterEach(async () => {
    // Leave nothing claimable behind: later workers (other tests) share the store.
    if (merchantsOfTest.length > 0) {
      await store.db
        .update(webhookEndpoints)
        .set({ disabledAt: new Date(), disabledReason: "test over" })
        .where(and(inArray(webhookEndpoints.merchantId, merchantsOfTest), sql`${webhookEndpoints.disabledAt} IS NULL`));
    }
    merchantsOfTest.length = 0;
    for (const close of closers.splice(0).reverse()) await close();
  });

  function newMerchant() {
    const merchantId = uniqueId("mer");
    merchantsOfTest.push(merchantId);
    return merchantId;
  }

  async function addEndpoint(
    merchantId: string,
    url: string,
    extra: Partial<typeof webhookEndpoints.$inferInsert> = {},
    secret = newSigningSecret(),
  ): Promise<{ id: string; secret: string }> {
    const id = uniqueId("we");
    await store.db.insert(webhookEndpoints).values({ id, merchantId, url, eventTypes: [], secretEncrypted: sealSecret(secret, KEY), ...extra });
    return { id, secret };
  }

  let occurred = 0;
  async function emit(merchantId: string, type: EventType = "invoice.paid", orderKey = uniqueId("inv"), data: Record<string, unknown> = {}) {
    const id = eventId(uniqueId("src"), type);
    occurred += 1;
    const created = await recordEvent(store.db, id, {
      merchantId,
      type,
      orderKey,
      occurredAt: new Date(Date.UTC(2025, 2, 1, 12, 0, occurred)),
      data: { orderKey, ...data },
    });
    expect(created).to.equal(true);
    return id;
  }

  function worker(overrides: Partial<WorkerOptions> = {}): Worker {
    const timeoutMs = overrides.timeoutMs ?? 2_000;
    const created = createWorker({
      store,
      sender: createSender({ allowPrivate: true, timeoutMs }),
      logger: recordingLogger().logger,
      secretKey: KEY,
      retrySchedule: SCHEDULE,
      disableAfterSeconds: 3_600,
      batchSize: 25,
      pollMs: POLL_MS,
      timeoutMs,
      ...overrides,
    });
    closers.push(() => created.stop());
    return created;
  }

  async function receiver(secrets: string[]): Promise<Receiver> {
    const started = await startReceiver();
    started.secrets = secrets;
    closers.push(() => started.close());
    return started;
  }

  const deliveriesOf = (merchantId: string) =>
    store.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.merchantId, merchantId)).orderBy(asc(webhookDeliveries.eventSequence));
  const deliveryOf = async (endpointId: string, event: string) =>
    (await store.db.select().from(webhookDeliveries).where(and(eq(webhookDeliveries.endpointId, endpointId), eq(webhookDeliveries.eventId, event))))[0];
  const attemptsOf = (endpointId: string) =>
    store.db.select().from(webhookAttempts).where(eq(webhookAttempts.endpointId, endpointId)).orderBy(asc(webhookAttempts.id));
  const endpointRow = async (id: string) => (await store.db.select().from(webhookEndpoints).where(eq(webhookEndpoints.id, id)))[0];
  const pendingOf = async (merchantId: string) => (await deliveriesOf(merchantId)).filter((delivery) => delivery.status === "pending").length;

  /** Runs the workers' batches until `done` holds (sleeping a poll when none had anything to do). */
  async function drainUntil(workers: Worker[], done: () => Promise<boolean>, limitMs = 20_000) {
    const deadline = Date.now() + limitMs;
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error("the workers did not get there in time");
      const counts = await Promise.all(workers.map((each) => each.runOnce()));
      if (counts.every((count) => count === 0)) await sleep(POLL_MS);
    }
  }

  it("1. sends webhook-id = event id, webhook-timestamp and a signature standardwebhooks verifies; the body is the stored payload", async () => {
    const merchantId = newMerchant();
    const target = await receiver([]);
    const endpoint = await addEndpoint(merchantId, target.url);
    target.secrets = [endpoint.secret];
    const id = await emit(merchantId, "invoice.paid", "inv_1", { amount: "12.50", currency: "USDC", nested: { a: [1, 2, 3] } });
    const before = Math.floor(Date.now() / 1000);
    await drainUntil([worker()], async () => (await pendingOf(merchantId)) === 0);
    const after = Math.floor(Date.now() / 1000);

    expect(target.received).to.have.length(1);
    const [got] = target.received;
    expect(got.id).to.equal(id);
    expect(Number(got.timestamp)).to.be.within(before, after);
    expect(got.verifiedWith).to.equal(0);
    expect(got.signature).to.match(/^v1,[A-Za-z0-9+/=]+$/);
    // Verified again here, independently of the receiver helper, with the endpoint's secret.
    const verified = new Webhook(endpoint.secret).verify(got.body, { "webhook-id": got.id, "webhook-timestamp": got.timestamp, "webhook-signature": got.signature });
    const [stored] = await store.db.select().from(webhookEvents).where(eq(webhookEvents.id, id));
    expect(verified).to.deep.equal(stored.payload);
    expect(got.body).to.equal(JSON.stringify(stored.payload));
    expect(JSON.parse(got.body)).to.deep.equal({
      id,
      type: "invoice.paid",
      timestamp: stored.payload.timestamp,
      data: { orderKey: "inv_1", amount: "12.50", currency: "USDC", nested: { a: [1, 2, 3] } },
    });
    // A wrong secret does not verify it.
    expect(() => new Webhook(newSigningSecret()).verify(got.body, { "webhook-id": got.id, "webhook-timestamp": got.timestamp, "webhook-signature": got.signature })).to.throw();

    const delivery = await deliveryOf(endpoint.id, id);
    expect(delivery).to.include({ status: "succeeded", attempts: 1, lastStatusCode: 200, lastError: null, lockedUntil: null });
    expect(delivery.completedAt).to.be.instanceOf(Date);
    const attempts = await attemptsOf(endpoint.id);
    expect(attempts).to.have.length(1);
    expect(attempts[0]).to.include({ attempt: 1, statusCode: 200, eventId: id, error: null, responseExcerpt: "ok" });
  });

  it("2. two concurrent workers over 300 deliveries: each event delivered exactly once, each attempt by one worker, both take part", async () => {
    const merchantId = newMerchant();
    const secret = newSigningSecret();
    const verifier = new Webhook(secret);
    let unverified = 0;
    const slow = await startServer((request, response, body) => {
      try {
        verifier.verify(body, headersOf(request));
      } catch {
        unverified += 1;
      }
      setTimeout(() => response.writeHead(200).end("ok"), 15);
    });
    closers.push(() => slow.close());
    const endpoint = await addEndpoint(merchantId, slow.url, {}, secret);
    const ids: string[] = [];
    for (let index = 0; index < 300; index += 1) ids.push(await emit(merchantId, "invoice.paid", `inv_${index}`));
    expect(await deliveriesOf(merchantId)).to.have.length(300);

    const workers = [worker({ batchSize: 25 }), worker({ batchSize: 25 })];
    expect(workers[0].id).to.not.equal(workers[1].id);
    const loop = async (each: Worker) => {
      const deadline = Date.now() + 30_000;
      for (;;) {
        if (Date.now() > deadline) throw new Error("did not drain");
        if ((await each.runOnce()) > 0) continue;
        if ((await pendingOf(merchantId)) === 0) return;
        await sleep(POLL_MS);
      }
    };
    await Promise.all(workers.map(loop));

    expect(unverified).to.equal(0);
    const received = slow.requests.map((request) => String(request.headers["webhook-id"]));
    expect(received).to.have.length(300);
    expect(new Set(received).size).to.equal(300);
    expect([...received].sort()).to.deep.equal([...ids].sort());

    const deliveries = await deliveriesOf(merchantId);
    expect(deliveries.every((delivery) => delivery.status === "succeeded" && delivery.attempts === 1)).to.equal(true);
    const attempts = await attemptsOf(endpoint.id);
    expect(attempts).to.have.length(300);
    const byDelivery = new Map<number, Set<string>>();
    for (const attempt of attempts) byDelivery.set(attempt.deliveryId, (byDelivery.get(attempt.deliveryId) ?? new Set()).add(attempt.worker));
    expect(byDelivery.size).to.equal(300);
    expect([...byDelivery.values()].every((workersOfDelivery) => workersOfDelivery.size === 1)).to.equal(true);
    const perWorker = new Map<string, number>();
    for (const attempt of attempts) perWorker.set(attempt.worker, (perWorker.get(attempt.worker) ?? 0) + 1);
    expect([...perWorker.keys()].sort()).to.deep.equal(workers.map((each) => each.id).sort());
    for (const each of workers) expect(perWorker.get(each.id)).to.be.greaterThan(0);
  });

  it("3. keeps each order key in event order through an outage, retries on the schedule, and moves past a failed delivery", async () => {
    const merchantId = newMerchant();
    const target = await receiver([]);
    const endpoint = await addEndpoint(merchantId, target.url);
    target.secrets = [endpoint.secret];
    const runner = worker();

    // The outage: everything queued while the receiver is down.
    await target.down();
    const a1 = await emit(merchantId, "invoice.paid", "inv_a");
    const b1 = await emit(merchantId, "invoice.paid", "inv_b");
    const a2 = await emit(merchantId, "invoice.confirmed", "inv_a");
    const b2 = await emit(merchantId, "invoice.confirmed", "inv_b");
    const a3 = await emit(merchantId, "invoice.released", "inv_a");

    // Two failed attempts of the head of each key; the later events of a key are not even tried.
    await drainUntil([runner], async () => (await deliveryOf(endpoint.id, a1)).attempts >= 1 && (await deliveryOf(endpoint.id, b1)).attempts >= 1);
    await drainUntil([runner], async () => (await deliveryOf(endpoint.id, a1)).attempts >= 2 && (await deliveryOf(endpoint.id, b1)).attempts >= 2);
    for (const later of [a2, a3, b2]) expect((await deliveryOf(endpoint.id, later)).attempts).to.equal(0);
    const a1Down = await deliveryOf(endpoint.id, a1);
    expect(a1Down).to.include({ status: "pending", attempts: 2, lastStatusCode: null });
    expect(a1Down.lastError).to.be.a("string").and.match(/ECONNREFUSED/);

    await target.up();
    await drainUntil([runner], async () => (await pendingOf(merchantId)) === 0);

    const arrived = target.received.map((entry) => entry.id);
    expect(arrived.filter((id) => [a1, a2, a3].includes(id))).to.deep.equal([a1, a2, a3]);
    expect(arrived.filter((id) => [b1, b2].includes(id))).to.deep.equal([b1, b2]);
    expect(target.received.every((entry) => entry.verifiedWith === 0)).to.equal(true);
    for (const id of [a1, a2, a3, b1, b2]) expect((await deliveryOf(endpoint.id, id)).status).to.equal("succeeded");

    const attempts = await attemptsOf(endpoint.id);
    const timesOf = (id: string) => attempts.filter((attempt) => attempt.eventId === id).map((attempt) => attempt.attemptedAt.getTime());
    for (const head of [a1, b1]) {
      const times = timesOf(head);
      expect(times).to.have.length(3);
      // Attempt n+1 comes at least retrySchedule[n-1] seconds after attempt n.
      expect(times[1] - times[0]).to.be.at.least(SCHEDULE[0] * 1000);
      expect(times[2] - times[1]).to.be.at.least(SCHEDULE[1] * 1000);
      expect(times[2] - times[0]).to.be.below(10_000);
    }
    // Nothing after the head of a key was tried before the head got through.
    expect(timesOf(a2)[0]).to.be.at.least(timesOf(a1)[2]);
    expect(timesOf(a3)[0]).to.be.at.least(timesOf(a2)[0]);
    expect(timesOf(b2)[0]).to.be.at.least(timesOf(b1)[2]);

    // A delivery that fails through the whole schedule is `failed`, and the next event of its key then goes.
    const c1 = await emit(merchantId, "invoice.paid", "inv_c");
    const c2 = await emit(merchantId, "invoice.refunded", "inv_c");
    target.respond = (entry) => (entry.id === c1 ? 500 : 200);
    await drainUntil([runner], async () => (await pendingOf(merchantId)) === 0);
    const failed = await deliveryOf(endpoint.id, c1);
    expect(failed).to.include({ status: "failed", attempts: SCHEDULE.length + 1, lastStatusCode: 500, lastError: "HTTP 500" });
    expect(failed.completedAt).to.be.instanceOf(Date);
    expect(await deliveryOf(endpoint.id, c2)).to.include({ status: "succeeded", attempts: 1 });
    const cArrivals = target.received.filter((entry) => entry.id === c1 || entry.id === c2).map((entry) => entry.id);
    expect(cArrivals).to.deep.equal([c1, c1, c1, c2]);
    const after = await attemptsOf(endpoint.id);
    const c1Times = after.filter((attempt) => attempt.eventId === c1).map((attempt) => attempt.attemptedAt.getTime());
    expect(c1Times[1] - c1Times[0]).to.be.at.least(SCHEDULE[0] * 1000);
    expect(c1Times[2] - c1Times[1]).to.be.at.least(SCHEDULE[1] * 1000);
    expect(after.filter((attempt) => attempt.eventId === c1).map((attempt) => attempt.attempt)).to.deep.equal([1, 2, 3]);
  });

  it("4. a worker lost mid-batch: after its lease ends another worker sends the same delivery again with the same webhook-id", async () => {
    const merchantId = newMerchant();
    const secret = newSigningSecret();
    let answering = false;
    const server = await startServer((_request, response) => {
      if (answering) response.writeHead(200).end("ok");
      // otherwise never answer: the first worker stays stuck mid-batch, as if it had died holding its lease
    });
    closers.push(() => server.close());
    const endpoint = await addEndpoint(merchantId, server.url, {}, secret);
    const id = await emit(merchantId);

    const lost = worker({ timeoutMs: 60_000 });
    const other = worker();
    const stuck = lost.runOnce();
    const deadline = Date.now() + 10_000;
    while (server.requests.length === 0) {
      if (Date.now() > deadline) throw new Error("the first worker never sent");
      await sleep(10);
    }
    const leased = await deliveryOf(endpoint.id, id);
    expect(leased.lockedBy).to.equal(lost.id);
    expect(leased.lockedUntil!.getTime()).to.be.greaterThan(Date.now() + 30_000);
    // While the lease holds, nobody else takes it.
    await other.runOnce();
    expect(server.requests).to.have.length(1);
    expect((await deliveryOf(endpoint.id, id)).lockedBy).to.equal(lost.id);

    // The lease runs out (the worker is gone); the other worker delivers it again.
    await store.db.execute(sql`UPDATE chainbill_api.webhook_deliveries SET locked_until = now() - interval '1 second' WHERE id = ${leased.id}`);
    answering = true;
    await drainUntil([other], async () => (await deliveryOf(endpoint.id, id)).status === "succeeded");
    expect(server.requests).to.have.length(2);
    const [first, second] = server.requests.map(headersOf);
    expect(first["webhook-id"]).to.equal(id);
    expect(second["webhook-id"]).to.equal(id);
    expect(server.requests[1].body).to.equal(server.requests[0].body);
    for (const request of server.requests) expect(new Webhook(secret).verify(request.body, headersOf(request))).to.be.an("object");
    const attempts = await attemptsOf(endpoint.id);
    expect(attempts.map((attempt) => attempt.worker)).to.deep.equal([other.id]);

    // The stuck worker's late failure does not undo the delivery.
    await server.close();
    const late = await stuck;
    expect(late).to.equal(1);
    expect(await deliveryOf(endpoint.id, id)).to.include({ status: "succeeded", attempts: 1 });
  });

  it("5. an endpoint failing for longer than disableAfterSeconds is disabled once, with a reason; disabled endpoints get no claims; a success resets the failure run", async () => {
    const merchantId = newMerchant();
    const target = await receiver([]);
    target.respond = () => 503;
    const endpoint = await addEndpoint(merchantId, target.url);
    target.secrets = [endpoint.secret];
    const notices: { id: string; merchantId: string; url: string; reason: string }[] = [];
    const { logger, lines } = recordingLogger();
    const runner = worker({
      logger,
      retrySchedule: [0.2, 0.2, 0.2, 0.2, 0.2, 0.2],
      disableAfterSeconds: 0.5,
      onEndpointDisabled: async (disabled) => {
        notices.push(disabled);
      },
    });
    const ids = [await emit(merchantId), await emit(merchantId), await emit(merchantId)];
    await drainUntil([runner], async () => (await endpointRow(endpoint.id)).disabledAt !== null);

    const disabled = await endpointRow(endpoint.id);
    expect(disabled.disabledReason).to.be.a("string").and.match(/^every delivery failed for \d+ s \(last: HTTP 503\)/);
    expect(disabled.consecutiveFailures).to.be.at.least(2);
    expect(disabled.failingSince).to.be.instanceOf(Date);
    expect(disabled.disabledAt!.getTime() - disabled.failingSince!.getTime()).to.be.at.least(500);
    const mine = notices.filter((notice) => notice.id === endpoint.id);
    expect(mine).to.deep.equal([{ id: endpoint.id, merchantId, url: target.url, reason: disabled.disabledReason }]);
    expect(lines.filter((line) => line.message === "webhook endpoint disabled" && line.fields.endpointId === endpoint.id)).to.have.length(1);

    // Disabled: its deliveries stay pending but are never claimed, even when due.
    const attemptsAtDisable = (await attemptsOf(endpoint.id)).length;
    const receivedAtDisable = target.received.length;
    await store.db
      .update(webhookDeliveries)
      .set({ nextAttemptAt: new Date(Date.now() - 60_000), lockedUntil: null })
      .where(eq(webhookDeliveries.endpointId, endpoint.id));
    expect((await deliveriesOf(merchantId)).filter((delivery) => delivery.status === "pending").length).to.be.greaterThan(0);
    for (let round = 0; round < 5; round += 1) {
      await runner.runOnce();
      await sleep(POLL_MS);
    }
    expect((await attemptsOf(endpoint.id)).length).to.equal(attemptsAtDisable);
    expect(target.received.length).to.equal(receivedAtDisable);
    for (const id of ids) expect((await deliveryOf(endpoint.id, id)).status).to.equal("pending");
    expect(notices.filter((notice) => notice.id === endpoint.id)).to.have.length(1);
    // A disabled endpoint gets no new deliveries either.
    const afterDisable = await emit(merchantId);
    expect(await deliveryOf(endpoint.id, afterDisable)).to.equal(undefined);

    // Another endpoint: failures counted, then one success clears the run.
    const second = await receiver([]);
    second.respond = () => 500;
    const healthy = await addEndpoint(merchantId, second.url);
    second.secrets = [healthy.secret];
    const recovering = worker({ disableAfterSeconds: 3_600 });
    const first = await emit(merchantId, "invoice.paid", "inv_r");
    await drainUntil([recovering], async () => (await deliveryOf(healthy.id, first)).attempts >= 2);
    const failing = await endpointRow(healthy.id);
    expect(failing.consecutiveFailures).to.equal(2);
    expect(failing.failingSince).to.be.instanceOf(Date);
    expect(failing.disabledAt).to.equal(null);
    second.respond = () => 200;
    await drainUntil([recovering], async () => (await deliveryOf(healthy.id, first)).status !== "pending");
    expect((await deliveryOf(healthy.id, first)).status).to.equal("succeeded");
    const recovered = await endpointRow(healthy.id);
    expect(recovered.consecutiveFailures).to.equal(0);
    expect(recovered.failingSince).to.equal(null);
  });

  it("6. secret rotation: two signatures while the previous secret is valid, each secret verifying alone; one after it expires", async () => {
    const merchantId = newMerchant();
    const target = await receiver([]);
    const previous = newSigningSecret();
    const endpoint = await addEndpoint(merchantId, target.url, {
      previousSecretEncrypted: sealSecret(previous, KEY),
      previousSecretExpiresAt: new Date(Date.now() + 3_600_000),
    });
    target.secrets = [endpoint.secret, previous];
    const runner = worker();

    const during = await emit(merchantId);
    await drainUntil([runner], async () => (await pendingOf(merchantId)) === 0);
    const rotated = target.received.find((entry) => entry.id === during)!;
    const signatures = rotated.signature.split(" ");
    expect(signatures).to.have.length(2);
    expect(signatures.every((signature) => signature.startsWith("v1,"))).to.equal(true);
    const headers = (signature: string) => ({ "webhook-id": rotated.id, "webhook-timestamp": rotated.timestamp, "webhook-signature": signature });
    // The whole header verifies with either secret alone (a receiver holding only one of them).
    expect(new Webhook(endpoint.secret).verify(rotated.body, headers(rotated.signature))).to.be.an("object");
    expect(new Webhook(previous).verify(rotated.body, headers(rotated.signature))).to.be.an("object");
    // The first signature is the new secret's, the second the previous one's.
    expect(() => new Webhook(endpoint.secret).verify(rotated.body, headers(signatures[0]))).to.not.throw();
    expect(() => new Webhook(previous).verify(rotated.body, headers(signatures[1]))).to.not.throw();
    expect(() => new Webhook(previous).verify(rotated.body, headers(signatures[0]))).to.throw();
    expect(() => new Webhook(newSigningSecret()).verify(rotated.body, headers(rotated.signature))).to.throw();

    await store.db.update(webhookEndpoints).set({ previousSecretExpiresAt: new Date(Date.now() - 1_000) }).where(eq(webhookEndpoints.id, endpoint.id));
    const later = await emit(merchantId);
    await drainUntil([runner], async () => (await pendingOf(merchantId)) === 0);
    const single = target.received.find((entry) => entry.id === later)!;
    expect(single.signature.split(" ")).to.have.length(1);
    const singleHeaders = { "webhook-id": single.id, "webhook-timestamp": single.timestamp, "webhook-signature": single.signature };
    expect(new Webhook(endpoint.secret).verify(single.body, singleHeaders)).to.be.an("object");
    expect(() => new Webhook(previous).verify(single.body, singleHeaders)).to.throw();
  });

  it("7. endpoints filtered by type get only those types; an expired temporary endpoint gets no new deliveries", async () => {
    const merchantId = newMerchant();
    const target = await receiver([]);
    const paidOnly = await addEndpoint(merchantId, `${target.url}`, { eventTypes: ["invoice.paid", "invoice.refunded"] });
    const every = await addEndpoint(merchantId, `${target.url}`, { eventTypes: [] });
    const expired = await addEndpoint(merchantId, `${target.url}`, { expiresAt: new Date(Date.now() - 1_000) });
    const temporary = await addEndpoint(merchantId, `${target.url}`, { expiresAt: new Date(Date.now() + 3_600_000) });
    target.secrets = [paidOnly.secret, every.secret, expired.secret, temporary.secret];

    const paid = await emit(merchantId, "invoice.paid");
    const confirmed = await emit(merchantId, "invoice.confirmed");
    const refunded = await emit(merchantId, "invoice.refunded");
    const renewed = await emit(merchantId, "subscription.renewed");
    await drainUntil([worker()], async () => (await pendingOf(merchantId)) === 0);

    const deliveredTo = async (endpointId: string) =>
      (await store.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, endpointId)).orderBy(asc(webhookDeliveries.eventSequence))).map(
        (delivery) => [delivery.eventId, delivery.status],
      );
    expect(await deliveredTo(paidOnly.id)).to.deep.equal([
      [paid, "succeeded"],
      [refunded, "succeeded"],
    ]);
    expect(await deliveredTo(every.id)).to.deep.equal([paid, confirmed, refunded, renewed].map((id) => [id, "succeeded"]));
    expect(await deliveredTo(temporary.id)).to.deep.equal([paid, confirmed, refunded, renewed].map((id) => [id, "succeeded"]));
    expect(await deliveredTo(expired.id)).to.deep.equal([]);

    // Which secret verified each request tells which endpoint it went to.
    const verifiedBy = (index: number) => target.received.filter((entry) => entry.verifiedWith === index).map((entry) => entry.event.type).sort();
    expect(verifiedBy(0)).to.deep.equal(["invoice.paid", "invoice.refunded"]);
    expect(verifiedBy(1)).to.deep.equal(["invoice.confirmed", "invoice.paid", "invoice.refunded", "subscription.renewed"]);
    expect(verifiedBy(2)).to.deep.equal([]);
    expect(verifiedBy(3)).to.deep.equal(["invoice.confirmed", "invoice.paid", "invoice.refunded", "subscription.renewed"]);
    expect(target.received.every((entry) => entry.verifiedWith >= 0)).to.equal(true);
    expect(target.received).to.have.length(10);
  });

  it("8. a 3xx answer is a failed attempt: the redirect is not followed and its error names it", async () => {
    const merchantId = newMerchant();
    const elsewhere = await receiver([]);
    const redirecting = await startServer((_request, response) => response.writeHead(302, { location: elsewhere.url }).end("moved"));
    closers.push(() => redirecting.close());
    const endpoint = await addEndpoint(merchantId, redirecting.url);
    const id = await emit(merchantId);
    const runner = worker();
    await drainUntil([runner], async () => (await deliveryOf(endpoint.id, id)).attempts >= 1);

    expect(redirecting.requests).to.have.length(1);
    expect(elsewhere.received).to.have.length(0);
    const delivery = await deliveryOf(endpoint.id, id);
    expect(delivery).to.include({ status: "pending", attempts: 1, lastStatusCode: 302, lastError: `redirect to ${elsewhere.url} not followed` });
    const [attempt] = await attemptsOf(endpoint.id);
    expect(attempt).to.include({ statusCode: 302, error: `redirect to ${elsewhere.url} not followed`, responseExcerpt: "moved" });
    expect((await endpointRow(endpoint.id)).consecutiveFailures).to.equal(1);

    // Every retry is refused the same way until the delivery fails; the Location never sees a request.
    await drainUntil([runner], async () => (await deliveryOf(endpoint.id, id)).status !== "pending");
    expect((await deliveryOf(endpoint.id, id)).status).to.equal("failed");
    expect(redirecting.requests).to.have.length(SCHEDULE.length + 1);
    expect(elsewhere.received).to.have.length(0);
  });

  it("9. a secret that cannot be opened fails that attempt only; the rest of the batch is delivered and recorded", async () => {
    const merchantId = newMerchant();
    const target = await receiver([]);
    const good = await addEndpoint(merchantId, target.url);
    target.secrets = [good.secret];
    const unreadable = uniqueId("we");
    await store.db.insert(webhookEndpoints).values({
      id: unreadable,
      merchantId,
      url: target.url,
      eventTypes: [],
      secretEncrypted: sealSecret(newSigningSecret(), OTHER_KEY),
    });
    const id = await emit(merchantId);
    const runner = worker();
    await drainUntil([runner], async () => (await deliveryOf(good.id, id)).status !== "pending" && (await deliveryOf(unreadable, id)).attempts >= 1);

    expect(await deliveryOf(good.id, id)).to.include({ status: "succeeded", attempts: 1 });
    expect(target.received.map((entry) => [entry.id, entry.verifiedWith])).to.deep.equal([[id, 0]]);
    const broken = await deliveryOf(unreadable, id);
    expect(broken.lastError).to.be.a("string").and.match(/^could not sign/);
    expect(broken.lockedUntil).to.equal(null);
    const [attempt] = await attemptsOf(unreadable);
    expect(attempt).to.include({ attempt: 1, statusCode: null });
    expect(attempt.error).to.match(/^could not sign/);
  });
});
