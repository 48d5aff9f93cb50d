/**
 * Payment links: the merchant's routes (`/v1/payment-links`: create, list, read with counts, the invoices of a
 * link, deactivate / activate — audited like every change) and the public ones the hosted checkout's link page
 * calls (`GET /links/{id}`, `POST /links/{id}/invoices`: no API key, the link id is public), served outside
 * /v1 with the same input guards and per-client rate limit, plus a limit of their own on invoice creation.
 * The work is in api/payment-links/service.ts.
 */
import { OpenAPIHono, createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { currentMerchant, requireScope } from "../auth";
import type { ApiDeps, AppEnv } from "../env";
import { idempotent } from "../idempotency";
import { listInvoices } from "../invoices/list";
import { InvoiceListSchema, ListInvoicesQuery } from "../invoices/schemas";
import { clientAddress, createBuckets, validationHook } from "../middleware";
import {
  CreatePaymentLinkBody,
  LinkIdParams,
  LinkInvoiceSchema,
  ListPaymentLinksQuery,
  PaymentLinkListSchema,
  PaymentLinkSchema,
  PublicPaymentLinkSchema,
  UsePaymentLinkBody,
} from "../payment-links/schemas";
import { createPaymentLink, linkStats, linkView, listLinks, loadLink, publicLinkView, setLinkActive, useLink } from "../payment-links/service";
import { ProblemError } from "../problems";
import { BEARER, IdempotencyHeaders, OptionalIdempotencyHeaders, problemResponses } from "../schemas";

/** The origin the caller reached the API at: absolute link URLs are built on it. */
function origin(c: Context): string {
  return new URL(c.req.url).origin;
}

export function paymentLinkRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const required = idempotent(deps.store.db, { required: true });
  const optional = idempotent(deps.store.db, { required: false });

  const create = createRoute({
    method: "post",
    path: "/payment-links",
    tags: ["Payment links"],
    summary: "Create a payment link",
    description: [
      "A reusable link (or `singleUse`: an invoice for one customer) to a price: `fixed` (times a quantity the customer picks, up to `quantity.maximum`) or `customer_chosen` (at least `minimum`: donations, tips). Each use creates an invoice (`paymentLinkId` set).",
      "Priced in USD, EUR or CNY, the customer picks one of `accept` on the checkout and the price is converted at the Chainlink rate of that moment, locked for the merchant's `rateLockSeconds` (the invoice's expiry). Priced in ETH or a token, it is paid in that currency directly.",
      "Send customers to `url` (the hosted page) or build your own page on `GET /links/{id}` and `POST /links/{id}/invoices`. Requires an `Idempotency-Key`.",
    ].join("\n\n"),
    security: BEARER,
    middleware: [requireScope("invoices:write"), required] as const,
    request: { headers: IdempotencyHeaders, body: { required: true, content: { "application/json": { schema: CreatePaymentLinkBody } } } },
    responses: {
      201: { description: "Created (or replayed)", content: { "application/json": { schema: PaymentLinkSchema } } },
      ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429),
    },
  });
  app.openapi(create, async (c) => {
    const body = await createPaymentLink(deps, currentMerchant(c), c.req.valid("json"), (row) => JSON.stringify(linkView(row, origin(c))), c.get("remember"));
    return c.body(body, 201, { "content-type": "application/json" }) as never;
  });

  const list = createRoute({
    method: "get",
    path: "/payment-links",
    tags: ["Payment links"],
    summary: "List payment links, newest first",
    security: BEARER,
    middleware: [requireScope("invoices:read")] as const,
    request: { query: ListPaymentLinksQuery },
    responses: { 200: { description: "A page of links", content: { "application/json": { schema: PaymentLinkListSchema } } }, ...problemResponses(401, 403, 422, 429) },
  });
  app.openapi(list, async (c) => c.json(await listLinks(deps, currentMerchant(c), c.req.valid("query"), origin(c)), 200));

  const get = createRoute({
    method: "get",
    path: "/payment-links/{id}",
    tags: ["Payment links"],
    summary: "Read a payment link, with counts of its invoices",
    description: "`stats`: invoices created from the link, how many are paid (as indexed) and open, and the total paid per currency.",
    security: BEARER,
    middleware: [requireScope("invoices:read")] as const,
    request: { params: LinkIdParams },
    responses: { 200: { description: "The link", content: { "application/json": { schema: PaymentLinkSchema } } }, ...problemResponses(401, 403, 404, 429) },
  });
  app.openapi(get, async (c) => {
    const link = await loadLink(deps, currentMerchant(c).id, c.req.valid("param").id);
    return c.json({ ...linkView(link, origin(c)), stats: await linkStats(deps, link) }, 200);
  });

  const invoicesOf = createRoute({
    method: "get",
    path: "/payment-links/{id}/invoices",
    tags: ["Payment links"],
    summary: "The invoices created from a payment link, newest first",
    description: "The same list as `GET /v1/invoices?paymentLinkId={id}` (same filters and cursor pagination).",
    security: BEARER,
    middleware: [requireScope("invoices:read")] as const,
    request: { params: LinkIdParams, query: ListInvoicesQuery.omit({ paymentLinkId: true }) },
    responses: { 200: { description: "A page of invoices", content: { "application/json": { schema: InvoiceListSchema } } }, ...problemResponses(401, 403, 404, 422, 429) },
  });
  app.openapi(invoicesOf, async (c) => {
    const merchant = currentMerchant(c);
    const link = await loadLink(deps, merchant.id, c.req.valid("param").id);
    return c.json(await listInvoices(deps, merchant, { ...c.req.valid("query"), paymentLinkId: link.id }), 200);
  });

  for (const [action, active] of [["deactivate", false], ["activate", true]] as const) {
    const route = createRoute({
      method: "post",
      path: `/payment-links/{id}/${action}`,
      tags: ["Payment links"],
      summary: active ? "Activate a payment link again" : "Deactivate a payment link",
      description: active
        ? "The link creates invoices again."
        : "The link creates no more invoices: its page and `POST /links/{id}/invoices` answer 410 `payment-link-inactive`. Invoices created before keep their terms and can still be paid until they expire (void them to stop that).",
      security: BEARER,
      middleware: [requireScope("invoices:write"), optional] as const,
      request: { params: LinkIdParams, headers: OptionalIdempotencyHeaders },
      responses: { 200: { description: "The link", content: { "application/json": { schema: PaymentLinkSchema } } }, ...problemResponses(400, 401, 403, 404, 429) },
    });
    app.openapi(route, async (c) => c.json(linkView(await setLinkActive(deps, currentMerchant(c), c.req.valid("param").id, active), origin(c)), 200));
  }

  return app;
}

/** The customer's side: no API key (the link id is public). Mounted at `/` with guards on `/links/*`. */
export function publicLinkRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const perClient = createBuckets(deps.config.paymentLinks.invoicesPerClientPerMinute);

  const read = createRoute({
    method: "get",
    path: "/links/{id}",
    tags: ["Payment links"],
    summary: "A payment link as its customers see it (no API key)",
    description: "What the link's page needs and nothing private: name, price, what it can be paid in, whether it is active (a deactivated link still answers here, with `active: false`).",
    request: { params: LinkIdParams },
    responses: { 200: { description: "The link", content: { "application/json": { schema: PublicPaymentLinkSchema } } }, ...problemResponses(400, 404, 429) },
  });
  app.openapi(read, async (c) => c.json(await publicLinkView(deps, await loadLink(deps, undefined, c.req.valid("param").id)), 200));

  const use = createRoute({
    method: "post",
    path: "/links/{id}/invoices",
    tags: ["Payment links"],
    summary: "Use a payment link: create an invoice in the chosen currency (no API key)",
    description: [
      "Creates the invoice of one use: `currency` is one of the link's `accept` (fiat links: converted at the current rate, locked until `expiresAt`), `amount` the customer's choice on a `customer_chosen` link (in the link's currency), `quantity` up to the link's `maxQuantity`. Answers 201 with the invoice id and its hosted checkout (`/pay/{invoiceId}`).",
      "A single-use link with an open invoice in the same currency answers 200 with that invoice; in another currency 409 `payment-link-busy`; once paid 410 `payment-link-used`. A deactivated link answers 410 `payment-link-inactive`; no fresh rate 503 `rate-unavailable`.",
      "Limited per client address (`LINK_INVOICES_PER_CLIENT_PER_MINUTE`, default 10) and per link (`LINK_INVOICES_PER_LINK_PER_MINUTE`, default 30): 429 with `Retry-After`.",
    ].join("\n\n"),
    request: { params: LinkIdParams, body: { required: true, content: { "application/json": { schema: UsePaymentLinkBody } } } },
    responses: {
      200: { description: "The open invoice of a single-use link, in the same currency", content: { "application/json": { schema: LinkInvoiceSchema } } },
      201: { description: "Created", content: { "application/json": { schema: LinkInvoiceSchema } } },
      ...problemResponses(400, 404, 409, 410, 413, 415, 422, 429, 503),
    },
  });
  app.openapi(use, async (c) => {
    const link = await loadLink(deps, undefined, c.req.valid("param").id);
    const body = c.req.valid("json");
    const verdict = perClient.take(clientAddress(c, deps.config.trustProxy));
    if (!verdict.ok) {
      throw new ProblemError("rate-limited", `Too many invoices created through payment links from this client address: retry after ${verdict.retryAfter} s.`, { retryAfter: verdict.retryAfter }, { "Retry-After": String(verdict.retryAfter) });
    }
    const result = await useLink(deps, link, body);
    return c.json(result.body, result.status);
  });

  return app;
}
