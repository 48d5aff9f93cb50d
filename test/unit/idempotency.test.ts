import { expect } from "chai";
import { createHash } from "node:crypto";
import { and, eq } from "drizzle-orm";
import { Hono, type Context } from "hono";
import type { AppEnv, MerchantRecord } from "../../api/env";
import {
  IDEMPOTENCY_HEADER,
  MAX_IDEMPOTENCY_KEY_LENGTH,
  idempotent,
  readIdempotencyKey,
  requestFingerprint,
  withIdempotency,
  type RememberedResponse,
} from "../../api/idempotency";
import { errorHandler } from "../../api/middleware";
import { ProblemError } from "../../api/problems";
import type { Store, StoreDb } from "../../api/store";
import { idempotencyRecords } from "../../api/store/schema";
import { recordingLogger } from "./helpers/logger";
import { sharedStore, uniqueId } from "./helpers/store";

const HOUR = 60 * 60 * 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

describe("unit: api/idempotency requestFingerprint", () => {
  it("is the SHA-256 of the method, the path and the canonical JSON body", () => {
    const expected = createHash("sha256").update('POST /v1/invoices\n{"a":1,"b":[true,null]}').digest("hex");
    expect(requestFingerprint("POST", "/v1/invoices", { b: [true, null], a: 1 })).to.equal(expected);
  });

  it("ignores the order of keys at every depth", () => {
    expect(requestFingerprint("POST", "/p", { a: 1, b: { c: 2, d: 3 } })).to.equal(requestFingerprint("POST", "/p", { b: { d: 3, c: 2 }, a: 1 }));
  });

  it("ignores the whitespace of the JSON it was parsed from", () => {
    expect(requestFingerprint("POST", "/p", JSON.parse('{ "a" : [ 1, 2 ] }'))).to.equal(requestFingerprint("POST", "/p", JSON.parse('{"a":[1,2]}')));
  });

  it("ignores the case of the method", () => {
    expect(requestFingerprint("post", "/p", { a: 1 })).to.equal(requestFingerprint("POST", "/p", { a: 1 }));
  });

  it("differs with the method, the path or the body", () => {
    const base = requestFingerprint("POST", "/v1/invoices", { a: 1 });
    expect(requestFingerprint("PUT", "/v1/invoices", { a: 1 })).not.to.equal(base);
    expect(requestFingerprint("POST", "/v1/invoices/x", { a: 1 })).not.to.equal(base);
    expect(requestFingerprint("POST", "/v1/invoices", { a: 2 })).not.to.equal(base);
    expect(requestFingerprint("POST", "/v1/invoices", { a: "1" })).not.to.equal(base);
  });

  it("treats a missing body as JSON null", () => {
    const expected = createHash("sha256").update("DELETE /v1/api-keys/k\nnull").digest("hex");
    expect(requestFingerprint("DELETE", "/v1/api-keys/k", undefined)).to.equal(expected);
    expect(requestFingerprint("DELETE", "/v1/api-keys/k", null)).to.equal(expected);
  });
});

describe("unit: api/idempotency readIdempotencyKey", () => {
  const app = new Hono<AppEnv>();
  app.get("/optional", (c) => c.json({ key: readIdempotencyKey(c, false) ?? null }));
  app.get("/required", (c) => c.json({ key: readIdempotencyKey(c, true) ?? null }));
  app.onError((error, c) => {
    if (!(error instanceof ProblemError)) throw error;
    return c.json({ slug: error.slug, status: error.status, detail: error.detail, extensions: error.extensions }, error.status);
  });

  it("names the header Idempotency-Key and allows 255 characters", () => {
    expect(IDEMPOTENCY_HEADER).to.equal("Idempotency-Key");
    expect(MAX_IDEMPOTENCY_KEY_LENGTH).to.equal(255);
  });

  it("returns the key when present", async () => {
    for (const path of ["/optional", "/required"]) {
      const response = await app.request(path, { headers: { "Idempotency-Key": "order-42" } });
      expect(await response.json()).to.deep.equal({ key: "order-42" });
    }
  });

  it("is undefined when the key is missing or empty and not required", async () => {
    expect(await (await app.request("/optional")).json()).to.deep.equal({ key: null });
    expect(await (await app.request("/optional", { headers: { "Idempotency-Key": "" } })).json()).to.deep.equal({ key: null });
  });

  it("is a 400 idempotency-key-missing when the key is required and missing or empty", async () => {
    for (const headers of [{}, { "Idempotency-Key": "" }] as Record<string, string>[]) {
      const response = await app.request("/required", { headers });
      expect(response.status).to.equal(400);
      const message = "is required: send a unique value (e.g. a UUID) per invoice, and the same value when you retry";
      expect(await response.json()).to.deep.equal({
        slug: "idempotency-key-missing",
        status: 400,
        detail: `The Idempotency-Key header ${message}.`,
        extensions: { errors: [{ field: "Idempotency-Key", message }] },
      });
    }
  });

  it("accepts a key of exactly 255 characters", async () => {
    const key = "k".repeat(255);
    expect(await (await app.request("/required", { headers: { "Idempotency-Key": key } })).json()).to.deep.equal({ key });
  });

  it("is a 400 idempotency-key-invalid for a key of 256 characters, required or not", async () => {
    for (const path of ["/optional", "/required"]) {
      const response = await app.request(path, { headers: { "Idempotency-Key": "k".repeat(256) } });
      expect(response.status).to.equal(400);
      expect(await response.json()).to.deep.equal({
        slug: "idempotency-key-invalid",
        status: 400,
        detail: "The Idempotency-Key header must be at most 255 characters.",
        extensions: { errors: [{ field: "Idempotency-Key", message: "must be at most 255 characters" }] },
      });
    }
  });
});

describe("unit: api/idempotency withIdempotency (real store)", function () {
  // Tests take well under a second: a short limit turns a change that makes the code wait (a polling loop, a
  // stream that never ends) into a quick failure. Opening the shared store gets its own, longer limit.
  this.timeout(5_000);
  let store: Store;
  let db: StoreDb;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
    db = store.db;
  });

  const scopeFor = (fingerprint = "f1") => ({ merchantId: uniqueId("mer"), key: uniqueId("key"), fingerprint });

  function counting(response: RememberedResponse & { failed?: boolean }, delayMs = 0) {
    const work = async () => {
      work.calls += 1;
      if (delayMs) await sleep(delayMs);
      return response;
    };
    work.calls = 0;
    return work;
  }

  async function recordOf(scope: { merchantId: string; key: string }) {
    const rows = await db
      .select()
      .from(idempotencyRecords)
      .where(and(eq(idempotencyRecords.merchantId, scope.merchantId), eq(idempotencyRecords.key, scope.key)));
    return rows[0];
  }

  async function seed(scope: { merchantId: string; key: string }, values: Partial<typeof idempotencyRecords.$inferInsert>) {
    await db.insert(idempotencyRecords).values({ merchantId: scope.merchantId, key: scope.key, requestHash: "f1", ...values });
  }

  it("runs the work the first time and stores its response", async () => {
    const scope = scopeFor();
    const work = counting({ status: 201, body: '{"id":"inv_1"}' });
    expect(await withIdempotency(db, scope, work)).to.deep.equal({ status: 201, body: '{"id":"inv_1"}', replayed: false });
    expect(work.calls).to.equal(1);
    const record = await recordOf(scope);
    expect(record).to.include({ requestHash: "f1", statusCode: 201, completed: true });
    expect(record.responseBody).to.deep.equal({ text: '{"id":"inv_1"}' });
  });

  it("replays the stored status and exact body for the same request, without running the work again", async () => {
    const scope = scopeFor();
    const body = '{"z":1,  "a":2}';
    await withIdempotency(db, scope, counting({ status: 201, body }));
    const again = counting({ status: 500, body: "other" });
    expect(await withIdempotency(db, scope, again)).to.deep.equal({ status: 201, body, replayed: true });
    expect(again.calls).to.equal(0);
  });

  it("keeps keys apart per merchant", async () => {
    const scope = scopeFor();
    await withIdempotency(db, scope, counting({ status: 201, body: "first" }));
    const otherMerchant = { ...scope, merchantId: uniqueId("mer"), fingerprint: "other" };
    expect(await withIdempotency(db, otherMerchant, counting({ status: 200, body: "second" }))).to.deep.equal({
      status: 200,
      body: "second",
      replayed: false,
    });
  });

  it("refuses the key with another request as idempotency-key-reused, without running the work", async () => {
    const scope = scopeFor();
    await withIdempotency(db, scope, counting({ status: 201, body: "{}" }));
    const work = counting({ status: 201, body: "{}" });
    const error = await rejection(withIdempotency(db, { ...scope, fingerprint: "f2" }, work));
    expect(error).to.be.instanceOf(ProblemError);
    const problem = error as ProblemError;
    expect(problem.slug).to.equal("idempotency-key-reused");
    expect(problem.status).to.equal(409);
    expect(problem.detail).to.equal(
      `The Idempotency-Key "${scope.key}" was already used with a different request. Use a new key for a new request.`,
    );
    expect(problem.extensions).to.deep.equal({ errors: [{ field: "Idempotency-Key", message: "was already used with a different request" }] });
    expect(work.calls).to.equal(0);
  });

  it("does not remember a failed response: the key is released and a retry runs again", async () => {
    const scope = scopeFor();
    const failing = counting({ status: 422, body: '{"type":"/problems/validation-error"}', failed: true });
    expect(await withIdempotency(db, scope, failing)).to.deep.equal({ status: 422, body: '{"type":"/problems/validation-error"}', replayed: false });
    expect(await recordOf(scope)).to.equal(undefined);
    const retry = counting({ status: 201, body: "ok" });
    expect(await withIdempotency(db, scope, retry)).to.deep.equal({ status: 201, body: "ok", replayed: false });
    expect(retry.calls).to.equal(1);
  });

  it("lets a corrected request reuse the key after a failure (another fingerprint)", async () => {
    const scope = scopeFor();
    await withIdempotency(db, scope, counting({ status: 422, body: "bad", failed: true }));
    expect(await withIdempotency(db, { ...scope, fingerprint: "fixed" }, counting({ status: 201, body: "ok" }))).to.deep.equal({
      status: 201,
      body: "ok",
      replayed: false,
    });
  });

  it("releases the key when the work throws, and rethrows the error", async () => {
    const scope = scopeFor();
    const boom = new Error("chain down");
    const error = await rejection(
      withIdempotency(db, scope, async () => {
        throw boom;
      }),
    );
    expect(error).to.equal(boom);
    expect(await recordOf(scope)).to.equal(undefined);
    const retry = counting({ status: 202, body: "sent" });
    expect(await withIdempotency(db, scope, retry)).to.deep.equal({ status: 202, body: "sent", replayed: false });
    expect(retry.calls).to.equal(1);
  });

  it("runs the work exactly once for 20 concurrent calls with one key, and all get the same body", async () => {
    const scope = scopeFor();
    const work = counting({ status: 201, body: '{"id":"inv_once"}' }, 150);
    const results = await Promise.all(Array.from({ length: 20 }, () => withIdempotency(db, scope, work)));
    expect(work.calls).to.equal(1);
    for (const result of results) expect(result).to.deep.include({ status: 201, body: '{"id":"inv_once"}' });
    expect(results.filter((result) => !result.replayed)).to.have.length(1);
    expect(results.filter((result) => result.replayed)).to.have.length(19);
  });

  it("lets a waiting duplicate run the work itself when the first request fails", async () => {
    const scope = scopeFor();
    const first = withIdempotency(db, scope, counting({ status: 503, body: "down", failed: true }, 150));
    await sleep(20);
    const second = counting({ status: 201, body: "ok" });
    const [a, b] = await Promise.all([first, withIdempotency(db, scope, second)]);
    expect(a).to.deep.equal({ status: 503, body: "down", replayed: false });
    expect(b).to.deep.equal({ status: 201, body: "ok", replayed: false });
    expect(second.calls).to.equal(1);
  });

  it("stores the response the work remembers in its own transaction instead of the one it returns", async () => {
    const scope = scopeFor();
    const result = await withIdempotency(db, scope, async (remember) => {
      await db.transaction(async (tx) => {
        await remember(tx, { status: 201, body: "remembered" });
      });
      return { status: 201, body: "returned" };
    });
    expect(result).to.deep.equal({ status: 201, body: "returned", replayed: false });
    expect(await withIdempotency(db, scope, counting({ status: 200, body: "x" }))).to.deep.equal({ status: 201, body: "remembered", replayed: true });
  });

  it("replays a response stored as plain JSON by an older version as its JSON text", async () => {
    const scope = scopeFor();
    await seed(scope, { statusCode: 200, responseBody: { id: "legacy" }, completed: true });
    expect(await withIdempotency(db, scope, counting({ status: 500, body: "x" }))).to.deep.equal({
      status: 200,
      body: '{"id":"legacy"}',
      replayed: true,
    });
    const other = scopeFor();
    await seed(other, { statusCode: 200, responseBody: { text: 5 }, completed: true });
    expect((await withIdempotency(db, other, counting({ status: 500, body: "x" }))).body).to.equal('{"text":5}');
    const empty = scopeFor();
    await seed(empty, { statusCode: 204, responseBody: null, completed: true });
    expect(await withIdempotency(db, empty, counting({ status: 500, body: "x" }))).to.deep.equal({ status: 204, body: "null", replayed: true });
    const bare = scopeFor();
    await seed(bare, { statusCode: 200, responseBody: "just text", completed: true });
    expect((await withIdempotency(db, bare, counting({ status: 500, body: "x" }))).body).to.equal('"just text"');
  });

  it("takes over an unfinished record older than two minutes (its request died)", async () => {
    const scope = scopeFor();
    await seed(scope, { requestHash: "someone-else", createdAt: new Date(Date.now() - 3 * 60_000) });
    const work = counting({ status: 201, body: "mine" });
    expect(await withIdempotency(db, { ...scope, fingerprint: "f1" }, work)).to.deep.equal({ status: 201, body: "mine", replayed: false });
    expect(work.calls).to.equal(1);
  });

  it("still replays a completed record older than two minutes", async () => {
    const scope = scopeFor();
    await seed(scope, { statusCode: 201, responseBody: { text: "old" }, completed: true, createdAt: new Date(Date.now() - 3 * 60_000) });
    expect(await withIdempotency(db, scope, counting({ status: 500, body: "x" }))).to.deep.equal({ status: 201, body: "old", replayed: true });
  });

  it("still refuses another request for a completed record older than two minutes", async () => {
    const scope = scopeFor();
    await seed(scope, { statusCode: 201, responseBody: { text: "old" }, completed: true, createdAt: new Date(Date.now() - 3 * 60_000) });
    const error = await rejection(withIdempotency(db, { ...scope, fingerprint: "f2" }, counting({ status: 201, body: "x" })));
    expect((error as ProblemError).slug).to.equal("idempotency-key-reused");
  });

  it("forgets a completed record older than 24 hours: the key is new again", async () => {
    const scope = scopeFor();
    await seed(scope, { requestHash: "old", statusCode: 201, responseBody: { text: "old" }, completed: true, createdAt: new Date(Date.now() - 25 * HOUR) });
    const work = counting({ status: 201, body: "new" });
    expect(await withIdempotency(db, scope, work)).to.deep.equal({ status: 201, body: "new", replayed: false });
    expect(work.calls).to.equal(1);
  });

  it("still honours a completed record younger than 24 hours", async () => {
    const scope = scopeFor();
    await seed(scope, { requestHash: "old", statusCode: 201, responseBody: { text: "old" }, completed: true, createdAt: new Date(Date.now() - 23 * HOUR) });
    const error = await rejection(withIdempotency(db, scope, counting({ status: 201, body: "x" })));
    expect((error as ProblemError).slug).to.equal("idempotency-key-reused");
  });

  it("gives up with idempotency-request-in-progress when the first request does not finish within 15 s", async () => {
    const scope = scopeFor();
    await seed(scope, {}); // in progress, just started
    // The wait is measured with Date.now: move the clock 8 s ahead every 100 ms (up to 110 s, short of the two
    // minutes after which the record would count as abandoned), so the 15 s pass in a few polls.
    const real = Date.now;
    let skew = 0;
    const ticker = setInterval(() => {
      skew = Math.min(skew + 8_000, 110_000);
    }, 100);
    Date.now = () => real() + skew;
    let error: unknown;
    const work = counting({ status: 201, body: "x" });
    try {
      error = await rejection(withIdempotency(db, scope, work));
    } finally {
      clearInterval(ticker);
      Date.now = real;
    }
    expect(error).to.be.instanceOf(ProblemError);
    expect((error as ProblemError).slug).to.equal("idempotency-request-in-progress");
    expect((error as ProblemError).detail).to.equal(
      `A request with the Idempotency-Key "${scope.key}" is still being processed. Retry shortly with the same key.`,
    );
    expect(skew).to.be.at.least(16_000);
    expect(work.calls).to.equal(0);
    expect(await recordOf(scope)).to.include({ completed: false });
  });

  it("waits for a request in progress rather than giving up at once", async () => {
    const scope = scopeFor();
    await seed(scope, {});
    setTimeout(() => {
      void db
        .update(idempotencyRecords)
        .set({ statusCode: 201, responseBody: { text: "finished" }, completed: true })
        .where(and(eq(idempotencyRecords.merchantId, scope.merchantId), eq(idempotencyRecords.key, scope.key)))
        .execute();
    }, 200);
    expect(await withIdempotency(db, scope, counting({ status: 500, body: "x" }))).to.deep.equal({ status: 201, body: "finished", replayed: true });
  });

  it("deletes records older than 24 hours at most every ten minutes per database", async () => {
    // A database handle the module has not seen yet (cleanup is tracked per handle), sharing the real connection.
    const fresh = Object.create(db) as StoreDb;
    const old = scopeFor();
    const recent = scopeFor();
    await seed(old, { completed: true, statusCode: 200, responseBody: { text: "x" }, createdAt: new Date(Date.now() - 25 * HOUR) });
    await seed(recent, { completed: true, statusCode: 200, responseBody: { text: "x" }, createdAt: new Date(Date.now() - 23 * HOUR) });
    const real = Date.now;
    const t0 = real();
    Date.now = () => t0;
    try {
      await withIdempotency(fresh, scopeFor(), counting({ status: 200, body: "x" }));
    } finally {
      Date.now = real;
    }
    expect(await recordOf(old)).to.equal(undefined);
    expect(await recordOf(recent)).not.to.equal(undefined);

    const later = scopeFor();
    await seed(later, { completed: true, statusCode: 200, responseBody: { text: "x" }, createdAt: new Date(Date.now() - 25 * HOUR) });
    Date.now = () => t0 + 9 * 60_000;
    try {
      await withIdempotency(fresh, scopeFor(), counting({ status: 200, body: "x" }));
    } finally {
      Date.now = real;
    }
    expect(await recordOf(later)).not.to.equal(undefined, "a second cleanup ran within ten minutes");

    Date.now = () => t0 + 11 * 60_000;
    try {
      await withIdempotency(fresh, scopeFor(), counting({ status: 200, body: "x" }));
    } finally {
      Date.now = real;
    }
    expect(await recordOf(later)).to.equal(undefined);
  });
});

describe("unit: api/idempotency idempotent middleware (real store)", function () {
  // Tests take well under a second: a short limit turns a change that makes the code wait (a polling loop, a
  // stream that never ends) into a quick failure. Opening the shared store gets its own, longer limit.
  this.timeout(5_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  function appFor(merchant: { id: string } | undefined, required: boolean) {
    const app = new Hono<AppEnv>();
    const { logger } = recordingLogger();
    let runs = 0;
    app.use("*", async (c, next) => {
      c.set("requestId", "req_1");
      c.set("principal", { kind: merchant ? "merchant" : "admin", merchant: merchant as MerchantRecord | undefined, scopes: new Set() });
      await next();
    });
    app.use("*", idempotent(store.db, { required }));
    const handler = async (c: Context<AppEnv>) => {
      runs += 1;
      const text = await c.req.text();
      if (text.includes("invalid")) return c.json({ type: "/problems/validation-error", run: runs }, 422);
      if (text.includes("malformed")) return c.json({ type: "/problems/malformed-request", run: runs }, 400);
      const remember = c.get("remember");
      return c.json({ run: runs, remembered: typeof remember === "function", z: 1, a: 2 }, 201);
    };
    app.post("/things", handler);
    app.post("/other", handler);
    app.onError(errorHandler(logger));
    return { app, runs: () => runs };
  }

  const post = (app: Hono<AppEnv>, key: string | undefined, body: string, path = "/things") =>
    app.request(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...(key === undefined ? {} : { "Idempotency-Key": key }) },
      body,
    });

  it("runs the route once and replays its response byte for byte, marked Idempotent-Replayed", async () => {
    const { app, runs } = appFor({ id: uniqueId("mer") }, true);
    const first = await post(app, "k1", '{"amount":"1.00","currency":"USDC"}');
    const firstText = await first.text();
    expect(first.status).to.equal(201);
    expect(first.headers.get("Idempotent-Replayed")).to.equal(null);
    expect(JSON.parse(firstText)).to.deep.equal({ run: 1, remembered: true, z: 1, a: 2 });

    const again = await post(app, "k1", '{ "currency": "USDC", "amount": "1.00" }');
    expect(again.status).to.equal(201);
    expect(again.headers.get("Idempotent-Replayed")).to.equal("true");
    expect(again.headers.get("content-type")).to.equal("application/json");
    expect(await again.text()).to.equal(firstText);
    expect(runs()).to.equal(1);
  });

  it("answers 409 idempotency-key-reused for another body or another path with the key", async () => {
    const { app, runs } = appFor({ id: uniqueId("mer") }, true);
    await post(app, "k1", '{"amount":"1.00"}');
    const otherBody = await post(app, "k1", '{"amount":"2.00"}');
    expect(otherBody.status).to.equal(409);
    expect(((await otherBody.json()) as { type: string }).type).to.equal("/problems/idempotency-key-reused");
    expect((await post(app, "k1", '{"amount":"1.00"}', "/other")).status).to.equal(409);
    expect(runs()).to.equal(1);
  });

  it("does not remember a failed response: the same key runs again", async () => {
    const { app, runs } = appFor({ id: uniqueId("mer") }, true);
    expect((await post(app, "k1", '{"invalid":true}')).status).to.equal(422);
    const retry = await post(app, "k1", '{"invalid":true}');
    expect(retry.status).to.equal(422);
    expect(retry.headers.get("Idempotent-Replayed")).to.equal(null);
    expect(((await retry.json()) as { run: number }).run).to.equal(2);
    expect((await post(app, "k1", '{"fixed":true}')).status).to.equal(201);
    expect(runs()).to.equal(3);
    expect((await post(app, "k400", '{"malformed":true}')).status).to.equal(400);
    const again = await post(app, "k400", '{"malformed":true}');
    expect(again.headers.get("Idempotent-Replayed")).to.equal(null);
    expect(((await again.json()) as { run: number }).run).to.equal(5);
  });

  it("fingerprints a body that is not JSON by its text", async () => {
    const { app } = appFor({ id: uniqueId("mer") }, true);
    expect((await post(app, "k1", "not json")).status).to.equal(201);
    expect((await post(app, "k1", "not json")).headers.get("Idempotent-Replayed")).to.equal("true");
    expect((await post(app, "k1", "not json either")).status).to.equal(409);
    expect((await post(app, "k2", "")).status).to.equal(201);
    expect((await post(app, "k2", "")).headers.get("Idempotent-Replayed")).to.equal("true");
    expect((await post(app, "k2", "null")).headers.get("Idempotent-Replayed")).to.equal("true");
    expect((await post(app, "k2", '{"unparsedBody":""}')).status).to.equal(409);
  });

  it("without a key runs the route every time when the key is optional", async () => {
    const { app, runs } = appFor({ id: uniqueId("mer") }, false);
    expect((await post(app, undefined, "{}")).status).to.equal(201);
    const second = await post(app, undefined, "{}");
    expect(second.status).to.equal(201);
    expect(((await second.json()) as { remembered: boolean }).remembered).to.equal(false);
    expect(runs()).to.equal(2);
  });

  it("answers 400 idempotency-key-missing when the key is required and missing", async () => {
    const { app, runs } = appFor({ id: uniqueId("mer") }, true);
    const response = await post(app, undefined, "{}");
    expect(response.status).to.equal(400);
    expect(((await response.json()) as { type: string }).type).to.equal("/problems/idempotency-key-missing");
    expect(runs()).to.equal(0);
  });

  it("scopes the admin key's requests to one scope of their own", async () => {
    const { app, runs } = appFor(undefined, true);
    const key = uniqueId("admin-key");
    expect((await post(app, key, "{}")).status).to.equal(201);
    expect((await post(app, key, "{}")).headers.get("Idempotent-Replayed")).to.equal("true");
    expect((await post(app, key, '{"other":1}')).status).to.equal(409);
    expect(runs()).to.equal(1);
    const merchantApp = appFor({ id: "admin-lookalike" }, true);
    expect((await post(merchantApp.app, key, '{"other":1}')).status).to.equal(201);
    const [record] = await store.db.select().from(idempotencyRecords).where(and(eq(idempotencyRecords.merchantId, "admin"), eq(idempotencyRecords.key, key)));
    expect(record).to.include({ completed: true, statusCode: 201 });
  });
});
