/**
 * The customer's side of a refund link (no API key; the token is the credential, api/bitcoin/refund-links.ts):
 * what the link is about, and setting the refund address of a BTC invoice — refused once a refund was prepared.
 * Served outside /v1 with the same input guards and per-client rate limit as the API.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { appendAudit } from "../audit";
import type { ApiDeps, AppEnv } from "../env";
import { validationHook } from "../middleware";
import { formatAmount } from "../money";
import { ProblemError, problem } from "../problems";
import { problemResponses } from "../schemas";
import { btcInvoices, btcRefunds, merchants } from "../store/schema";
import { BTC_DECIMALS } from "../bitcoin/invoices";
import { readRefundLinkToken } from "../bitcoin/refund-links";
import { setRefundAddress } from "../bitcoin/refunds";
import { CAIP2 } from "../bitcoin/wallets";
import type { BitcoinNetwork } from "../bitcoin/keys";

const TokenParams = z.object({ token: z.string().min(1).max(300).openapi({ param: { name: "token", in: "path" } }) });

const RefundLinkView = z
  .object({
    invoiceId: z.string(),
    merchant: z.string().openapi({ description: "The merchant's display name" }),
    description: z.string().nullable(),
    amount: z.string(),
    currency: z.literal("BTC"),
    network: z.string(),
    networkName: z.string().openapi({ description: "The address must be of this network (mainnet: bc1…, 1…, 3…)" }),
    refundAddress: z.string().nullable(),
    changeable: z.boolean().openapi({ description: "False once a refund was prepared for the address on file" }),
    expiresAt: z.string(),
  })
  .openapi("RefundLinkView");

export function refundLinkRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  async function resolve(token: string) {
    const read = readRefundLinkToken(deps.config.operatorKeySecret, token, Math.floor(Date.now() / 1000));
    if ("error" in read) {
      throw new ProblemError("refund-link-invalid", read.error === "expired" ? "This refund link has expired: ask the merchant for a new one." : "This is not a refund link the merchant issued.");
    }
    const [row] = await deps.store.db.select().from(btcInvoices).where(eq(btcInvoices.id, read.invoiceId)).limit(1);
    if (!row) throw new ProblemError("refund-link-invalid", "This is not a refund link the merchant issued.");
    const [merchant] = await deps.store.db.select({ name: merchants.name }).from(merchants).where(eq(merchants.id, row.merchantId)).limit(1);
    const prepared = await deps.store.db.select({ id: btcRefunds.id }).from(btcRefunds).where(eq(btcRefunds.invoiceId, row.id)).limit(1);
    const view = {
      invoiceId: row.id,
      merchant: merchant?.name ?? "",
      description: row.description,
      amount: formatAmount(row.amountSats, BTC_DECIMALS),
      currency: "BTC" as const,
      network: CAIP2[row.network as BitcoinNetwork],
      networkName: row.network,
      refundAddress: row.refundAddress,
      changeable: prepared.length === 0,
      expiresAt: new Date(read.expiresAt * 1000).toISOString(),
    };
    return { row, view };
  }

  const get = createRoute({
    method: "get",
    path: "/refund-links/{token}",
    tags: ["Bitcoin"],
    summary: "What a refund link is about (for the customer; no API key)",
    request: { params: TokenParams },
    responses: { 200: { description: "The invoice, as the customer may see it", content: { "application/json": { schema: RefundLinkView } } }, ...problemResponses(404, 429) },
  });
  app.openapi(get, async (c) => c.json((await resolve(c.req.valid("param").token)).view, 200));

  const put = createRoute({
    method: "put",
    path: "/refund-links/{token}",
    tags: ["Bitcoin"],
    summary: "Set the refund address through a refund link (for the customer; no API key)",
    request: {
      params: TokenParams,
      body: { required: true, content: { "application/json": { schema: z.object({ address: z.string().min(1).max(100) }).strict().openapi("RefundLinkAddress") } } },
    },
    responses: { 200: { description: "Saved", content: { "application/json": { schema: RefundLinkView } } }, ...problemResponses(400, 404, 409, 415, 422, 429) },
  });
  app.openapi(put, async (c) => {
    const { row, view } = await resolve(c.req.valid("param").token);
    if (!view.changeable) throw problem.conflict("refund-address-locked", "A refund was already prepared for the address on file; ask the merchant to change it.");
    const address = c.req.valid("json").address;
    await setRefundAddress(deps.store.db, row.network as BitcoinNetwork, row, address);
    await appendAudit(deps.store.db, {
      merchantId: row.merchantId,
      actor: "customer",
      requestId: c.get("requestId") ?? null,
      action: "invoice.refund_address.set",
      target: row.id,
      details: { address, via: "refund link" },
    });
    return c.json({ ...view, refundAddress: address }, 200);
  });

  return app;
}
