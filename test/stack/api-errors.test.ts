/**
 * What a client sees when it gets things wrong: every error is an RFC 9457 problem
 * (`application/problem+json`) with the right status and, for field errors, the offending field named in
 * `errors`. Also: keys, tenant isolation, idempotency misuse, and hostile text stored and returned verbatim.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import type { Address } from "viem";
import { createMerchant, startStack, testAccount, type LocalChain, type Stack, type TestMerchant } from "./harness";

interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: { field: string; message: string }[];
}

describe("stack: API errors", function () {
  this.timeout(300_000);
  let stack: Stack;
  let merchant: TestMerchant;
  let chain: LocalChain;
  let escrow: Address;
  let usdc: Address;

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
    escrow = chain.deployment.contracts.BillingEscrow.address;
    usdc = chain.deployment.contracts.MockStablecoin!.address;
    merchant = await createMerchant(stack, 1);
  });
  after(async () => {
    await stack?.stop();
  });

  const valid = () => ({ chainId: chain.id, amount: "25.00", currency: "USDC", customer: { id: "cus_errors" } });

  function post(body: unknown, options: { key?: string | null; idempotencyKey?: string | null; headers?: Record<string, string> } = {}) {
    const headers: Record<string, string> = { ...options.headers };
    if (options.idempotencyKey !== null) headers["Idempotency-Key"] = options.idempotencyKey ?? randomUUID();
    return stack.api("POST", "/v1/invoices", {
      key: options.key === null ? undefined : (options.key ?? merchant.apiKey),
      body,
      headers,
    });
  }

  async function expectProblem(response: Response, status: number, fields: string[] = []): Promise<Problem> {
    const text = await response.text();
    expect(response.status, text).to.equal(status);
    expect(response.headers.get("content-type")).to.match(/^application\/problem\+json/);
    const problem = JSON.parse(text) as Problem;
    expect(problem.status).to.equal(status);
    expect(problem.type).to.match(/^\/problems\//);
    expect(problem.title).to.be.a("string");
    if (fields.length > 0) {
      expect(problem.errors, text).to.be.an("array");
      const named = problem.errors!.map((error) => error.field);
      for (const field of fields) expect(named, text).to.include(field);
    }
    return problem;
  }

  async function createOk(body: Record<string, unknown>, key = merchant.apiKey) {
    const response = await post(body, { key });
    const text = await response.text();
    expect(response.status, text).to.equal(201);
    return JSON.parse(text) as { id: string; description: string | null; metadata: Record<string, string>; customer: { id: string } | null; lineItems: unknown[] };
  }

  it("a valid request succeeds (baseline for the cases below)", async () => {
    await createOk(valid());
  });

  it("malformed JSON → 400", async () => {
    const problem = await expectProblem(await post('{"amount": "25.00", "currency": '), 400);
    expect(problem.type).to.equal("/problems/malformed-request");
  });

  it("a body that is not JSON → 415", async () => {
    const response = await stack.api("POST", "/v1/invoices", {
      key: merchant.apiKey,
      body: "amount=25",
      headers: { "content-type": "application/x-www-form-urlencoded", "Idempotency-Key": randomUUID() },
    });
    await expectProblem(response, 415);
  });

  it("missing Idempotency-Key → 400 naming the header", async () => {
    const problem = await expectProblem(await post(valid(), { idempotencyKey: null }), 400, ["Idempotency-Key"]);
    expect(problem.type).to.equal("/problems/idempotency-key-missing");
  });

  it("an Idempotency-Key longer than 255 characters → 400", async () => {
    await expectProblem(await post(valid(), { idempotencyKey: "k".repeat(256) }), 400, ["Idempotency-Key"]);
  });

  it("wrong types → 422 naming each field", async () => {
    await expectProblem(
      await post({ ...valid(), amount: 25, chainId: "31337", lineItems: { description: "x" }, customer: "cus_1" }),
      422,
      ["amount", "chainId", "lineItems", "customer"],
    );
  });

  it("unknown fields are refused → 422 naming them", async () => {
    await expectProblem(await post({ ...valid(), colour: "blue", customer: { id: "c", phone: "1" } }), 422, ["colour", "customer.phone"]);
  });

  it("missing required fields → 422", async () => {
    await expectProblem(await post({ chainId: chain.id }), 422, ["amount", "currency"]);
  });

  it("negative amount → 422 on amount", async () => {
    await expectProblem(await post({ ...valid(), amount: "-5.00" }), 422, ["amount"]);
  });

  it("zero amount → 422 on amount", async () => {
    const problem = await expectProblem(await post({ ...valid(), amount: "0.00" }), 422, ["amount"]);
    expect(problem.errors![0].message).to.match(/greater than zero/);
  });

  it("amounts in exponent or with separators → 422 on amount", async () => {
    await expectProblem(await post({ ...valid(), amount: "1e3" }), 422, ["amount"]);
    await expectProblem(await post({ ...valid(), amount: "1,000.00" }), 422, ["amount"]);
  });

  it("an amount more precise than the currency → 422 on amount (USDC has 6 decimals, ETH 18)", async () => {
    const usdcProblem = await expectProblem(await post({ ...valid(), amount: "1.0000001" }), 422, ["amount"]);
    expect(usdcProblem.errors![0].message).to.contain("6 decimal places");
    await expectProblem(await post({ ...valid(), currency: "ETH", amount: "0.0000000000000000001" }), 422, ["amount"]);
    await createOk({ ...valid(), amount: "1.000001" });
  });

  it("a line item more precise than the currency → 422 on that line item", async () => {
    await expectProblem(
      await post({ ...valid(), lineItems: [{ description: "ok", quantity: 1, unitAmount: "1" }, { description: "bad", quantity: 1, unitAmount: "0.1234567" }] }),
      422,
      ["lineItems.1.unitAmount"],
    );
    await expectProblem(await post({ ...valid(), lineItems: [{ description: "bad", quantity: 0, unitAmount: "1" }] }), 422, ["lineItems.0.quantity"]);
  });

  it("unknown currency → 422 on currency", async () => {
    const problem = await expectProblem(await post({ ...valid(), currency: "DOGE" }), 422, ["currency"]);
    expect(problem.errors![0].message).to.contain("USDC");
  });

  it("a token address that is not an ERC-20 → 422 on currency", async () => {
    const noContract = await expectProblem(await post({ ...valid(), currency: testAccount(15).address }), 422, ["currency"]);
    expect(noContract.errors![0].message).to.match(/no contract/);
    const notToken = await expectProblem(await post({ ...valid(), currency: escrow }), 422, ["currency"]);
    expect(notToken.errors![0].message).to.match(/not an ERC-20/);
  });

  it("a token address with a bad checksum → 422 on currency; lowercase is fine", async () => {
    const badChecksum = usdc.slice(0, 2) + [...usdc.slice(2)].map((char) => (/[a-f]/.test(char) ? char.toUpperCase() : /[A-F]/.test(char) ? char.toLowerCase() : char)).join("");
    await expectProblem(await post({ ...valid(), currency: badChecksum }), 422, ["currency"]);
    await createOk({ ...valid(), currency: usdc.toLowerCase() });
  });

  it("invalid addresses and bad checksums for payer and arbiter → 422 on the field", async () => {
    await expectProblem(await post({ ...valid(), payer: "0x1234" }), 422, ["payer"]);
    await expectProblem(await post({ ...valid(), payer: "not an address" }), 422, ["payer"]);
    const payer = testAccount(5).address;
    const flipped = payer.slice(0, 2) + [...payer.slice(2)].map((char) => (/[a-f]/.test(char) ? char.toUpperCase() : /[A-F]/.test(char) ? char.toLowerCase() : char)).join("");
    await expectProblem(await post({ ...valid(), payer: flipped }), 422, ["payer"]);
    await expectProblem(await post({ ...valid(), arbiter: "0xZZ00000000000000000000000000000000000000" }), 422, ["arbiter"]);
    await expectProblem(await post({ ...valid(), payer: "0x0000000000000000000000000000000000000000" }), 422, ["payer"]);
  });

  it("out-of-range durations and dates → 422 on the field", async () => {
    await expectProblem(await post({ ...valid(), expiresInSeconds: 59 }), 422, ["expiresInSeconds"]);
    await expectProblem(await post({ ...valid(), expiresInSeconds: 30 * 86_400 + 1 }), 422, ["expiresInSeconds"]);
    await expectProblem(await post({ ...valid(), holdSeconds: -1 }), 422, ["holdSeconds"]);
    await expectProblem(await post({ ...valid(), holdSeconds: 365 * 86_400 + 1 }), 422, ["holdSeconds"]);
    await expectProblem(await post({ ...valid(), fulfillBy: "2020-01-01T00:00:00Z" }), 422, ["fulfillBy"]);
    await expectProblem(await post({ ...valid(), fulfillBy: "next tuesday" }), 422, ["fulfillBy"]);
  });

  it("an unknown chain → 422 on chainId", async () => {
    await expectProblem(await post({ ...valid(), chainId: 1 }), 422, ["chainId"]);
  });

  it("a merchant not registered on-chain → 409 telling it to send the registration transaction", async () => {
    const response = await stack.api("POST", "/v1/merchants", {
      key: stack.adminKey,
      body: { name: "Unregistered", payoutAddress: testAccount(16).address },
    });
    expect(response.status).to.equal(201);
    const { apiKey } = (await response.json()) as { apiKey: { secret: string } };
    const problem = await expectProblem(await post(valid(), { key: apiKey.secret }), 409);
    expect(problem.type).to.equal("/problems/merchant-not-registered");
    expect(problem.detail).to.contain("registrationTransaction");
    expect(problem.detail).to.contain("/v1/merchants/me");
  });

  it("oversized body → 413", async () => {
    const problem = await expectProblem(await post({ ...valid(), description: "x".repeat(70 * 1024) }), 413);
    expect(problem.type).to.equal("/problems/body-too-large");
  });

  it("too long free text → 422 on the field", async () => {
    await expectProblem(await post({ ...valid(), description: "x".repeat(501) }), 422, ["description"]);
    await expectProblem(await post({ ...valid(), customer: { id: "c".repeat(101) } }), 422, ["customer.id"]);
    await expectProblem(await post({ ...valid(), customer: { id: "c", email: "not-an-email" } }), 422, ["customer.email"]);
  });

  it("oversized metadata → 422 on metadata", async () => {
    const tooMany = Object.fromEntries(Array.from({ length: 21 }, (_, index) => [`k${index}`, "v"]));
    await expectProblem(await post({ ...valid(), metadata: tooMany }), 422, ["metadata"]);
    await expectProblem(await post({ ...valid(), metadata: { note: "v".repeat(501) } }), 422, ["metadata.note"]);
    await expectProblem(await post({ ...valid(), metadata: { ["k".repeat(41)]: "v" } }), 422);
    await expectProblem(await post({ ...valid(), metadata: { count: 3 } }), 422, ["metadata.count"]);
  });

  it("too many line items → 422 on lineItems", async () => {
    const items = Array.from({ length: 101 }, () => ({ description: "item", quantity: 1, unitAmount: "1" }));
    await expectProblem(await post({ ...valid(), lineItems: items }), 422, ["lineItems"]);
  });

  it("missing API key → 401", async () => {
    const problem = await expectProblem(await post(valid(), { key: null }), 401);
    expect(problem.type).to.equal("/problems/unauthorized");
    await expectProblem(await stack.api("GET", "/v1/invoices"), 401);
    await expectProblem(await stack.api("GET", "/v1/invoices", { key: "cb_live_not_a_real_key" }), 401);
  });

  it("revoked key → 401 after DELETE /v1/api-keys/:id", async () => {
    const created = await stack.api("POST", "/v1/api-keys", { key: merchant.apiKey, body: { name: "to revoke" } });
    expect(created.status).to.equal(201);
    const key = (await created.json()) as { id: string; secret: string };
    expect((await stack.api("GET", "/v1/invoices", { key: key.secret })).status).to.equal(200);
    expect((await stack.api("DELETE", `/v1/api-keys/${key.id}`, { key: merchant.apiKey })).status).to.equal(204);
    await expectProblem(await stack.api("GET", "/v1/invoices", { key: key.secret }), 401);
    await expectProblem(await post(valid(), { key: key.secret }), 401);
  });

  it("a key without the invoices:write scope → 403", async () => {
    const created = await stack.api("POST", "/v1/api-keys", { key: merchant.apiKey, body: { name: "read only", scopes: ["invoices:read"] } });
    const key = (await created.json()) as { secret: string };
    expect((await stack.api("GET", "/v1/invoices", { key: key.secret })).status).to.equal(200);
    await expectProblem(await post(valid(), { key: key.secret }), 403);
  });

  it("another merchant's key → 404 for this merchant's invoice, and its list shows none of them", async () => {
    const mine = await createOk({ ...valid(), customer: { id: "cus_tenant" } });
    const other = await createMerchant(stack, 3, "Other merchant");
    const theirs = await createOk({ ...valid(), customer: { id: "cus_tenant" } }, other.apiKey);

    const problem = await expectProblem(await stack.api("GET", `/v1/invoices/${mine.id}`, { key: other.apiKey }), 404);
    expect(problem.type).to.equal("/problems/not-found");
    await expectProblem(await stack.api("POST", `/v1/invoices/${mine.id}/void`, { key: other.apiKey }), 404);
    await expectProblem(await stack.api("POST", `/v1/invoices/${mine.id}/refund`, { key: other.apiKey, body: {} }), 404);
    await expectProblem(await stack.api("POST", `/v1/invoices/${mine.id}/fulfill`, { key: other.apiKey }), 404);
    expect((await stack.api("GET", `/v1/invoices/${mine.id}`, { key: merchant.apiKey })).status).to.equal(200);

    const list = (await (await stack.api("GET", "/v1/invoices?limit=100", { key: other.apiKey })).json()) as { data: { id: string }[] };
    expect(list.data.map((invoice) => invoice.id)).to.deep.equal([theirs.id]);
    const filtered = (await (await stack.api("GET", "/v1/invoices?customerId=cus_tenant", { key: other.apiKey })).json()) as { data: { id: string }[] };
    expect(filtered.data.map((invoice) => invoice.id)).to.deep.equal([theirs.id]);
  });

  it("an unknown invoice id → 404", async () => {
    await expectProblem(await stack.api("GET", "/v1/invoices/inv_doesnotexist", { key: merchant.apiKey }), 404);
    await expectProblem(await stack.api("GET", `/v1/invoices/${"x".repeat(500)}`, { key: merchant.apiKey }), 404);
  });

  it("Idempotency-Key reused with a different body → 409", async () => {
    const key = randomUUID();
    expect((await post(valid(), { idempotencyKey: key })).status).to.equal(201);
    const problem = await expectProblem(await post({ ...valid(), amount: "26.00" }, { idempotencyKey: key }), 409, ["Idempotency-Key"]);
    expect(problem.type).to.equal("/problems/idempotency-key-reused");
  });

  it("a failed request does not burn its Idempotency-Key", async () => {
    const key = randomUUID();
    await expectProblem(await post({ ...valid(), currency: "DOGE" }, { idempotencyKey: key }), 422, ["currency"]);
    expect((await post(valid(), { idempotencyKey: key })).status).to.equal(201);
  });

  it("SQL and HTML in description, metadata and customer id are stored and returned verbatim", async () => {
    const description = `Robert'); DROP TABLE invoices; -- <script>alert("x")</script> & "quotes" \\ back\\slash ü 🎉`;
    const metadata = {
      sql: "' OR '1'='1'; DELETE FROM chainbill_api.merchants; --",
      html: '<img src=x onerror="alert(1)">',
      "<b>key</b>": "value with\nnewline\tand tab",
    };
    const customerId = "cus_'; SELECT pg_sleep(10); --";
    const lineItems = [{ description: "<i>Widget</i> '; --", quantity: 2, unitAmount: "12.50" }];
    const created = await createOk({ ...valid(), description, metadata, customer: { id: customerId }, lineItems });
    for (const invoice of [created, (await (await stack.api("GET", `/v1/invoices/${created.id}`, { key: merchant.apiKey })).json()) as typeof created]) {
      expect(invoice.description).to.equal(description);
      expect(invoice.metadata).to.deep.equal(metadata);
      expect(invoice.customer?.id).to.equal(customerId);
      expect(invoice.lineItems).to.deep.equal(lineItems);
    }
    const response = await stack.api("GET", `/v1/invoices?customerId=${encodeURIComponent(customerId)}`, { key: merchant.apiKey });
    expect(response.headers.get("content-type")).to.match(/^application\/json/);
    const list = (await response.json()) as { data: { id: string }[] };
    expect(list.data.map((invoice) => invoice.id)).to.deep.equal([created.id]);
    // The tables are intact.
    expect((await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey })).status).to.equal(200);
  });

  it("invalid list parameters → 422 on the parameter", async () => {
    await expectProblem(await stack.api("GET", "/v1/invoices?limit=0", { key: merchant.apiKey }), 422, ["limit"]);
    await expectProblem(await stack.api("GET", "/v1/invoices?limit=101", { key: merchant.apiKey }), 422, ["limit"]);
    await expectProblem(await stack.api("GET", "/v1/invoices?status=lost", { key: merchant.apiKey }), 422, ["status"]);
    await expectProblem(await stack.api("GET", "/v1/invoices?cursor=garbage", { key: merchant.apiKey }), 422, ["cursor"]);
    await expectProblem(await stack.api("GET", "/v1/invoices?createdAfter=yesterday", { key: merchant.apiKey }), 422, ["createdAfter"]);
    await expectProblem(await stack.api("GET", "/v1/invoices?sort=asc", { key: merchant.apiKey }), 422, ["sort"]);
  });

  it("refund amount errors → 422 on amount; refunding an unpaid invoice → 409", async () => {
    const invoice = await createOk(valid());
    await expectProblem(await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: "-1" } }), 422, ["amount"]);
    await expectProblem(await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: 1 } }), 422, ["amount"]);
    const problem = await expectProblem(await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: {} }), 409);
    expect(problem.type).to.equal("/problems/invoice-not-paid");
  });

  it("an unknown route → 404 problem", async () => {
    const problem = await expectProblem(await stack.api("GET", "/v1/no-such-thing", { key: merchant.apiKey }), 404);
    expect(problem.detail).to.contain("/v1/no-such-thing");
    const wrongMethod = await stack.api("DELETE", "/v1/invoices", { key: merchant.apiKey });
    expect(wrongMethod.headers.get("allow")).to.equal("POST, GET");
    await expectProblem(wrongMethod, 405);
  });
});
