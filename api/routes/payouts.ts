/**
 * Payouts: every movement of money from the contracts to the merchant, newest first — releases of invoice
 * payments (with the protocol fee kept), withdrawals of subscription income, payouts that could not be delivered
 * and became claimable by the payout address, and the claims of those balances — each with its transaction.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { and, eq, sql } from "drizzle-orm";
import { getAddress, type Hex } from "viem";
import { currentMerchant, requireScope } from "../auth";
import { encodeCursor, requireCursor } from "../cursor";
import type { ApiDeps, AppEnv } from "../env";
import type { PayoutScope } from "../indexed";
import { onchainIdentities } from "../merchants/identity";
import { validationHook } from "../middleware";
import { formatAmount } from "../money";
import { BEARER, problemResponses, queryInteger } from "../schemas";
import { invoices } from "../store/schema";
import { isoFromSeconds } from "../subscriptions/ids";
import { tokenAt } from "../tokens";

const PayoutSchema = z
  .object({
    id: z.string(),
    chainId: z.number().int(),
    kind: z.enum(["release", "withdrawal", "deferred", "claimed"]).openapi({
      description:
        "release: an invoice payment paid out; withdrawal: subscription income paid out; deferred: a payout the address could not receive, now claimable by it; claimed: such a balance claimed",
    }),
    currency: z.string(),
    token: z.string(),
    amount: z.string().openapi({ description: "What reached (or became claimable by) the address, after the protocol fee" }),
    amountBaseUnits: z.string(),
    fee: z.string().openapi({ description: "Protocol fee kept by the escrow (releases)" }),
    feeBaseUnits: z.string(),
    to: z.string().openapi({ description: "The payout address (or a claim's destination)" }),
    invoiceId: z.string().nullable().openapi({ description: "The released invoice, when created through the API" }),
    invoiceKey: z.string().nullable(),
    paidAt: z.string().openapi({ description: "Block time of the transaction" }),
    blockNumber: z.string(),
    transactionHash: z.string(),
  })
  .openapi("Payout");

const ListPayoutsQuery = z.object({
  chainId: queryInteger(1, Number.MAX_SAFE_INTEGER).optional(),
  limit: queryInteger(1, 100).default(20),
  cursor: z.string().max(600).optional().openapi({ description: "nextCursor of the previous page" }),
});

export function payoutRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  const list = createRoute({
    method: "get",
    path: "/payouts",
    tags: ["Payouts"],
    summary: "Every release, withdrawal and claim that paid the merchant, newest first",
    description:
      "From the indexed chain, on every chain where the merchant is registered. Money reaches the payout address when an invoice is released (`POST /v1/invoices/{id}/release`, or by anyone once the hold is over) and when subscription income is withdrawn.",
    security: BEARER,
    middleware: [requireScope("statements:read")] as const,
    request: { query: ListPayoutsQuery },
    responses: {
      200: { description: "A page of payouts", content: { "application/json": { schema: z.object({ data: z.array(PayoutSchema), nextCursor: z.string().nullable() }) } } },
      ...problemResponses(401, 403, 422, 429),
    },
  });
  app.openapi(list, async (c) => {
    const merchant = currentMerchant(c);
    const query = c.req.valid("query");
    const cursor = query.cursor
      ? (([timestamp, id]) => ({ timestamp: BigInt(timestamp), id }))(requireCursor(query.cursor, 2, ([timestamp, id]) => /^\d{1,20}$/.test(timestamp) && id.length > 0 && id.length <= 200))
      : undefined;
    const identities = (await onchainIdentities(deps, merchant)).filter((identity) => query.chainId === undefined || identity.chain.id === query.chainId);
    const scopes: PayoutScope[] = await Promise.all(
      identities.map(async (identity) => ({
        ...identity.owner,
        payouts: [...new Set([identity.record.payout.toLowerCase() as Hex, ...(await deps.indexed.payoutAddresses(identity.owner))])],
      })),
    );
    const rows = await deps.indexed.payoutsPage(scopes, query.limit + 1, cursor);
    const page = rows.slice(0, query.limit);
    const keys = [...new Set(page.map((row) => row.invoiceKey).filter((key): key is Hex => key !== null))];
    const ids = new Map<string, string>();
    if (keys.length > 0) {
      const found = await deps.store.db
        .select({ id: invoices.id, key: invoices.invoiceKey, chainId: invoices.chainId })
        .from(invoices)
        .where(and(eq(invoices.merchantId, merchant.id), sql`${invoices.invoiceKey} = any(${sql.param(keys)}::text[])`));
      for (const row of found) ids.set(`${row.chainId}:${row.key.toLowerCase()}`, row.id);
    }
    const data = await Promise.all(
      page.map(async (row) => {
        const chain = deps.chains.get(row.chainId)!;
        const token = await tokenAt(chain, row.token);
        return {
          id: row.id,
          chainId: row.chainId,
          kind: row.kind,
          currency: token.symbol,
          token: token.address,
          amount: formatAmount(row.amount, token.decimals),
          amountBaseUnits: row.amount.toString(),
          fee: formatAmount(row.fee, token.decimals),
          feeBaseUnits: row.fee.toString(),
          to: getAddress(row.to),
          invoiceId: row.invoiceKey ? (ids.get(`${row.chainId}:${row.invoiceKey.toLowerCase()}`) ?? null) : null,
          invoiceKey: row.invoiceKey,
          paidAt: isoFromSeconds(row.timestamp),
          blockNumber: row.blockNumber.toString(),
          transactionHash: row.transactionHash,
        };
      }),
    );
    const last = page.at(-1);
    return c.json({ data, nextCursor: rows.length > query.limit && last ? encodeCursor([last.timestamp, last.id]) : null }, 200);
  });

  return app;
}
