import { expect } from "chai";
import { Hono } from "hono";
import type { AppEnv } from "../../api/env";
import { PROBLEM_TYPES, ProblemError, problem, problemResponse, type ProblemSlug } from "../../api/problems";

const SLUGS = Object.keys(PROBLEM_TYPES) as ProblemSlug[];

describe("unit: api/problems PROBLEM_TYPES", () => {
  it("gives every type a kebab-case slug, an error status, a title and an explanation", () => {
    expect(SLUGS.length).to.be.greaterThan(20);
    for (const slug of SLUGS) {
      const type = PROBLEM_TYPES[slug];
      expect(slug, slug).to.match(/^[a-z]+(-[a-z]+)*$/);
      expect(type.status, slug).to.be.within(400, 599);
      expect(type.title, slug).to.be.a("string").with.length.greaterThan(3);
      expect(type.title, slug).to.match(/^[A-Z]/);
      expect(type.explanation, slug).to.be.a("string").with.length.greaterThan(30);
      expect(type.explanation, slug).to.match(/\.$/);
      expect(type.explanation, slug).not.to.equal(type.title);
    }
  });

  it("gives every type its own title", () => {
    const titles = SLUGS.map((slug) => PROBLEM_TYPES[slug].title);
    expect(new Set(titles).size).to.equal(titles.length);
  });

  it("answers the statuses the HTTP semantics call for", () => {
    const expected: Partial<Record<ProblemSlug, number>> = {
      "malformed-request": 400,
      "idempotency-key-missing": 400,
      "idempotency-key-invalid": 400,
      unauthorized: 401,
      forbidden: 403,
      "not-found": 404,
      "method-not-allowed": 405,
      "idempotency-key-reused": 409,
      "idempotency-request-in-progress": 409,
      "chain-rejected": 409,
      "body-too-large": 413,
      "unsupported-media-type": 415,
      "validation-error": 422,
      "rate-limited": 429,
      "internal-error": 500,
      unavailable: 503,
      "chain-unavailable": 503,
      "operator-needs-gas": 503,
    };
    for (const [slug, status] of Object.entries(expected)) {
      expect(PROBLEM_TYPES[slug as ProblemSlug]?.status, slug).to.equal(status);
    }
  });
});

describe("unit: api/problems ProblemError", () => {
  it("takes status and title from the catalogue and the detail as its message", () => {
    const error = new ProblemError("invoice-not-open", "Invoice inv_1 is paid.");
    expect(error).to.be.instanceOf(Error);
    expect(error.slug).to.equal("invoice-not-open");
    expect(error.status).to.equal(PROBLEM_TYPES["invoice-not-open"].status);
    expect(error.title).to.equal(PROBLEM_TYPES["invoice-not-open"].title);
    expect(error.detail).to.equal("Invoice inv_1 is paid.");
    expect(error.message).to.equal("Invoice inv_1 is paid.");
    expect(error.extensions).to.deep.equal({});
    expect(error.headers).to.deep.equal({});
  });

  it("uses the title as its message without a detail", () => {
    expect(new ProblemError("not-found").message).to.equal("Not found");
  });

  it("becomes an RFC 9457 problem: type, title, status, detail, instance and extensions", () => {
    const error = new ProblemError("validation-error", "Bad.", { errors: [{ field: "amount", message: "is too large" }] });
    expect(error.toProblem("req_1")).to.deep.equal({
      type: "/problems/validation-error",
      title: "Invalid request",
      status: 422,
      detail: "Bad.",
      instance: "req_1",
      errors: [{ field: "amount", message: "is too large" }],
    });
  });

  it("leaves out detail and instance when it has none", () => {
    const toProblem = new ProblemError("not-found").toProblem();
    expect(toProblem).to.deep.equal({ type: "/problems/not-found", title: "Not found", status: 404 });
    expect(Object.keys(toProblem)).to.deep.equal(["type", "title", "status"]);
    expect(Object.keys(new ProblemError("not-found", "").toProblem(""))).to.deep.equal(["type", "title", "status"]);
  });
});

describe("unit: api/problems problem factories", () => {
  function shape(error: ProblemError) {
    return { slug: error.slug, status: error.status, detail: error.detail, extensions: error.extensions, headers: error.headers };
  }

  it("validation lists the fields, with a default detail", () => {
    expect(shape(problem.validation([{ field: "a", message: "b" }]))).to.deep.equal({
      slug: "validation-error",
      status: 422,
      detail: "The request has invalid fields; see `errors`.",
      extensions: { errors: [{ field: "a", message: "b" }] },
      headers: {},
    });
    expect(problem.validation([], "Custom.").detail).to.equal("Custom.");
  });

  it("malformed, forbidden, unavailable carry their detail", () => {
    expect(shape(problem.malformed("Bad JSON."))).to.deep.include({ slug: "malformed-request", status: 400, detail: "Bad JSON." });
    expect(shape(problem.forbidden("No."))).to.deep.include({ slug: "forbidden", status: 403, detail: "No." });
    expect(shape(problem.unavailable("Later."))).to.deep.include({ slug: "unavailable", status: 503, detail: "Later." });
  });

  it("unauthorized asks for a bearer key, with WWW-Authenticate", () => {
    expect(shape(problem.unauthorized())).to.deep.equal({
      slug: "unauthorized",
      status: 401,
      detail: "Send an API key as `Authorization: Bearer <key>`.",
      extensions: {},
      headers: { "WWW-Authenticate": 'Bearer realm="chainbill"' },
    });
    expect(problem.unauthorized("Revoked.").detail).to.equal("Revoked.");
  });

  it("notFound names what does not exist", () => {
    expect(shape(problem.notFound("Invoice inv_1"))).to.deep.include({ slug: "not-found", status: 404, detail: "Invoice inv_1 does not exist." });
  });

  it("methodNotAllowed lists the allowed methods in the detail, the body and the Allow header", () => {
    expect(shape(problem.methodNotAllowed("PUT", "/v1/invoices", ["GET", "POST"]))).to.deep.equal({
      slug: "method-not-allowed",
      status: 405,
      detail: "/v1/invoices does not accept PUT; it accepts GET, POST.",
      extensions: { allow: ["GET", "POST"] },
      headers: { Allow: "GET, POST" },
    });
  });

  it("conflict takes any slug, detail and extensions", () => {
    expect(shape(problem.conflict("refund-exceeds-held", "Too much.", { heldAmount: "1.00" }))).to.deep.equal({
      slug: "refund-exceeds-held",
      status: 409,
      detail: "Too much.",
      extensions: { heldAmount: "1.00" },
      headers: {},
    });
    expect(problem.conflict("invoice-not-open", "No.").extensions).to.deep.equal({});
  });

  it("tooLarge names the limit and closes the connection", () => {
    expect(shape(problem.tooLarge(65_536))).to.deep.equal({
      slug: "body-too-large",
      status: 413,
      detail: "The body must be at most 65536 bytes.",
      extensions: {},
      headers: { Connection: "close" },
    });
  });

  it("unsupportedMediaType asks for JSON", () => {
    expect(shape(problem.unsupportedMediaType())).to.deep.include({
      slug: "unsupported-media-type",
      status: 415,
      detail: "Send the body as JSON with `Content-Type: application/json`.",
    });
  });

  it("rateLimited says who is limited and when to retry, in the body and Retry-After", () => {
    expect(shape(problem.rateLimited(7, "merchant"))).to.deep.equal({
      slug: "rate-limited",
      status: 429,
      detail: "Too many requests from this merchant: retry after 7 s.",
      extensions: { retryAfter: 7 },
      headers: { "Retry-After": "7" },
    });
    expect(problem.rateLimited(1, "client").detail).to.equal("Too many requests from this client address: retry after 1 s.");
  });

  it("chainUnavailable names the chain", () => {
    expect(shape(problem.chainUnavailable(8453))).to.deep.equal({
      slug: "chain-unavailable",
      status: 503,
      detail: "The node of chain 8453 could not be reached or refused the request; nothing was sent. Retry later.",
      extensions: { chainId: 8453 },
      headers: {},
    });
  });

  it("chainRejected names the action and the contract's reason", () => {
    expect(shape(problem.chainRejected("void the invoice", "InvoiceAlreadyPaid"))).to.deep.equal({
      slug: "chain-rejected",
      status: 409,
      detail: "The contract refuses to void the invoice: InvoiceAlreadyPaid. Nothing was changed.",
      extensions: { reason: "InvoiceAlreadyPaid" },
      headers: {},
    });
  });

  it("operatorNeedsGas names the operator address, its balance and what the transaction needs", () => {
    const operator = "0x00000000000000000000000000000000000000a1";
    const error = problem.operatorNeedsGas({ operator, chainId: 84532, balanceWei: 1_000_000_000_000_000n, neededWei: 2_500_000_000_000_000n });
    expect(shape(error)).to.deep.equal({
      slug: "operator-needs-gas",
      status: 503,
      detail: `The merchant's operator ${operator} holds 0.001 ETH on chain 84532, and this transaction needs up to 0.0025 ETH of gas: send ETH to ${operator}, then retry.`,
      extensions: { operator, chainId: 84532, balanceWei: "1000000000000000", neededWei: "2500000000000000" },
      headers: {},
    });
  });

  it("operatorNeedsGas without an estimate says the balance is not enough", () => {
    const operator = "0x00000000000000000000000000000000000000a1";
    const error = problem.operatorNeedsGas({ operator, chainId: 1, balanceWei: 0n, neededWei: undefined });
    expect(error.detail).to.equal(`The merchant's operator ${operator} holds 0 ETH on chain 1, not enough for this transaction's gas: send ETH to ${operator}, then retry.`);
    expect(error.extensions).to.deep.equal({ operator, chainId: 1, balanceWei: "0" });
    expect(error.extensions).not.to.have.property("neededWei");
  });

  it("operatorNeedsGas with an estimate of zero still states it", () => {
    const error = problem.operatorNeedsGas({ operator: "0x1", chainId: 1, balanceWei: 0n, neededWei: 0n });
    expect(error.detail).to.contain("needs up to 0 ETH of gas");
    expect(error.extensions).to.include({ neededWei: "0" });
  });
});

describe("unit: api/problems problemResponse", () => {
  it("answers application/problem+json with the status, the problem's headers and the request id as instance", async () => {
    const app = new Hono<AppEnv>();
    app.get("/", (c) => {
      c.set("requestId", "req_42");
      return problemResponse(c, problem.rateLimited(3, "client"));
    });
    const response = await app.request("/");
    expect(response.status).to.equal(429);
    expect(response.headers.get("content-type")).to.equal("application/problem+json");
    expect(response.headers.get("Retry-After")).to.equal("3");
    expect(await response.json()).to.deep.equal({
      type: "/problems/rate-limited",
      title: "Too many requests",
      status: 429,
      detail: "Too many requests from this client address: retry after 3 s.",
      instance: "req_42",
      retryAfter: 3,
    });
  });

  it("keeps the problem content type even when the problem's headers name another", async () => {
    const app = new Hono<AppEnv>();
    app.get("/", (c) => problemResponse(c, new ProblemError("unavailable", "Later.", {}, { "content-type": "text/html" })));
    const response = await app.request("/");
    expect(response.headers.get("content-type")).to.equal("application/problem+json");
    expect(await response.json()).to.deep.equal({ type: "/problems/unavailable", title: "Temporarily unavailable", status: 503, detail: "Later." });
  });
});
