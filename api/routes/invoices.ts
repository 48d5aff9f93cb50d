/**
 * Invoice routes: create (idempotent, signed terms and payment instructions), read, list, and the merchant's
 * on-chain actions — void, refund, mark fulfilled. Schemas live in api/invoices/schemas.ts; the work in
 * api/invoices/*.ts.
 */
import { OpenAPIHono, createRoute } from "@hono/zod-openapi";
import { currentMerchant, requireScope } from "../auth";
import type { ApiDeps, AppEnv } from "../env";
import { idempotent } from "../idempotency";
import { fulfillInvoice, refundInvoice, releaseInvoice, voidInvoice } from "../invoices/actions";
import { createInvoice } from "../invoices/create";
import { listInvoices } from "../invoices/list";
import {
  CreateInvoiceBody,
  InvoiceActionSchema,
  InvoiceIdParams,
  InvoiceListSchema,
  InvoiceSchema,
  ListInvoicesQuery,
  RefundBody,
} from "../invoices/schemas";
import { viewInvoice } from "../invoices/view";
import { loadBtcInvoice, viewBtcInvoices } from "../bitcoin/invoices";
import { problem } from "../problems";
import type { MerchantRecord } from "../env";
import { validationHook } from "../middleware";
import { BEARER, IdempotencyHeaders, OptionalIdempotencyHeaders, problemResponses } from "../schemas";

export function invoiceRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const required = idempotent(deps.store.db, { required: true });
  const optional = idempotent(deps.store.db, { required: false });

  const create = createRoute({
    method: "post",
    path: "/invoices",
    tags: ["Invoices"],
    summary: "Create an invoice",
    description: [
      "Creates an invoice payable into the escrow on `chainId`, signs its terms with the merchant's operator key and returns the payment instructions: `payment.evm.transactions` are sent in order from the paying wallet (each has its EIP-681 `uri`).",
      "Requires an `Idempotency-Key`: retrying with the same key and body replays the first response (status and body); the same key with another body is refused (409).",
      "`lineItems`, when given, must add up to `amount` exactly. `detailsHash` in the signed terms is keccak256 of the canonical JSON (sorted keys, no whitespace) of `{customer, description, lineItems, metadata}` as returned in the response (absent: `null`, `null`, `[]`, `{}`).",
      "`maxFeeBps` in the terms is the escrow's protocol fee when the invoice is created: the payment fails if the fee is raised above it before the customer pays.",
    ].join("\n\n"),
    security: BEARER,
    middleware: [requireScope("invoices:write"), required] as const,
    request: {
      headers: IdempotencyHeaders,
      body: { required: true, content: { "application/json": { schema: CreateInvoiceBody } } },
    },
    responses: {
      201: { description: "Created (or replayed)", content: { "application/json": { schema: InvoiceSchema } } },
      ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    },
  });
  app.openapi(create, async (c) => {
    const body = c.req.valid("json");
    // BTC (and fiat paid in BTC) is delegated to api/bitcoin/invoices.ts from there.
    const response = await createInvoice(deps, currentMerchant(c), body, c.get("remember"));
    return c.body(response.body, 201, { "content-type": "application/json" }) as never;
  });

  const get = createRoute({
    method: "get",
    path: "/invoices/{id}",
    tags: ["Invoices"],
    summary: "Read an invoice",
    description:
      "Status comes from the indexed chain: open → paid → released / refunded / partially_refunded / disputed; open → expired; void. The `Chainbill-Indexed` header says up to which block each chain is indexed.",
    security: BEARER,
    middleware: [requireScope("invoices:read")] as const,
    request: { params: InvoiceIdParams },
    responses: {
      200: { description: "The invoice", content: { "application/json": { schema: InvoiceSchema } } },
      ...problemResponses(401, 403, 404, 429),
    },
  });
  app.openapi(get, async (c) => {
    const merchant = currentMerchant(c);
    const id = c.req.valid("param").id;
    const btc = await loadBtcInvoice(deps.store.db, merchant.id, id);
    if (btc) return c.json((await viewBtcInvoices(deps.store.db, merchant, [btc])).get(id)!, 200);
    const row = await deps.invoiceRows.load(merchant, id);
    return c.json(await viewInvoice(deps, row, merchant), 200);
  });

  /** The EVM invoice an escrow action is for (a BTC invoice has no escrow: a 409 that says what to do). */
  const escrowInvoice = async (merchant: MerchantRecord, id: string, action: string) => {
    if (await loadBtcInvoice(deps.store.db, merchant.id, id)) {
      throw problem.conflict(
        "bitcoin-no-escrow",
        `A BTC invoice cannot be ${action}: Bitcoin payments go straight to your wallet, with no escrow.` +
          (action === "refunded through the escrow" ? " Prepare the refund as a PSBT to sign: POST /v1/invoices/{id}/bitcoin-refund." : ""),
      );
    }
    return deps.invoiceRows.load(merchant, id);
  };

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
  app.openapi(list, async (c) => c.json(await listInvoices(deps, currentMerchant(c), c.req.valid("query")), 200));

  const actionResponses = {
    202: {
      description: "The transaction was mined; `invoice` is the state the indexer shows (the effect appears once indexed)",
      content: { "application/json": { schema: InvoiceActionSchema } },
    },
    ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429, 503),
  };

  const voidRoute = createRoute({
    method: "post",
    path: "/invoices/{id}/void",
    tags: ["Invoices"],
    summary: "Void an open invoice",
    description:
      "Sends `voidInvoice(terms)` with the operator key, so the invoice's signature can never be used, and answers once it is mined. The invoice reads `void` once the transaction is indexed; nothing changes if it fails. Only open invoices; a paid one is refunded instead.",
    security: BEARER,
    middleware: [requireScope("invoices:write"), optional] as const,
    request: { params: InvoiceIdParams, headers: OptionalIdempotencyHeaders },
    responses: actionResponses,
  });
  app.openapi(voidRoute, async (c) => {
    const merchant = currentMerchant(c);
    const row = await escrowInvoice(merchant, c.req.valid("param").id, "voided");
    return c.json(await voidInvoice(deps, merchant, row, c.get("requestId")), 202);
  });

  const refund = createRoute({
    method: "post",
    path: "/invoices/{id}/refund",
    tags: ["Invoices"],
    summary: "Refund a paid invoice (all or part of what is held)",
    description: "Sends `refund(terms, amount)` with the operator key and answers once it is mined. `amount` defaults to everything still held.",
    security: BEARER,
    middleware: [requireScope("invoices:write"), optional] as const,
    request: {
      params: InvoiceIdParams,
      headers: OptionalIdempotencyHeaders,
      body: { required: false, content: { "application/json": { schema: RefundBody } } },
    },
    responses: actionResponses,
  });
  app.openapi(refund, async (c) => {
    const merchant = currentMerchant(c);
    const row = await escrowInvoice(merchant, c.req.valid("param").id, "refunded through the escrow");
    return c.json(await refundInvoice(deps, merchant, row, c.req.valid("json").amount, c.get("requestId")), 202);
  });

  const fulfill = createRoute({
    method: "post",
    path: "/invoices/{id}/fulfill",
    tags: ["Invoices"],
    summary: "Mark a paid invoice fulfilled",
    description: "Sends `markFulfilled(terms)` with the operator key. Only paid invoices created with `fulfillBy`, before that deadline.",
    security: BEARER,
    middleware: [requireScope("invoices:write"), optional] as const,
    request: { params: InvoiceIdParams, headers: OptionalIdempotencyHeaders },
    responses: actionResponses,
  });
  app.openapi(fulfill, async (c) => {
    const merchant = currentMerchant(c);
    const row = await escrowInvoice(merchant, c.req.valid("param").id, "marked fulfilled");
    return c.json(await fulfillInvoice(deps, merchant, row, c.get("requestId")), 202);
  });

  const release = createRoute({
    method: "post",
    path: "/invoices/{id}/release",
    tags: ["Invoices"],
    summary: "Release a held payment to the merchant's payout address",
    description:
      "Sends `release(terms)` with the operator key (which pays the gas): the escrow pays the amount held minus the protocol fee to the merchant's on-chain payout address. Allowed once the hold is over (`releaseAt`) and, for an invoice created with `fulfillBy`, once it was marked fulfilled; never while disputed.",
    security: BEARER,
    middleware: [requireScope("invoices:write"), optional] as const,
    request: { params: InvoiceIdParams, headers: OptionalIdempotencyHeaders },
    responses: actionResponses,
  });
  app.openapi(release, async (c) => {
    const merchant = currentMerchant(c);
    const row = await escrowInvoice(merchant, c.req.valid("param").id, "released");
    return c.json(await releaseInvoice(deps, merchant, row, c.get("requestId")), 202);
  });

  return app;
}
