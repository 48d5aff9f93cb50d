/**
 * `GET /v1/keeper/work` (admin key): what a keeper should send now on a chain (see api/keeper/work.ts). The
 * keeper process (`npm run keeper`) asks for it, simulates each call and sends it with its own key; the API never
 * holds the keeper's key.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { requireAdmin } from "../auth";
import type { ApiDeps, AppEnv } from "../env";
import { keeperWork } from "../keeper/work";
import { validationHook } from "../middleware";
import { problem } from "../problems";
import { BEARER, problemResponses, queryInteger } from "../schemas";

const TermsSchema = z.record(z.string(), z.union([z.string(), z.number()])).openapi({ description: "The signed invoice terms (integers as strings)" });
const InvoiceWorkSchema = z.object({ invoiceId: z.string(), contract: z.string(), terms: TermsSchema, reason: z.string() });

const KeeperWorkSchema = z
  .object({
    chainId: z.number().int(),
    now: z.string().openapi({ description: "The chain's time the work was computed for" }),
    releases: z.array(InvoiceWorkSchema).openapi({ description: "BillingEscrow.release(terms)" }),
    unfulfilledRefunds: z.array(InvoiceWorkSchema).openapi({ description: "BillingEscrow.refundUnfulfilled(terms)" }),
    expiredDisputeRefunds: z.array(InvoiceWorkSchema).openapi({ description: "BillingEscrow.refundExpiredDispute(terms)" }),
    renewals: z.object({ contract: z.string(), subscriptionIds: z.array(z.string()) }).openapi({ description: "SubscriptionManager.renew(ids), in batches" }),
    withdrawals: z
      .array(z.object({ contract: z.string(), merchantId: z.string(), token: z.string(), subscriptionIds: z.array(z.string()), reason: z.string() }))
      .openapi({ description: "SubscriptionManager.withdraw(merchantId, token, ids): subscription income to the payout address, on each merchant's schedule" }),
    depositSweeps: z
      .array(InvoiceWorkSchema.extend({ signature: z.string() }))
      .openapi({ description: "BillingEscrow.sweepDeposit(terms, signature): deposit addresses holding at least the amount of a payable invoice" }),
    depositReturns: z
      .array(InvoiceWorkSchema)
      .openapi({ description: "BillingEscrow.returnDeposit(terms): money at a deposit address (or an excess held) that the invoice can no longer take, with a refund address known" }),
  })
  .openapi("KeeperWork");

export function keeperRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const route = createRoute({
    method: "get",
    path: "/keeper/work",
    tags: ["Keeper"],
    summary: "What a keeper should send now on a chain (admin key)",
    description:
      "Releases whose hold is over, automatic refunds (missed fulfillBy, expired disputes), due renewals and scheduled payouts of subscription income, from the indexed chain (see the Chainbill-Indexed header). Every call is one anyone may make; simulate before sending.",
    security: BEARER,
    middleware: [requireAdmin] as const,
    request: { query: z.object({ chainId: queryInteger(1, Number.MAX_SAFE_INTEGER), limit: queryInteger(1, 200).default(50) }) },
    responses: {
      200: { description: "The work", content: { "application/json": { schema: KeeperWorkSchema } } },
      ...problemResponses(401, 403, 422, 429),
    },
  });
  app.openapi(route, async (c) => {
    const { chainId, limit } = c.req.valid("query");
    const chain = deps.chains.get(chainId);
    if (!chain) throw problem.validation([{ field: "chainId", message: `is not a chain this API serves (it serves ${[...deps.chains.keys()].join(", ")})` }]);
    return c.json(await keeperWork(deps, chain, limit), 200);
  });
  return app;
}
