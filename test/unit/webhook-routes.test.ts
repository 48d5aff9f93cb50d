import { OpenAPIHono } from "@hono/zod-openapi";
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import type { ApiDeps, AppEnv, MerchantRecord, Principal } from "../../api/env";
import { errorHandler } from "../../api/middleware";
import { MAX_ENDPOINTS, webhookRoutes } from "../../api/routes/webhooks";
import type { Store } from "../../api/store";
import { eventId, recordEvent } from "../../api/webhooks/events";
import { recordingLogger } from "./helpers/logger";
import { sharedStore, uniqueId } from "./helpers/store";

/**
 * The webhook routes on the real store, as a merchant key calls them: URLs refused by the SSRF rules (with
 * private addresses not allowed, the production setting), the endpoint limit under concurrent creation, tenant
 * isolation, and polling GET /v1/events with its cursor.
 */
function webhookApp(store: Store, merchantId: string, options: { allowPrivate?: boolean; scopes?: string[] } = {}) {
  const deps = {
    store,
    config: { webhooks: { allowPrivateUrls: options.allowPrivate ?? false }, operatorKeySecret: randomBytes(32) },
  } as unknown as ApiDeps;
  const principal: Principal = {
    kind: "merchant",
    merchant: { id: merchantId } as MerchantRecord,
    apiKeyId: "key_route",
    scopes: new Set(options.scopes ?? ["webhooks:read", "webhooks:write"]),
  };
  const app = new OpenAPIHono<AppEnv>();
  app.use("*", async (c, next) => {
    c.set("requestId", "req_route");
    c.set("principal", principal);
    await next();
  });
  app.route("/v1", webhookRoutes(deps));
  app.onError(errorHandler(recordingLogger().logger));
  const call = async (method: string, path: string, body?: unknown): Promise<Response> =>
    app.request(path, { method, headers: body === undefined ? {} : { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { app, call };
}

describe("unit: webhook routes (real store)", function () {
  this.timeout(20_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  it("refuses endpoint URLs that reach private, loopback or link-local addresses, plain http and credentials (422 on url)", async () => {
    const { call } = webhookApp(store, uniqueId("mer"));
    for (const url of [
      "http://example.com/hook",
      "https://127.0.0.1/hook",
      "https://[::1]/hook",
      "https://10.1.2.3/hook",
      "https://169.254.169.254/latest/meta-data",
      "https://192.168.1.10/hook",
      "https://localhost/hook",
      "https://user:secret@93.184.216.34/hook",
      "not a url",
    ]) {
      const response = await call("POST", "/v1/webhook-endpoints", { url });
      expect(response.status, url).to.equal(422);
      const problem = (await response.json()) as { errors: { field: string; message: string }[] };
      expect(problem.errors[0].field, url).to.equal("url");
    }
    const accepted = await call("POST", "/v1/webhook-endpoints", { url: "https://93.184.216.34/hook", events: ["invoice.paid"] });
    expect(accepted.status).to.equal(201);
    const endpoint = (await accepted.json()) as { secret: string; events: string[]; enabled: boolean };
    expect(endpoint.secret).to.match(/^whsec_[A-Za-z0-9+/]{32}$/);
    expect(endpoint).to.include({ enabled: true });
    expect(endpoint.events).to.deep.equal(["invoice.paid"]);
  });

  it("accepts loopback and plain http only where private URLs are allowed (local development)", async () => {
    const { call } = webhookApp(store, uniqueId("mer"), { allowPrivate: true });
    expect((await call("POST", "/v1/webhook-endpoints", { url: "http://127.0.0.1:3000/webhooks" })).status).to.equal(201);
  });

  it("refuses an unknown or repeated event type, and a PATCH to a private URL", async () => {
    const { call } = webhookApp(store, uniqueId("mer"));
    expect((await call("POST", "/v1/webhook-endpoints", { url: "https://93.184.216.34/a", events: ["invoice.stolen"] })).status).to.equal(422);
    expect((await call("POST", "/v1/webhook-endpoints", { url: "https://93.184.216.34/a", events: ["invoice.paid", "invoice.paid"] })).status).to.equal(422);
    const created = (await (await call("POST", "/v1/webhook-endpoints", { url: "https://93.184.216.34/a" })).json()) as { id: string };
    const patched = await call("PATCH", `/v1/webhook-endpoints/${created.id}`, { url: "https://10.0.0.1/a" });
    expect(patched.status).to.equal(422);
    const unchanged = (await (await call("GET", `/v1/webhook-endpoints/${created.id}`)).json()) as { url: string; secret?: string };
    expect(unchanged.url).to.equal("https://93.184.216.34/a");
    expect(unchanged.secret).to.equal(undefined);
  });

  it(`holds at most ${MAX_ENDPOINTS} endpoints, also under concurrent creation`, async () => {
    const { call } = webhookApp(store, uniqueId("mer"));
    const statuses = await Promise.all(Array.from({ length: MAX_ENDPOINTS + 4 }, (_, index) => call("POST", "/v1/webhook-endpoints", { url: `https://93.184.216.34/${index}` }).then((response) => response.status)));
    expect(statuses.filter((status) => status === 201)).to.have.length(MAX_ENDPOINTS);
    expect(statuses.filter((status) => status === 409)).to.have.length(4);
  });

  it("another merchant's endpoint and event answer 404 on every route", async () => {
    const owner = webhookApp(store, uniqueId("mer"));
    const strangerId = uniqueId("mer");
    const stranger = webhookApp(store, strangerId);
    const endpoint = (await (await owner.call("POST", "/v1/webhook-endpoints", { url: "https://93.184.216.34/x" })).json()) as { id: string };
    for (const [method, path, body] of [
      ["GET", `/v1/webhook-endpoints/${endpoint.id}`],
      ["PATCH", `/v1/webhook-endpoints/${endpoint.id}`, { enabled: false }],
      ["DELETE", `/v1/webhook-endpoints/${endpoint.id}`],
      ["POST", `/v1/webhook-endpoints/${endpoint.id}/rotate-secret`, {}],
      ["GET", `/v1/webhook-endpoints/${endpoint.id}/attempts`],
      ["POST", `/v1/webhook-endpoints/${endpoint.id}/redeliver`],
    ] as const) {
      expect((await stranger.call(method, path, body)).status, `${method} ${path}`).to.equal(404);
    }
    const listed = (await (await stranger.call("GET", "/v1/webhook-endpoints")).json()) as { data: unknown[] };
    expect(listed.data).to.deep.equal([]);
    expect((await owner.call("GET", `/v1/webhook-endpoints/${endpoint.id}`)).status).to.equal(200);
  });

  it("GET /v1/events pages oldest first after a cursor, shows an event only once it is 2 s old, and keeps the cursor on an empty page", async () => {
    const merchantId = uniqueId("mer");
    const { call } = webhookApp(store, merchantId);
    const ids: string[] = [];
    for (let index = 0; index < 3; index += 1) {
      const id = eventId("routes", merchantId, index);
      ids.push(id);
      await recordEvent(store.db, id, { merchantId, type: "invoice.paid", orderKey: `inv_${index}`, occurredAt: new Date(), data: { invoiceId: `inv_${index}` } });
    }
    type Page = { data: { id: string }[]; nextCursor: string | null; hasMore: boolean };
    const fresh = (await (await call("GET", "/v1/events")).json()) as Page;
    expect(fresh.data).to.deep.equal([]);
    await store.db.execute(sql`UPDATE chainbill_api.webhook_events SET created_at = now() - interval '5 seconds' WHERE merchant_id = ${merchantId}`);
    const first = (await (await call("GET", "/v1/events?limit=2")).json()) as Page;
    expect(first.data.map((event) => event.id)).to.deep.equal(ids.slice(0, 2));
    expect(first.hasMore).to.equal(true);
    const second = (await (await call("GET", `/v1/events?limit=2&after=${first.nextCursor}`)).json()) as Page;
    expect(second.data.map((event) => event.id)).to.deep.equal([ids[2]]);
    const empty = (await (await call("GET", `/v1/events?after=${second.nextCursor}`)).json()) as Page;
    expect(empty.data).to.deep.equal([]);
    expect(empty.nextCursor).to.equal(second.nextCursor);
    expect((await call("GET", "/v1/events?after=cur_tampered")).status).to.equal(422);
    const other = webhookApp(store, uniqueId("mer"));
    expect((await other.call("GET", `/v1/events/${ids[0]}`)).status).to.equal(404);
  });

  it("a key without the webhook scopes is refused (403)", async () => {
    const { call } = webhookApp(store, uniqueId("mer"), { scopes: ["invoices:read"] });
    expect((await call("GET", "/v1/webhook-endpoints")).status).to.equal(403);
    expect((await call("POST", "/v1/webhook-endpoints", { url: "https://93.184.216.34/x" })).status).to.equal(403);
    expect((await call("GET", "/v1/events")).status).to.equal(403);
  });
});
