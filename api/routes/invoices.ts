/**
 * Invoices: create (idempotent, terms signed by the merchant's operator key, payment instructions for the
 * payer), read (status from the indexed chain), list with filters and cursor pagination, and the merchant's
 * on-chain actions — void, refund, mark fulfilled — sent with the operator key.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { currentMerchant, requireScope } from "../auth";
import type { ApiDeps, AppEnv } from "../env";
import { MAX_IDEMPOTENCY_KEY_LENGTH, readIdempotencyKey, requestFingerprint, withIdempotency, type RememberedResponse } from "../idempotency";
import {
  createInvoice,
  fulfillInvoice,
  listInvoices,
  loadInvoice,
  refundInvoice,
  viewInvoice,
  voidInvoice,
  type ActionResult,
} from "../invoices/service";
import {
  CreateInvoiceBody,
  InvoiceActionSchema,
  InvoiceIdParams,
  InvoiceListSchema,
  InvoiceSchema,
  ListInvoicesQuery,
  RefundBody,
} from "../invoices/schemas";
import { problem, problemResponse, ProblemError, type FieldError } from "../problems";
import { BEARER, problemResponses } from "../schemas";

/**
 * Like the shared validation hook, but an unknown field is reported under its own name (zod reports
 * `unrecognized_keys` once, at the parent object).
 */
function invoiceValidationHook(
  result: { success: true } | { success: false; error: { issues: { path: PropertyKey[]; message: string; code?: string; keys?: string[] }[] } },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  const errors: FieldError[] = result.error.issues.flatMap((issue) => {
    const parent = issue.path.map(String);
    if (issue.code === "unrecognized_keys" && issue.keys?.length) {
      return issue.keys.map((key) => ({ field: [...parent, key].join("."), message: "is not a known field" }));
    }
    return [{ field: parent.join(".") || "(body)", message: issue.message }];
  });
  return problemResponse(c, problem.validation(errors));
}

/** 415 unless the body is declared as JSON (a form or text body would otherwise read as "missing fields"). */
const requireJsonBody = createMiddleware<AppEnv>(async (c, next) => {
  const type = (c.req.header("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (!/^application\/([\w.-]+\+)?json$/.test(type)) {
    throw new ProblemError(415, "unsupported-media-type", "Unsupported media type", "Send the body as JSON with `Content-Type: application/json`.");
  }
  await next();
});

/** Checks `Idempotency-Key` before the body is validated, so a missing key is reported first. */
const requireIdempotencyKey = createMiddleware<AppEnv>(async (c, next) => {
  readIdempotencyKey(c, true);
  await next();
});

const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(MAX_IDEMPOTENCY_KEY_LENGTH)
    .openapi({
      param: { in: "header" },
      description: "Unique per request (e.g. a UUID). Retrying with the same key and body replays the first response.",
    }),
});

const OptionalIdempotencyHeaders = z.object({
  "idempotency-key": IdempotencyHeaders.shape["idempotency-key"].optional().openapi({
    param: { in: "header", required: false },
    description: "Optional: makes the action safe to retry (the first response is replayed).",
  }),
});

function respond(c: Context, response: RememberedResponse & { replayed?: boolean }): Response {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (response.replayed) headers["Idempotent-Replayed"] = "true";
  return c.body(response.body, response.status as 201, headers);
}

export function invoiceRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: invoiceValidationHook });
  const db = deps.store.db;

  /** Runs an on-chain action, idempotently when the client sent a key. */
  async function action(c: Context<AppEnv>, body: unknown, run: () => Promise<ActionResult>): Promise<Response> {
    const key = readIdempotencyKey(c, false);
    if (key === undefined) return respond(c, { status: 202, body: JSON.stringify(await run()) });
    const merchant = currentMerchant(c);
    const fingerprint = requestFingerprint(c.req.method, c.req.path, body);
    const result = await withIdempotency(db, { merchantId: merchant.id, key, fingerprint }, async () => ({
      status: 202,
      body: JSON.stringify(await run()),
    }));
    return respond(c, result);
  }

  const create = createRoute({
    method: "post",
    path: "/invoices",
    tags: ["Invoices"],
    summary: "Create an invoice",
    description: [
      "Creates an invoice payable into the escrow on `chainId`, signs its terms with the merchant's operator key and returns the payment instructions: `payment.evm.transactions` are sent in order from the paying wallet.",
      "Requires an `Idempotency-Key`: retrying with the same key and body replays the first response (status and body); the same key with another body is refused (409).",
      "`detailsHash` in the signed terms is keccak256 of the canonical JSON (sorted keys, no whitespace) of `{customer, description, lineItems, metadata}` as returned in the response (absent: `null`, `null`, `[]`, `{}`).",
    ].join("\n\n"),
    security: BEARER,
    middleware: [requireScope("invoices:write"), requireIdempotencyKey, requireJsonBody] as const,
    request: {
      headers: IdempotencyHeaders,
      body: { required: true, content: { "application/json": { schema: CreateInvoiceBody } } },
    },
    responses: {
      201: { description: "Created (or replayed)", content: { "application/json": { schema: InvoiceSchema } } },
      ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    },
  });
  app.openapi(
    create,
    async (c) => {
      const merchant = currentMerchant(c);
      const key = readIdempotencyKey(c, true)!;
      const body = c.req.valid("json");
      const fingerprint = requestFingerprint("POST", c.req.path, body);
      const result = await withIdempotency(db, { merchantId: merchant.id, key, fingerprint }, (remember) =>
        createInvoice(deps, merchant, body, remember),
      );
      return respond(c, result) as never;
    }
  );

  const get = createRoute({
    method: "get",
    path: "/invoices/{id}",
    tags: ["Invoices"],
    summary: "Read an invoice",
    description: "Status comes from the indexed chain: open → paid → released / refunded / partially_refunded / disputed; open → expired; void.",
    security: BEARER,
    middleware: [requireScope("invoices:read")] as const,
    request: { params: InvoiceIdParams },
    responses: {
      200: { description: "The invoice", content: { "application/json": { schema: InvoiceSchema } } },
      ...problemResponses(401, 403, 404, 429),
    },
  });
  app.openapi(
    get,
    async (c) => {
      const row = await loadInvoice(deps, currentMerchant(c), c.req.valid("param").id);
      return c.json(await viewInvoice(deps, row), 200);
    }
  );

  const list = createRoute({
    method: "get",
    path: "/invoices",
    tags: ["Invoices"],
    summary: "List invoices, newest first",
    description:
      "Cursor pagination: pass `nextCursor` as `cursor`. With a `status` filter a page may hold fewer than `limit` invoices while `hasMore` is true (at most 2,000 invoices are examined per page).",
    security: BEARER,
    middleware: [requireScope("invoices:read")] as const,
    request: { query: ListInvoicesQuery },
    responses: {
      200: { description: "A page of invoices", content: { "application/json": { schema: InvoiceListSchema } } },
      ...problemResponses(401, 403, 422, 429),
    },
  });
  app.openapi(
    list,
    async (c) => c.json(await listInvoices(deps, currentMerchant(c), c.req.valid("query")), 200)
  );

  const actionResponses = {
    202: {
      description: "The transaction was mined; `invoice` is the state the indexer shows",
      content: { "application/json": { schema: InvoiceActionSchema } },
    },
    ...problemResponses(400, 401, 403, 404, 409, 422, 429, 502),
  };

  const voidRoute = createRoute({
    method: "post",
    path: "/invoices/{id}/void",
    tags: ["Invoices"],
    summary: "Void an open invoice",
    description:
      "Marks the invoice void and sends `voidInvoice(terms)` with the operator key, so its signature can never be used. Only open invoices; a paid one is refunded instead.",
    security: BEARER,
    middleware: [requireScope("invoices:write")] as const,
    request: { params: InvoiceIdParams, headers: OptionalIdempotencyHeaders },
    responses: actionResponses,
  });
  app.openapi(
    voidRoute,
    async (c) => {
      const merchant = currentMerchant(c);
      const row = await loadInvoice(deps, merchant, c.req.valid("param").id);
      return (await action(c, null, () => voidInvoice(deps, merchant, row))) as never;
    }
  );

  const refund = createRoute({
    method: "post",
    path: "/invoices/{id}/refund",
    tags: ["Invoices"],
    summary: "Refund a paid invoice (all or part of what is held)",
    description: "Sends `refund(terms, amount)` with the operator key and waits for it to be mined. `amount` defaults to everything still held.",
    security: BEARER,
    middleware: [requireScope("invoices:write")] as const,
    request: {
      params: InvoiceIdParams,
      headers: OptionalIdempotencyHeaders,
      body: { required: false, content: { "application/json": { schema: RefundBody } } },
    },
    responses: actionResponses,
  });
  app.openapi(
    refund,
    async (c) => {
      const merchant = currentMerchant(c);
      const row = await loadInvoice(deps, merchant, c.req.valid("param").id);
      const body = c.req.valid("json");
      return (await action(c, body, () => refundInvoice(deps, merchant, row, body.amount))) as never;
    }
  );

  const fulfill = createRoute({
    method: "post",
    path: "/invoices/{id}/fulfill",
    tags: ["Invoices"],
    summary: "Mark a paid invoice fulfilled",
    description: "Sends `markFulfilled(terms)` with the operator key. Only paid invoices created with `fulfillBy`, before that deadline.",
    security: BEARER,
    middleware: [requireScope("invoices:write")] as const,
    request: { params: InvoiceIdParams, headers: OptionalIdempotencyHeaders },
    responses: actionResponses,
  });
  app.openapi(
    fulfill,
    async (c) => {
      const merchant = currentMerchant(c);
      const row = await loadInvoice(deps, merchant, c.req.valid("param").id);
      return (await action(c, null, () => fulfillInvoice(deps, merchant, row))) as never;
    }
  );

  return app;
}
