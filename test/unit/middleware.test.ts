import { expect } from "chai";
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { z } from "zod";
import type { AppEnv, Principal } from "../../api/env";
import {
  clientAddress,
  clientRateLimit,
  createBuckets,
  errorHandler,
  guardInput,
  merchantRateLimit,
  noStore,
  requestLog,
  validationHook,
} from "../../api/middleware";
import { ProblemError, problem } from "../../api/problems";
import { withClock } from "./helpers/clock";
import { recordingLogger } from "./helpers/logger";

const T0 = 1_800_000_000_000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function withRequestId(app: Hono<AppEnv>, principal?: Principal) {
  app.use("*", async (c, next) => {
    c.set("requestId", "req_test");
    if (principal) c.set("principal", principal);
    await next();
  });
  return app;
}

const socket = (remoteAddress: string) => ({ incoming: { socket: { remoteAddress } } });

describe("unit: api/middleware createBuckets", () => {
  it("starts a bucket full: `perMinute` requests at once, then none", async () => {
    await withClock(T0, () => {
      const buckets = createBuckets(3);
      expect(buckets.perMinute).to.equal(3);
      expect(buckets.take("a")).to.deep.equal({ ok: true, remaining: 2 });
      expect(buckets.take("a")).to.deep.equal({ ok: true, remaining: 1 });
      expect(buckets.take("a")).to.deep.equal({ ok: true, remaining: 0 });
      expect(buckets.take("a")).to.deep.equal({ ok: false, retryAfter: 20 });
    });
  });

  it("keeps one bucket per id", async () => {
    await withClock(T0, () => {
      const buckets = createBuckets(1);
      expect(buckets.take("a").ok).to.equal(true);
      expect(buckets.take("a").ok).to.equal(false);
      expect(buckets.take("b")).to.deep.equal({ ok: true, remaining: 0 });
    });
  });

  it("takes `cost` tokens at once, and nothing when there are not enough", async () => {
    await withClock(T0, () => {
      const buckets = createBuckets(10);
      expect(buckets.take("a", 4)).to.deep.equal({ ok: true, remaining: 6 });
      expect(buckets.take("a", 7)).to.deep.equal({ ok: false, retryAfter: 6 });
      expect(buckets.take("a", 6)).to.deep.equal({ ok: true, remaining: 0 });
    });
  });

  it("takes exactly the tokens left", async () => {
    await withClock(T0, () => {
      const buckets = createBuckets(5);
      expect(buckets.take("a", 5)).to.deep.equal({ ok: true, remaining: 0 });
    });
  });

  it("refuses a cost above the capacity, saying how long the refill would take", async () => {
    await withClock(T0, () => {
      const buckets = createBuckets(6);
      expect(buckets.take("a", 12)).to.deep.equal({ ok: false, retryAfter: 60 });
      expect(buckets.take("a", 6)).to.deep.equal({ ok: true, remaining: 0 });
    });
  });

  it("refills continuously at perMinute per minute", async () => {
    await withClock(T0, (clock) => {
      const buckets = createBuckets(60); // one token a second
      expect(buckets.take("a", 60).ok).to.equal(true);
      clock.advance(999);
      expect(buckets.take("a")).to.deep.equal({ ok: false, retryAfter: 1 });
      clock.advance(1);
      expect(buckets.take("a")).to.deep.equal({ ok: true, remaining: 0 });
      clock.advance(10_500);
      expect(buckets.take("a")).to.deep.equal({ ok: true, remaining: 9 });
    });
  });

  it("rounds the wait up to whole seconds, at least one", async () => {
    await withClock(T0, (clock) => {
      const buckets = createBuckets(60);
      buckets.take("a", 60);
      clock.advance(100);
      expect(buckets.take("a")).to.deep.equal({ ok: false, retryAfter: 1 });
      expect(buckets.take("a", 3)).to.deep.equal({ ok: false, retryAfter: 3 });
      clock.advance(2_850);
      expect(buckets.take("a", 3)).to.deep.equal({ ok: false, retryAfter: 1 });
    });
  });

  it("never fills a bucket above its capacity", async () => {
    await withClock(T0, (clock) => {
      const buckets = createBuckets(2);
      expect(buckets.take("a")).to.deep.equal({ ok: true, remaining: 1 });
      clock.advance(60 * 60_000);
      expect(buckets.take("a")).to.deep.equal({ ok: true, remaining: 1 });
      expect(buckets.take("a")).to.deep.equal({ ok: true, remaining: 0 });
      expect(buckets.take("a").ok).to.equal(false);
    });
  });

  it("has() tells whether one token is there without taking it", async () => {
    await withClock(T0, (clock) => {
      const buckets = createBuckets(2);
      expect(buckets.has("new")).to.equal(true);
      expect(buckets.has("new")).to.equal(true);
      expect(buckets.take("new", 2).ok).to.equal(true);
      expect(buckets.has("new")).to.equal(false);
      clock.advance(29_999);
      expect(buckets.has("new")).to.equal(false);
      clock.advance(1);
      expect(buckets.has("new")).to.equal(true);
      expect(buckets.take("new")).to.deep.equal({ ok: true, remaining: 0 });
    });
  });

  it("has() is true with exactly one token left and never counts above capacity", async () => {
    await withClock(T0, (clock) => {
      const buckets = createBuckets(3);
      buckets.take("a", 2);
      expect(buckets.has("a")).to.equal(true);
      buckets.take("a", 1);
      clock.advance(60 * 60_000); // refills to 3, not 3,000
      expect(buckets.has("a")).to.equal(true);
      expect(buckets.take("a", 3).ok).to.equal(true);
      expect(buckets.has("a")).to.equal(false);
    });
  });

  it("has() reads the refill up to the capacity only", async () => {
    await withClock(T0, (clock) => {
      const buckets = createBuckets(0.5); // one token per two minutes
      expect(buckets.take("a", 0.5).ok).to.equal(true);
      clock.advance(10 * 60_000);
      expect(buckets.has("a")).to.equal(false); // capped at 0.5 tokens, never 1
    });
  });

  it("keeps a busy bucket when forgetting idle ones past 50,000 ids", async () => {
    await withClock(T0, (clock) => {
      const buckets = createBuckets(1);
      expect(buckets.take("busy").ok).to.equal(true);
      for (let index = 0; index < 50_001; index += 1) buckets.take(`client-${index}`);
      clock.advance(30_000);
      expect(buckets.take("busy").ok).to.equal(false);
    });
  });

  it("refills with the real clock too", async () => {
    const buckets = createBuckets(60_000); // one token a millisecond
    expect(buckets.take("a", 60_000).ok).to.equal(true);
    await sleep(40);
    expect(buckets.take("a", 30).ok).to.equal(true);
  });
});

describe("unit: api/middleware clientAddress", () => {
  function addressApp(trustProxy: boolean) {
    const app = new Hono<AppEnv>();
    app.get("/", (c) => c.text(clientAddress(c, trustProxy)));
    return app;
  }

  it("is the socket's peer", async () => {
    expect(await (await addressApp(false).request("/", {}, socket("192.0.2.7"))).text()).to.equal("192.0.2.7");
  });

  it("ignores X-Forwarded-For unless the proxy is trusted", async () => {
    const response = await addressApp(false).request("/", { headers: { "x-forwarded-for": "203.0.113.9" } }, socket("192.0.2.7"));
    expect(await response.text()).to.equal("192.0.2.7");
  });

  it("is the first X-Forwarded-For hop, trimmed, behind a trusted proxy", async () => {
    const response = await addressApp(true).request("/", { headers: { "x-forwarded-for": " 203.0.113.9 , 10.0.0.1" } }, socket("192.0.2.7"));
    expect(await response.text()).to.equal("203.0.113.9");
  });

  it("falls back to the socket behind a trusted proxy without or with an empty X-Forwarded-For", async () => {
    expect(await (await addressApp(true).request("/", {}, socket("192.0.2.7"))).text()).to.equal("192.0.2.7");
    expect(await (await addressApp(true).request("/", { headers: { "x-forwarded-for": " , 10.0.0.1" } }, socket("192.0.2.7"))).text()).to.equal(
      "192.0.2.7",
    );
  });

  it("is 'unknown' without a socket", async () => {
    expect(await (await addressApp(false).request("/")).text()).to.equal("unknown");
    expect(await (await addressApp(true).request("/", {}, { incoming: {} })).text()).to.equal("unknown");
  });
});

describe("unit: api/middleware rate limits", () => {
  it("clientRateLimit lets a client's budget through, then answers 429 with Retry-After", async () => {
    const { logger } = recordingLogger();
    const app = withRequestId(new Hono<AppEnv>());
    app.use("*", clientRateLimit(createBuckets(2), false));
    app.get("/", (c) => c.text("ok"));
    app.onError(errorHandler(logger));
    expect((await app.request("/", {}, socket("192.0.2.1"))).status).to.equal(200);
    expect((await app.request("/", {}, socket("192.0.2.1"))).status).to.equal(200);
    const refused = await app.request("/", {}, socket("192.0.2.1"));
    expect(refused.status).to.equal(429);
    expect(refused.headers.get("Retry-After")).to.equal("30");
    const body = (await refused.json()) as { detail: string };
    expect(body.detail).to.equal("Too many requests from this client address: retry after 30 s.");
    expect((await app.request("/", {}, socket("192.0.2.2"))).status).to.equal(200);
  });

  it("clientRateLimit counts per forwarded address behind a trusted proxy", async () => {
    const { logger } = recordingLogger();
    const app = withRequestId(new Hono<AppEnv>());
    app.use("*", clientRateLimit(createBuckets(1), true));
    app.get("/", (c) => c.text("ok"));
    app.onError(errorHandler(logger));
    const from = (address: string) => app.request("/", { headers: { "x-forwarded-for": address } }, socket("10.0.0.1"));
    expect((await from("203.0.113.1")).status).to.equal(200);
    expect((await from("203.0.113.2")).status).to.equal(200);
    expect((await from("203.0.113.1")).status).to.equal(429);
  });

  it("merchantRateLimit shares one budget per merchant and reports the limit and what remains", async () => {
    const { logger } = recordingLogger();
    const buckets = createBuckets(2);
    const appFor = (principal: Principal) => {
      const app = withRequestId(new Hono<AppEnv>(), principal);
      app.use("*", merchantRateLimit(buckets));
      app.get("/", (c) => c.text("ok"));
      app.onError(errorHandler(logger));
      return app;
    };
    const keyOne = appFor({ kind: "merchant", merchant: { id: "mer_1" } as Principal["merchant"], apiKeyId: "key_1", scopes: new Set() });
    const keyTwo = appFor({ kind: "merchant", merchant: { id: "mer_1" } as Principal["merchant"], apiKeyId: "key_2", scopes: new Set() });
    const first = await keyOne.request("/");
    expect(first.status).to.equal(200);
    expect(first.headers.get("RateLimit-Limit")).to.equal("2");
    expect(first.headers.get("RateLimit-Remaining")).to.equal("1");
    const second = await keyTwo.request("/");
    expect(second.headers.get("RateLimit-Remaining")).to.equal("0");
    const refused = await keyOne.request("/");
    expect(refused.status).to.equal(429);
    expect(refused.headers.get("RateLimit-Limit")).to.equal("2");
    expect(refused.headers.get("RateLimit-Remaining")).to.equal("0");
    expect(refused.headers.get("Retry-After")).to.equal("30");
    expect(((await refused.json()) as { detail: string }).detail).to.equal("Too many requests from this merchant: retry after 30 s.");
    const otherMerchant = appFor({ kind: "merchant", merchant: { id: "mer_2" } as Principal["merchant"], apiKeyId: "key_3", scopes: new Set() });
    expect((await otherMerchant.request("/")).status).to.equal(200);
    const admin = appFor({ kind: "admin", scopes: new Set() });
    expect((await admin.request("/")).status).to.equal(200);
  });
});

describe("unit: api/middleware noStore and requestLog", () => {
  it("noStore marks every answer Cache-Control: no-store", async () => {
    const app = new Hono<AppEnv>();
    app.use("*", noStore);
    app.get("/", (c) => c.json({ ok: true }));
    expect((await app.request("/")).headers.get("Cache-Control")).to.equal("no-store");
  });

  it("requestLog writes one line per request with method, path, status, duration, request id and merchant", async () => {
    const { logger, lines } = recordingLogger();
    const app = withRequestId(new Hono<AppEnv>(), { kind: "merchant", merchant: { id: "mer_9" } as Principal["merchant"], scopes: new Set() });
    app.use("*", requestLog(logger));
    app.get("/v1/x", async (c) => {
      await sleep(15);
      return c.text("created", 201);
    });
    await app.request("/v1/x?a=1");
    expect(lines).to.have.length(1);
    const [line] = lines;
    expect(line.level).to.equal("info");
    expect(line.message).to.equal("request");
    expect(line.fields).to.include({ requestId: "req_test", method: "GET", path: "/v1/x", status: 201, merchantId: "mer_9" });
    const duration = line.fields.durationMs as number;
    expect(duration).to.be.within(10, 1_000);
    expect(Math.round(duration * 10) / 10).to.equal(duration);
  });

  it("requestLog logs a request of the admin key without a merchant", async () => {
    const { logger, lines } = recordingLogger();
    const app = withRequestId(new Hono<AppEnv>(), { kind: "admin", scopes: new Set() });
    app.use("*", requestLog(logger));
    app.get("/", (c) => c.text("ok"));
    await app.request("/");
    expect(lines[0].fields).to.include({ status: 200, merchantId: undefined });
  });

  it("requestLog logs a request without a principal", async () => {
    const { logger, lines } = recordingLogger();
    const app = withRequestId(new Hono<AppEnv>());
    app.use("*", requestLog(logger));
    app.get("/", (c) => c.text("ok"));
    await app.request("/");
    expect(lines[0].fields).to.include({ status: 200, merchantId: undefined });
  });
});

describe("unit: api/middleware guardInput", () => {
  const { logger } = recordingLogger();
  const app = withRequestId(new Hono<AppEnv>());
  app.use("*", guardInput);
  app.all("*", async (c) => c.text(`ok ${await c.req.text()}`));
  app.onError(errorHandler(logger));

  async function refusal(response: Response) {
    const body = (await response.json()) as { type: string; detail: string; errors?: unknown };
    return { status: response.status, ...body };
  }

  it("lets JSON bodies and body-less requests through", async () => {
    expect(await (await app.request("/x", { method: "POST", headers: { "content-type": "application/json" }, body: '{"a":"b"}' })).text()).to.equal(
      'ok {"a":"b"}',
    );
    expect((await app.request("/x", { method: "POST" })).status).to.equal(200);
    expect((await app.request("/x?q=a+b%20c")).status).to.equal(200);
    expect((await app.request("/x", { method: "DELETE" })).status).to.equal(200);
  });

  it("does not look at the content type or body of other methods", async () => {
    expect((await app.request("/x", { headers: { "content-type": "text/plain" } })).status).to.equal(200);
    expect((await app.request("/x", { method: "DELETE", headers: { "content-type": "text/plain" }, body: "\u0000{" })).status).to.equal(200);
  });

  it("lets an empty body declared as JSON through", async () => {
    expect((await app.request("/x", { method: "POST", headers: { "content-type": "application/json" } })).status).to.equal(200);
  });

  it("refuses a body sent without any content type with 415", async () => {
    const request = new Request("http://localhost/x", { method: "POST", body: new TextEncoder().encode("{}") });
    expect(request.headers.get("content-type")).to.equal(null);
    const response = await refusal(await app.request(request));
    expect(response).to.include({ status: 415, type: "/problems/unsupported-media-type" });
  });

  it("accepts JSON media types with parameters and +json suffixes", async () => {
    for (const type of [
      "application/json; charset=utf-8",
      "application/json ; charset=utf-8",
      " application/json",
      "Application/JSON",
      "application/merge-patch+json",
      "application/vnd.api+json",
      "application/problem+json",
    ]) {
      expect((await app.request("/x", { method: "PATCH", headers: { "content-type": type }, body: "{}" })).status, type).to.equal(200);
    }
  });

  it("refuses a NUL in the path or the query as malformed", async () => {
    for (const url of ["/x%00y", "/x?q=%00", "/x?q%00=1"]) {
      const response = await refusal(await app.request(url));
      expect(response, url).to.include({ status: 400, type: "/problems/malformed-request", detail: "The path or query contains a NUL character." });
    }
  });

  it("refuses an invalid percent-encoding as malformed", async () => {
    for (const url of ["/x%zz", "/x?q=%E0%A4%A"]) {
      const response = await refusal(await app.request(url));
      expect(response, url).to.include({ status: 400, type: "/problems/malformed-request", detail: "The URL has an invalid percent-encoding." });
    }
  });

  it("refuses a body that is not declared as JSON with 415", async () => {
    for (const [method, headers, body] of [
      ["POST", { "content-type": "text/plain" }, "{}"],
      ["PUT", {}, "{}"],
      ["PATCH", { "content-type": "application/jsonx" }, "{}"],
      ["POST", { "content-type": "application/x-www-form-urlencoded" }, ""],
      ["POST", { "content-type": "application/ json" }, "{}"],
      ["POST", { "content-type": "x-application/json" }, "{}"],
    ] as const) {
      const response = await refusal(await app.request("/x", { method, headers, body }));
      expect(response, `${method} ${JSON.stringify(headers)}`).to.include({ status: 415, type: "/problems/unsupported-media-type" });
    }
  });

  it("refuses a JSON body that does not parse as malformed", async () => {
    const response = await refusal(await app.request("/x", { method: "POST", headers: { "content-type": "application/json" }, body: "{nope" }));
    expect(response).to.include({ status: 400, type: "/problems/malformed-request", detail: "The body is not valid JSON." });
  });

  it("refuses a NUL anywhere in a JSON body as a 422 naming the field", async () => {
    const cases: [string, string][] = [
      ['"a\\u0000"', "(body)"],
      ['{"name":"a\\u0000b"}', "name"],
      ['{"lineItems":[{"description":"ok"},{"description":"\\u0000"}]}', "lineItems.1.description"],
      ['{"metadata":{"k\\u0000":"v"}}', "metadata.k\\u0000"],
      ['[["x", "\\u0000"]]', "0.1"],
      ['{"a":"ok","b":{"c":"d","e":"\\u0000"}}', "b.e"],
    ];
    for (const [body, field] of cases) {
      const response = await refusal(await app.request("/x", { method: "POST", headers: { "content-type": "application/json" }, body }));
      expect(response.status, body).to.equal(422);
      expect(response.errors, body).to.deep.equal([{ field, message: "contains a NUL character" }]);
    }
  });

  it("lets a JSON body without NUL through, however nested", async () => {
    const body = JSON.stringify({ a: [1, null, true, { b: ["c", { d: "e" }] }], f: "\\u0000 escaped text is no NUL" });
    expect((await app.request("/x", { method: "POST", headers: { "content-type": "application/json" }, body })).status).to.equal(200);
  });
});

describe("unit: api/middleware validationHook", () => {
  const schema = z.strictObject({ amount: z.string(), lineItems: z.array(z.strictObject({ quantity: z.number() })).optional() });

  function appValidating(input: unknown) {
    const app = withRequestId(new Hono<AppEnv>());
    app.get("/", (c) => validationHook(schema.safeParse(input) as Parameters<typeof validationHook>[0], c) ?? c.text("valid"));
    return app;
  }

  it("lets a valid request through (no response)", async () => {
    const response = await appValidating({ amount: "1.00" }).request("/");
    expect(await response.text()).to.equal("valid");
  });

  it("answers one 422 problem listing every invalid field by dotted path", async () => {
    const response = await appValidating({ amount: 5, lineItems: [{ quantity: 1 }, { quantity: "2" }] }).request("/");
    expect(response.status).to.equal(422);
    expect(response.headers.get("content-type")).to.equal("application/problem+json");
    const body = (await response.json()) as { errors: { field: string; message: string }[] };
    expect(body).to.deep.include({
      type: "/problems/validation-error",
      title: "Invalid request",
      status: 422,
      detail: "The request has invalid fields; see `errors`.",
      instance: "req_test",
    });
    expect(body.errors.map((error) => error.field)).to.deep.equal(["amount", "lineItems.1.quantity"]);
    for (const error of body.errors) expect(error.message).to.be.a("string").and.not.equal("");
  });

  it("names each unknown field under its own name", async () => {
    const response = await appValidating({ amount: "1", extra: 1, other: 2, lineItems: [{ quantity: 1, color: "red" }] }).request("/");
    const body = (await response.json()) as { errors: unknown[] };
    expect(body.errors).to.have.deep.members([
      { field: "extra", message: "is not a known field" },
      { field: "other", message: "is not a known field" },
      { field: "lineItems.0.color", message: "is not a known field" },
    ]);
    expect(body.errors).to.have.length(3);
  });

  it("reports an invalid body as a whole as (body)", async () => {
    const body = (await (await appValidating("not an object").request("/")).json()) as { errors: { field: string }[] };
    expect(body.errors.map((error) => error.field)).to.deep.equal(["(body)"]);
  });

  it("keeps the issue's own message, and reports an unrecognized_keys issue without keys as is", async () => {
    const app = withRequestId(new Hono<AppEnv>());
    app.get("/", (c) =>
      validationHook(
        {
          success: false,
          error: {
            issues: [
              { path: ["a", 0], message: "is wrong", code: "custom" },
              { path: ["b"], message: "Unrecognized key", code: "unrecognized_keys", keys: [] },
              { path: ["c"], message: "Unrecognized keys", code: "unrecognized_keys" },
              { path: ["d"], message: "is odd", code: "custom", keys: ["k"] },
              { path: [], message: "is not an object" },
            ],
          },
        },
        c,
      ) ?? c.text("valid"),
    );
    const body = (await (await app.request("/")).json()) as { errors: unknown[] };
    expect(body.errors).to.deep.equal([
      { field: "a.0", message: "is wrong" },
      { field: "b", message: "Unrecognized key" },
      { field: "c", message: "Unrecognized keys" },
      { field: "d", message: "is odd" },
      { field: "(body)", message: "is not an object" },
    ]);
  });
});

describe("unit: api/middleware errorHandler", () => {
  function appThrowing(error: unknown) {
    const recorded = recordingLogger();
    const app = withRequestId(new Hono<AppEnv>());
    app.get("/boom", () => {
      throw error;
    });
    app.onError(errorHandler(recorded.logger));
    return { app, lines: recorded.lines };
  }

  async function answer(error: unknown) {
    const { app, lines } = appThrowing(error);
    const response = await app.request("/boom");
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, unknown>, lines };
  }

  it("answers a ProblemError as its problem, with its headers", async () => {
    const { status, headers, body, lines } = await answer(problem.methodNotAllowed("DELETE", "/v1/x", ["GET", "POST"]));
    expect(status).to.equal(405);
    expect(headers.get("Allow")).to.equal("GET, POST");
    expect(headers.get("content-type")).to.equal("application/problem+json");
    expect(body).to.deep.equal({
      type: "/problems/method-not-allowed",
      title: "Method not allowed",
      status: 405,
      detail: "/v1/x does not accept DELETE; it accepts GET, POST.",
      instance: "req_test",
      allow: ["GET", "POST"],
    });
    expect(lines).to.deep.equal([]);
  });

  it("translates Hono's HTTP exceptions into problems", async () => {
    expect((await answer(new HTTPException(413))).body).to.include({ status: 413, type: "/problems/body-too-large" });
    expect((await answer(new HTTPException(413))).headers.get("Connection")).to.equal("close");
    expect((await answer(new HTTPException(415))).body).to.include({ status: 415, type: "/problems/unsupported-media-type" });
    expect((await answer(new HTTPException(400, { message: "bad header" }))).body).to.include({
      status: 400,
      type: "/problems/malformed-request",
      detail: "bad header",
    });
    expect((await answer(new HTTPException(400))).body).to.include({ detail: "The request could not be read." });
    expect((await answer(new HTTPException(401))).body).to.include({ status: 401, type: "/problems/unauthorized" });
    expect((await answer(new HTTPException(401))).headers.get("WWW-Authenticate")).to.equal('Bearer realm="chainbill"');
  });

  it("answers other HTTP exceptions as an internal error", async () => {
    const { body, lines } = await answer(new HTTPException(418));
    expect(body).to.include({ status: 500, type: "/problems/internal-error" });
    expect(lines.map((line) => line.level)).to.deep.equal(["error"]);
  });

  it("answers a database error caused by a client value as 400 malformed, with a warning", async () => {
    for (const code of ["22021", "22P05", "22001", "22003", "22007", "22008", "22P02"]) {
      const error = Object.assign(new Error("invalid input"), { code });
      const { status, body, lines } = await answer(error);
      expect(status, code).to.equal(400);
      expect(body, code).to.include({
        type: "/problems/malformed-request",
        detail: "A value in the request cannot be stored (invalid characters or out of range).",
      });
      expect(lines, code).to.deep.equal([
        { level: "warn", fields: { err: error, requestId: "req_test", path: "/boom" }, message: "database refused a client value" },
      ]);
    }
  });

  it("finds the database error code on the error's cause", async () => {
    const error = new Error("query failed", { cause: { code: "22P02" } });
    expect((await answer(error)).status).to.equal(400);
  });

  it("answers any other error as 500 internal-error without its message, and logs it", async () => {
    const error = Object.assign(new Error("secret stack detail"), { code: "23505" });
    const { status, body, lines } = await answer(error);
    expect(status).to.equal(500);
    expect(body).to.deep.equal({
      type: "/problems/internal-error",
      title: "Internal error",
      status: 500,
      detail: "Something failed on our side; the request id identifies it in our logs.",
      instance: "req_test",
    });
    expect(lines).to.deep.equal([{ level: "error", fields: { err: error, requestId: "req_test", path: "/boom" }, message: "unhandled error" }]);
  });

  it("does not take a numeric code for a database code", async () => {
    expect((await answer(Object.assign(new Error("x"), { code: 22001 }))).status).to.equal(500);
  });

  it("is a ProblemError check, not a shape check", async () => {
    const lookalike = Object.assign(new Error("not found"), { slug: "not-found", status: 404, toProblem: () => ({}) });
    expect((await answer(lookalike)).status).to.equal(500);
    expect((await answer(new ProblemError("not-found"))).status).to.equal(404);
  });
});
