import { expect } from "chai";
import { createHash } from "node:crypto";
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { SCOPES, createAuth, currentMerchant, hashKey, newApiKey, newId, requireAdmin, requireScope } from "../../api/auth";
import type { ApiDeps, AppEnv, MerchantRecord, Principal } from "../../api/env";
import { createBuckets, errorHandler } from "../../api/middleware";
import { ProblemError } from "../../api/problems";
import type { Store } from "../../api/store";
import { apiKeys, merchants } from "../../api/store/schema";
import { withClock } from "./helpers/clock";
import { recordingLogger } from "./helpers/logger";
import { sharedStore, uniqueId } from "./helpers/store";

const ADMIN_KEY = "admin-secret-of-some-length";

describe("unit: api/auth newApiKey, hashKey, newId", () => {
  it("makes keys of cb_live_ and 43 base64url characters (256 random bits)", () => {
    for (let index = 0; index < 50; index += 1) {
      expect(newApiKey().secret).to.match(/^cb_live_[A-Za-z0-9_-]{43}$/);
    }
  });

  it("shows the first 14 characters as the prefix", () => {
    const key = newApiKey();
    expect(key.prefix).to.have.length(14);
    expect(key.secret.startsWith(key.prefix)).to.equal(true);
    expect(key.prefix.startsWith("cb_live_")).to.equal(true);
  });

  it("stores the SHA-256 hex of the whole key", () => {
    const key = newApiKey();
    expect(key.hash).to.equal(createHash("sha256").update(key.secret).digest("hex"));
    expect(key.hash).to.equal(hashKey(key.secret));
  });

  it("makes a different key every time", () => {
    const secrets = new Set(Array.from({ length: 100 }, () => newApiKey().secret));
    expect(secrets.size).to.equal(100);
  });

  it("hashes with SHA-256 as hex", () => {
    expect(hashKey("abc")).to.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("makes ids of the kind, an underscore and 16 base64url characters (96 random bits), all different", () => {
    const ids = Array.from({ length: 100 }, () => newId("inv"));
    for (const id of ids) expect(id).to.match(/^inv_[A-Za-z0-9_-]{16}$/);
    expect(new Set(ids).size).to.equal(100);
    expect(newId("key")).to.match(/^key_[A-Za-z0-9_-]{16}$/);
  });

  it("knows the nine scopes", () => {
    expect(SCOPES).to.deep.equal([
      "merchant:read",
      "merchant:write",
      "invoices:read",
      "invoices:write",
      "subscriptions:read",
      "subscriptions:write",
      "statements:read",
      "webhooks:read",
      "webhooks:write",
    ]);
  });
});

describe("unit: api/auth createAuth (real store)", function () {
  // Tests take well under a second: a short limit turns a change that makes the code wait (a polling loop, a
  // stream that never ends) into a quick failure. Opening the shared store gets its own, longer limit.
  this.timeout(5_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  async function merchantWithKey(scopes: string[] = ["invoices:read"]) {
    const merchantId = uniqueId("mer");
    await store.db.insert(merchants).values({
      id: merchantId,
      name: "Shop",
      signerAddress: "0x0000000000000000000000000000000000000001",
      signerKeyEncrypted: "00",
      payoutAddress: "0x0000000000000000000000000000000000000002",
      ownerAddress: "0x0000000000000000000000000000000000000003",
    });
    const key = newApiKey();
    const keyId = uniqueId("key");
    await store.db.insert(apiKeys).values({ id: keyId, merchantId, name: "test", prefix: key.prefix, hash: key.hash, scopes });
    return { merchantId, keyId, key };
  }

  function appWith(options: { failuresPerMinute?: number; trustProxy?: boolean } = {}) {
    const deps = { config: { adminApiKey: ADMIN_KEY, trustProxy: options.trustProxy ?? false }, store } as unknown as ApiDeps;
    const failures = createBuckets(options.failuresPerMinute ?? 1_000);
    const auth = createAuth(deps, failures);
    const { logger } = recordingLogger();
    const app = new Hono<AppEnv>();
    app.use("*", async (c, next) => {
      c.set("requestId", "req_auth");
      await next();
    });
    app.use("*", auth.authenticate);
    app.get("/whoami", (c) => {
      const principal = c.get("principal");
      return c.json({ kind: principal.kind, merchantId: principal.merchant?.id ?? null, apiKeyId: principal.apiKeyId ?? null, scopes: [...principal.scopes] });
    });
    app.onError(errorHandler(logger));
    return { app, auth, failures };
  }

  const get = (app: Hono<AppEnv>, authorization?: string, headers: Record<string, string> = {}) =>
    app.request("/whoami", { headers: { ...(authorization === undefined ? {} : { authorization }), ...headers } });

  async function problemOf(response: Response) {
    return { status: response.status, body: (await response.json()) as { type: string; detail: string }, headers: response.headers };
  }

  it("refuses a request without a bearer key as 401 with WWW-Authenticate", async () => {
    const { app } = appWith();
    for (const authorization of [undefined, "", "Bearer", "Bearer ", "Basic abc", "Bearer a b", "Token cb_live_x"]) {
      const { status, body, headers } = await problemOf(await get(app, authorization));
      expect(status, String(authorization)).to.equal(401);
      expect(body.type).to.equal("/problems/unauthorized");
      expect(body.detail).to.equal("Send an API key as `Authorization: Bearer <key>`.");
      expect(headers.get("WWW-Authenticate")).to.equal('Bearer realm="chainbill"');
    }
  });

  it("takes the admin key as the admin principal", async () => {
    const { app } = appWith();
    const response = await get(app, `Bearer ${ADMIN_KEY}`);
    expect(response.status).to.equal(200);
    expect(await response.json()).to.deep.equal({ kind: "admin", merchantId: null, apiKeyId: null, scopes: [] });
  });

  it("does not take a key that only starts or ends like the admin key", async () => {
    const { app } = appWith();
    for (const secret of [ADMIN_KEY.slice(0, -1), `${ADMIN_KEY}x`, `x${ADMIN_KEY.slice(1)}`]) {
      expect((await get(app, `Bearer ${secret}`)).status, secret).to.equal(401);
    }
  });

  it("takes a merchant key as its merchant with the key's scopes", async () => {
    const { merchantId, keyId, key } = await merchantWithKey(["invoices:read", "statements:read"]);
    const { app } = appWith();
    const response = await get(app, `Bearer ${key.secret}`);
    expect(response.status).to.equal(200);
    expect(await response.json()).to.deep.equal({ kind: "merchant", merchantId, apiKeyId: keyId, scopes: ["invoices:read", "statements:read"] });
  });

  it("reads the scheme in any case and any whitespace before the key", async () => {
    const { key } = await merchantWithKey();
    const { app } = appWith();
    expect((await get(app, `bearer ${key.secret}`)).status).to.equal(200);
    expect((await get(app, `BEARER   ${key.secret}`)).status).to.equal(200);
    expect((await get(app, `Bearer\t${key.secret}`)).status).to.equal(200);
  });

  it("refuses an unknown key as 401 'unknown or was revoked'", async () => {
    const { app } = appWith();
    const { status, body } = await problemOf(await get(app, `Bearer ${newApiKey().secret}`));
    expect(status).to.equal(401);
    expect(body.detail).to.equal("The API key is unknown or was revoked.");
  });

  it("refuses a stored key that does not have the shape of an issued key, without looking it up", async () => {
    const { merchantId } = await merchantWithKey();
    const odd = "cb_live_short";
    await store.db.insert(apiKeys).values({ id: uniqueId("key"), merchantId, name: "odd", prefix: odd, hash: hashKey(odd), scopes: [] });
    const issued = newApiKey().secret;
    for (const secret of [`x${issued}`, `${issued}x`]) {
      await store.db.insert(apiKeys).values({ id: uniqueId("key"), merchantId, name: "odd", prefix: secret.slice(0, 14), hash: hashKey(secret), scopes: [] });
    }
    const { app } = appWith();
    expect((await get(app, `Bearer ${odd}`)).status).to.equal(401);
    expect((await get(app, `Bearer x${issued}`)).status).to.equal(401);
    expect((await get(app, `Bearer ${issued}x`)).status).to.equal(401);
  });

  it("refuses a revoked key", async () => {
    const { keyId, key } = await merchantWithKey();
    await store.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, keyId));
    const { app } = appWith();
    expect((await get(app, `Bearer ${key.secret}`)).status).to.equal(401);
  });

  it("remembers a key for five seconds, and forgets it at once when told", async () => {
    const { keyId, key } = await merchantWithKey();
    const { app, auth } = appWith();
    expect((await get(app, `Bearer ${key.secret}`)).status).to.equal(200);
    await store.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.id, keyId));
    expect((await get(app, `Bearer ${key.secret}`)).status, "cached").to.equal(200);
    auth.forget(key.hash);
    expect((await get(app, `Bearer ${key.secret}`)).status, "forgotten").to.equal(401);
  });

  it("forgets every key at once when told", async () => {
    const first = await merchantWithKey();
    const second = await merchantWithKey();
    const { app, auth } = appWith();
    expect((await get(app, `Bearer ${first.key.secret}`)).status).to.equal(200);
    expect((await get(app, `Bearer ${second.key.secret}`)).status).to.equal(200);
    await store.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.merchantId, first.merchantId));
    await store.db.update(apiKeys).set({ revokedAt: new Date() }).where(eq(apiKeys.merchantId, second.merchantId));
    auth.forgetAll();
    expect((await get(app, `Bearer ${first.key.secret}`)).status).to.equal(401);
    expect((await get(app, `Bearer ${second.key.secret}`)).status).to.equal(401);
  });

  it("looks a cached key up again once five seconds have passed", async () => {
    const { keyId, key } = await merchantWithKey();
    const { app } = appWith();
    await withClock(Date.now(), async (clock) => {
      expect((await get(app, `Bearer ${key.secret}`)).status).to.equal(200);
      await store.db.update(apiKeys).set({ revokedAt: new Date(clock.now) }).where(eq(apiKeys.id, keyId));
      clock.advance(4_999);
      expect((await get(app, `Bearer ${key.secret}`)).status, "within 5 s").to.equal(200);
      clock.advance(1);
      expect((await get(app, `Bearer ${key.secret}`)).status, "after 5 s").to.equal(401);
    });
  });

  it("refuses a client that spent its budget of failed attempts with 429 before any lookup, even with a valid key", async () => {
    const { key } = await merchantWithKey();
    const { app } = appWith({ failuresPerMinute: 2 });
    const client = { "x-forwarded-for": "ignored" };
    expect((await get(app, `Bearer ${newApiKey().secret}`, client)).status).to.equal(401);
    expect((await get(app, `Bearer ${newApiKey().secret}`, client)).status).to.equal(401);
    const { status, body, headers } = await problemOf(await get(app, `Bearer ${key.secret}`, client));
    expect(status).to.equal(429);
    expect(body.type).to.equal("/problems/rate-limited");
    expect(Number(headers.get("Retry-After"))).to.be.within(29, 30);
  });

  it("does not count successful or malformed-header requests against the client's budget", async () => {
    const { key } = await merchantWithKey();
    const { app } = appWith({ failuresPerMinute: 1 });
    for (let index = 0; index < 3; index += 1) {
      expect((await get(app, `Bearer ${key.secret}`)).status).to.equal(200);
      expect((await get(app, "Basic x")).status).to.equal(401);
    }
    expect((await get(app, `Bearer ${newApiKey().secret}`)).status).to.equal(401);
    expect((await get(app, `Bearer ${key.secret}`)).status).to.equal(429);
  });

  it("counts failures per client address, from X-Forwarded-For behind a trusted proxy", async () => {
    const { key } = await merchantWithKey();
    const { app } = appWith({ failuresPerMinute: 1, trustProxy: true });
    expect((await get(app, `Bearer ${newApiKey().secret}`, { "x-forwarded-for": "203.0.113.1" })).status).to.equal(401);
    expect((await get(app, `Bearer ${key.secret}`, { "x-forwarded-for": "203.0.113.1" })).status).to.equal(429);
    expect((await get(app, `Bearer ${key.secret}`, { "x-forwarded-for": "203.0.113.2" })).status).to.equal(200);
  });
});

describe("unit: api/auth requireAdmin, requireScope, currentMerchant", () => {
  const merchant = { id: "mer_1" } as MerchantRecord;
  const merchantPrincipal: Principal = { kind: "merchant", merchant, apiKeyId: "key_1", scopes: new Set(["invoices:read"]) };
  const adminPrincipal: Principal = { kind: "admin", scopes: new Set() };

  function appAs(principal: Principal) {
    const { logger } = recordingLogger();
    const app = new Hono<AppEnv>();
    app.use("*", async (c, next) => {
      c.set("requestId", "req_scope");
      c.set("principal", principal);
      await next();
    });
    app.get("/admin", requireAdmin, (c) => c.text("admin ok"));
    app.get("/invoices", requireScope("invoices:read"), (c) => c.text(`hello ${currentMerchant(c).id}`));
    app.get("/plans", requireScope("subscriptions:write"), (c) => c.text("plans ok"));
    app.onError(errorHandler(logger));
    return app;
  }

  async function detailOf(response: Response) {
    expect(response.status).to.equal(403);
    const body = (await response.json()) as { type: string; detail: string };
    expect(body.type).to.equal("/problems/forbidden");
    return body.detail;
  }

  it("lets the admin key through requireAdmin and refuses a merchant key", async () => {
    expect(await (await appAs(adminPrincipal).request("/admin")).text()).to.equal("admin ok");
    expect(await detailOf(await appAs(merchantPrincipal).request("/admin"))).to.equal("This operation needs the admin API key.");
  });

  it("lets a merchant key with the scope through requireScope", async () => {
    expect(await (await appAs(merchantPrincipal).request("/invoices")).text()).to.equal("hello mer_1");
  });

  it("refuses a merchant key without the scope, naming it", async () => {
    expect(await detailOf(await appAs(merchantPrincipal).request("/plans"))).to.equal("This API key lacks the `subscriptions:write` scope.");
  });

  it("refuses the admin key on merchant operations", async () => {
    expect(await detailOf(await appAs({ kind: "admin", scopes: new Set(["invoices:read"]) }).request("/invoices"))).to.equal(
      "This operation needs a merchant API key (the admin key only creates merchants).",
    );
  });

  it("currentMerchant is the principal's merchant, or a 403 without one", () => {
    expect(currentMerchant({ get: () => merchantPrincipal })).to.equal(merchant);
    let caught: unknown;
    try {
      currentMerchant({ get: () => ({ kind: "merchant", scopes: new Set() }) });
    } catch (error) {
      caught = error;
    }
    expect(caught).to.be.instanceOf(ProblemError);
    expect((caught as ProblemError).slug).to.equal("forbidden");
    expect((caught as ProblemError).detail).to.equal("This operation needs a merchant API key.");
  });
});
