/**
 * The HTTP surface as an attacker and a careless client meet it: NUL bytes anywhere, inputs that look valid
 * but are wrong (line items that do not add up, zero addresses, `__proto__`, a tampered cursor), what is exposed
 * (no query APIs, no wildcard CORS, no caching, a docs page that keeps no key), how secrets are kept (the
 * generated admin key survives restarts and never reaches a log), errors exactly as documented (415, 405 with
 * Allow, 401 with WWW-Authenticate, 413 closing the connection, a page per problem type), and limits (a flood
 * of unknown keys is throttled per client address; every key of a merchant shares one budget).
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { zeroAddress } from "viem";
import { PROBLEM_TYPES } from "../../api/problems";
import { createMerchant, startStack, testAccount, type LocalChain, type Stack, type TestMerchant } from "./harness";

interface Problem {
  type: string;
  status: number;
  title: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}

describe("stack: the HTTP surface", function () {
  this.timeout(300_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let adminKey: string;

  before(async () => {
    stack = await startStack({
      generatedAdminKey: true,
      env: { CORS_ORIGINS: "https://shop.example", LOG_LEVEL: "info", RATE_LIMIT_PER_MINUTE: "400", AUTH_FAILURES_PER_CLIENT_PER_MINUTE: "60" },
    });
    adminKey = stack.adminKey;
    chain = stack.chains[0];
    merchant = await createMerchant(stack, 1, "Surface merchant");
  });
  after(async () => {
    await stack?.stop();
  });

  async function problemOf(response: Response, status: number): Promise<Problem> {
    const text = await response.text();
    expect(response.status, text).to.equal(status);
    expect(response.headers.get("content-type")).to.match(/^application\/problem\+json/);
    const body = JSON.parse(text) as Problem;
    expect(body.status).to.equal(status);
    return body;
  }

  const invoice = (body: Record<string, unknown>) =>
    stack.api("POST", "/v1/invoices", { key: merchant.apiKey, headers: { "Idempotency-Key": randomUUID() }, body: { chainId: chain.id, amount: "10.00", currency: "USDC", ...body } });

  describe("bad input never reaches the database as a 500", () => {
    it("a NUL byte in the path, the query, a description, a metadata key, a customer id or a name is a 4xx", async () => {
      const cases: [string, Promise<Response>][] = [
        ["path", stack.api("GET", "/v1/invoices/inv_%00abc", { key: merchant.apiKey })],
        ["query", stack.api("GET", "/v1/invoices?customerId=a%00b", { key: merchant.apiKey })],
        ["statement query", stack.api("GET", "/v1/statements?currency=US%00DC", { key: merchant.apiKey })],
        ["description", invoice({ description: "a\u0000b" })],
        ["metadata key", invoice({ metadata: { "k\u0000": "v" } })],
        ["metadata value", invoice({ metadata: { k: "v\u0000" } })],
        ["customer id", invoice({ customer: { id: "c\u0000" } })],
        ["customer statement", stack.api("GET", "/v1/customers/c%00/statement", { key: merchant.apiKey })],
        ["merchant name", stack.api("POST", "/v1/merchants", { key: adminKey, body: { name: "Evil\u0000Corp", payoutAddress: testAccount(2).address } })],
        ["key name", stack.api("POST", "/v1/api-keys", { key: merchant.apiKey, body: { name: "k\u0000" } })],
      ];
      for (const [where, request] of cases) {
        const response = await request;
        expect(response.status, where).to.be.within(400, 499);
        expect(response.headers.get("content-type"), where).to.match(/^application\/problem\+json/);
      }
    });

    it("line items that do not add up to the amount are refused, naming lineItems; exact ones are accepted", async () => {
      const wrong = await problemOf(await invoice({ amount: "10.00", lineItems: [{ description: "A", quantity: 3, unitAmount: "3.33" }] }), 422);
      expect(wrong.errors![0].field).to.equal("lineItems");
      expect(wrong.errors![0].message).to.contain("9.99");
      const right = await invoice({ amount: "9.99", lineItems: [{ description: "A", quantity: 3, unitAmount: "3.33" }] });
      expect(right.status).to.equal(201);
      // The smallest unit counts: 0.000001 off is refused.
      const offByOne = await problemOf(await invoice({ amount: "10.000001", lineItems: [{ description: "A", quantity: 2, unitAmount: "5" }] }), 422);
      expect(offByOne.errors![0].field).to.equal("lineItems");
    });

    it("a zero-address payout or owner for a merchant, and a zero-address payer or arbiter for an invoice, are refused", async () => {
      for (const body of [{ name: "Zero", payoutAddress: zeroAddress }, { name: "Zero", payoutAddress: testAccount(2).address, ownerAddress: zeroAddress }]) {
        const problem = await problemOf(await stack.api("POST", "/v1/merchants", { key: adminKey, body }), 422);
        expect(problem.errors![0].message).to.contain("zero address");
      }
      for (const field of ["payer", "arbiter"]) {
        const problem = await problemOf(await invoice({ [field]: zeroAddress }), 422);
        expect(problem.errors![0].field).to.equal(field);
      }
    });

    it("a metadata key __proto__ is refused by name (never silently dropped)", async () => {
      const response = await stack.api("POST", "/v1/invoices", {
        key: merchant.apiKey,
        headers: { "Idempotency-Key": randomUUID() },
        body: `{"chainId":${chain.id},"amount":"1","currency":"USDC","metadata":{"__proto__":"x","order":"7"}}`,
      });
      const problem = await problemOf(response, 422);
      expect(problem.errors!.map((error) => error.field)).to.include("metadata.__proto__");
    });

    it("a cursor that was tampered with is refused (cur_'eyJzIjoxfQ and friends)", async () => {
      for (const cursor of ["cur_'eyJzIjoxfQ", "cur_eyJzIjoxfQ==", "cur_WyJhIl0", "cur_WyIxIl0x", "eyJzIjoxfQ", "cur_"]) {
        for (const route of ["/v1/invoices", "/v1/subscriptions", "/v1/statements?currency=USDC&"]) {
          const separator = route.endsWith("&") ? "" : "?";
          const problem = await problemOf(await stack.api("GET", `${route}${separator}cursor=${encodeURIComponent(cursor)}`, { key: merchant.apiKey }), 422);
          expect(problem.errors![0].field, `${route} ${cursor}`).to.equal("cursor");
        }
      }
    });
  });

  describe("what is exposed", () => {
    it("the indexer's /graphql, /sql and /metrics are not served by the API", async () => {
      for (const route of ["/graphql", "/sql/db", "/metrics"]) {
        const response = await fetch(`${stack.apiUrl}${route}`, { method: route === "/graphql" ? "POST" : "GET", headers: { "content-type": "application/json" }, body: route === "/graphql" ? '{"query":"{ merchants { items { signer } } }"}' : undefined });
        expect(response.status, route).to.equal(404);
        expect(await response.text()).not.to.contain("signer");
      }
      // Ponder's own server is on loopback only, and serves no query API unless INDEXER_QUERY_API is set.
      expect((await fetch(`${stack.indexerUrl()}/graphql`, { method: "POST", headers: { "content-type": "application/json" }, body: '{"query":"{ __typename }"}' })).status).to.equal(404);
    });

    it("no Access-Control-Allow-Origin: * anywhere; only the configured origin is allowed, with Authorization", async () => {
      const stranger = await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey, headers: { origin: "https://evil.example" } });
      expect(stranger.headers.get("access-control-allow-origin")).to.equal(null);
      for (const route of ["/openapi.json", "/health", "/ready", "/status"]) {
        expect((await fetch(`${stack.apiUrl}${route}`, { headers: { origin: "https://evil.example" } })).headers.get("access-control-allow-origin"), route).not.to.equal("*");
      }
      const preflight = await fetch(`${stack.apiUrl}/v1/invoices`, {
        method: "OPTIONS",
        headers: { origin: "https://shop.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization, content-type, idempotency-key" },
      });
      expect(preflight.headers.get("access-control-allow-origin")).to.equal("https://shop.example");
      expect(preflight.headers.get("access-control-allow-headers")?.toLowerCase()).to.contain("authorization");
      const allowed = await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey, headers: { origin: "https://shop.example" } });
      expect(allowed.headers.get("access-control-allow-origin")).to.equal("https://shop.example");
    });

    it("every /v1 answer, success or problem, carries Cache-Control: no-store", async () => {
      for (const [route, key] of [["/v1/merchants/me", merchant.apiKey], ["/v1/invoices/inv_missing", merchant.apiKey], ["/v1/merchants/me", undefined]] as const) {
        const response = await stack.api("GET", route, { key });
        expect(response.headers.get("cache-control"), `${route} ${response.status}`).to.equal("no-store");
      }
    });

    it("/docs keeps no pasted key and sends a Content-Security-Policy that allows only this server", async () => {
      const page = await fetch(`${stack.apiUrl}/docs`);
      const csp = page.headers.get("content-security-policy") ?? "";
      expect(csp).to.contain("default-src 'none'").and.to.contain("script-src 'self'").and.to.contain("connect-src 'self'");
      const init = await (await fetch(`${stack.apiUrl}/docs/assets/init.js`)).text();
      expect(init).to.contain("persistAuthorization: false");
      expect(await page.text()).not.to.match(/https?:\/\//);
    });

    it("the generated admin key is kept in the data directory, survives a restart, and never reaches a log file", async () => {
      const file = path.join(stack.directory, "data", "admin-api-key");
      expect(readFileSync(file, "utf8").trim()).to.equal(adminKey);
      await stack.restartIndexer();
      expect((await stack.api("GET", "/v1/invoices", { key: adminKey })).status).to.equal(403); // known, and still only the admin
      const created = await stack.api("POST", "/v1/merchants", { key: adminKey, body: { name: "After restart", payoutAddress: testAccount(3).address } });
      expect(created.status).to.equal(201);
      expect(readFileSync(stack.logFile, "utf8")).not.to.contain(adminKey);
    });
  });

  describe("errors as documented", () => {
    it("a body that is not JSON is 415 unsupported-media-type on every route that takes a body", async () => {
      const routes: [string, string][] = [
        ["POST", "/v1/merchants"],
        ["POST", "/v1/api-keys"],
        ["POST", "/v1/invoices"],
        ["POST", "/v1/invoices/inv_x/refund"],
        ["POST", "/v1/plans"],
        ["PATCH", "/v1/plans/plan_31337_1"],
      ];
      for (const [method, route] of routes) {
        const response = await fetch(`${stack.apiUrl}${route}`, {
          method,
          headers: { authorization: `Bearer ${route === "/v1/merchants" ? adminKey : merchant.apiKey}`, "content-type": "text/plain", "Idempotency-Key": randomUUID() },
          body: "amount=1",
        });
        const problem = await problemOf(response, 415);
        expect(problem.type, `${method} ${route}`).to.equal("/problems/unsupported-media-type");
      }
    });

    it("a wrong method is 405 with Allow; an unknown path is 404", async () => {
      const response = await stack.api("DELETE", "/v1/invoices", { key: merchant.apiKey });
      const problem = await problemOf(response, 405);
      expect(problem.type).to.equal("/problems/method-not-allowed");
      expect(response.headers.get("allow")).to.equal("POST, GET");
      const put = await stack.api("PUT", "/v1/plans/plan_31337_1", { key: merchant.apiKey, body: {} });
      await problemOf(put, 405);
      expect(put.headers.get("allow")).to.contain("PATCH");
      await problemOf(await stack.api("GET", "/v1/nothing-here", { key: merchant.apiKey }), 404);
    });

    it("a 401 carries WWW-Authenticate: Bearer", async () => {
      for (const key of [undefined, "cb_live_unknown"]) {
        const response = await stack.api("GET", "/v1/merchants/me", { key });
        await problemOf(response, 401);
        expect(response.headers.get("www-authenticate")).to.match(/^Bearer/);
      }
    });

    it("an oversized body is a 413 that Node's fetch receives (the connection is closed cleanly)", async () => {
      const response = await stack.api("POST", "/v1/invoices", { key: merchant.apiKey, headers: { "Idempotency-Key": randomUUID() }, body: { chainId: chain.id, amount: "1", currency: "ETH", description: "x".repeat(200_000) } });
      await problemOf(response, 413);
      expect(response.headers.get("connection")).to.equal("close");
      // The next request on a fresh connection works.
      expect((await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey })).status).to.equal(200);
    });

    it("every problem type resolves to a page that explains it, and docs/API.md lists every type", async () => {
      const docs = readFileSync(path.join(__dirname, "..", "..", "docs", "API.md"), "utf8");
      for (const slug of Object.keys(PROBLEM_TYPES)) {
        const page = await fetch(`${stack.apiUrl}/problems/${slug}`);
        expect(page.status, slug).to.equal(200);
        expect(await page.text()).to.contain(PROBLEM_TYPES[slug as keyof typeof PROBLEM_TYPES].title.replace(/&/g, "&#38;"));
        expect(docs, `docs/API.md lists ${slug}`).to.contain(`\`${slug}\``);
      }
    });
  });

  describe("limits", () => {
    it("every key of a merchant shares one budget per minute", async () => {
      const other = await createMerchant(stack, 5, "Budget merchant");
      const second = ((await (await stack.api("POST", "/v1/api-keys", { key: other.apiKey, body: { name: "second" } })).json()) as { secret: string }).secret;
      const statuses: number[] = [];
      for (let index = 0; index < 600; index += 1) {
        statuses.push((await stack.api("GET", "/v1/merchants/me", { key: index % 2 ? second : other.apiKey })).status);
      }
      expect(statuses.filter((status) => status === 429).length).to.be.greaterThan(0);
      // Another merchant is not affected.
      expect((await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey })).status).to.equal(200);
    });

    it("a flood of unknown keys is throttled per client address before any lookup (2,000 requests)", async () => {
      const statuses = new Map<number, number>();
      for (let wave = 0; wave < 20; wave += 1) {
        const answers = await Promise.all(Array.from({ length: 100 }, () => stack.api("GET", "/v1/merchants/me", { key: `cb_live_${randomUUID().replace(/-/g, "")}abcdefghijk` })));
        for (const answer of answers) statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
      }
      expect(statuses.get(401) ?? 0).to.be.at.most(80);
      expect(statuses.get(429) ?? 0).to.be.at.least(1900);
    });
  });
});
