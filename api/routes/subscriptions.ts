/**
 * Plans and subscriptions. Plans are created and changed on-chain with the merchant's operator key; the
 * response carries the ready transactions a subscriber's wallet sends to subscribe. Subscriptions and their
 * charges are read from the indexer; a merchant cancel goes on-chain and refunds the unearned part at once.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { currentMerchant, requireScope } from "../auth";
import { requireCursor, encodeCursor } from "../cursor";
import type { ApiDeps, AppEnv } from "../env";
import type { IndexedPlan, SubscriptionCursor } from "../indexed";
import { idempotent } from "../idempotency";
import { onchainIdentities, onchainIdentity, type Registration } from "../merchants/identity";
import { validationHook } from "../middleware";
import { formatAmount } from "../money";
import { problem } from "../problems";
import { AddressSchema, BEARER, DecimalAmountSchema, OptionalIdempotencyHeaders, problemResponses, queryInteger } from "../schemas";
import { cancelSubscription, readPlan } from "../subscriptions/chain";
import { isoFromSeconds, parsePlanId, parseSubscriptionId, subscriptionPublicId } from "../subscriptions/ids";
import { planPriceOf, planPricesOf, type PlanPriceRow } from "../subscriptions/fiat";
import { createPlanFor, MAX_PERIOD, MAX_TRIAL, updatePlanFor } from "../subscriptions/plans";
import {
  ChargeSchema,
  PlanSchema,
  SUBSCRIPTION_STATUSES,
  SubscriptionSchema,
  chargeViews,
  planFromIndexed,
  planView,
  subscriptionView,
  type PlanRecord,
} from "../subscriptions/views";
import { tokenAt } from "../tokens";

const invalid = (field: string, message: string) => problem.validation([{ field, message }]);

const CreatePlanBody = z
  .object({
    chainId: z.number().int().positive(),
    currency: z.string().trim().min(1).max(64).openapi({
      example: "USDC",
      description: "Token symbol or ERC-20 address (not ETH), or a fiat currency (USD, EUR, CNY) with `payCurrency`: the token price then follows the fiat price at the current rate",
    }),
    amount: DecimalAmountSchema.openapi({ description: "Price per period (in `currency`; a fiat price has at most two decimals)" }),
    payCurrency: z
      .string()
      .trim()
      .min(1)
      .max(64)
      .optional()
      .openapi({ example: "USDC", description: "With a fiat `currency`: the token subscribers pay in (ERC-20 only: not ETH, not BTC)" }),
    periodSeconds: z.number().int().min(1).max(MAX_PERIOD).openapi({ example: 2_592_000 }),
    trialSeconds: z.number().int().min(0).max(MAX_TRIAL).optional().openapi({ description: "Free trial before the first charge; default 0" }),
    gracePeriodSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_PERIOD)
      .optional()
      .openapi({ description: "How long failed renewals are retried before the subscription lapses; shorter than the period; default min(3 days, period − 1 s)" }),
  })
  .strict()
  .superRefine((body, context) => {
    if (body.gracePeriodSeconds !== undefined && body.gracePeriodSeconds >= body.periodSeconds) {
      context.addIssue({ code: "custom", path: ["gracePeriodSeconds"], message: "must be shorter than periodSeconds" });
    }
  })
  .openapi("CreatePlan");

const UpdatePlanBody = z
  .object({
    amount: DecimalAmountSchema.optional().openapi({ description: "New price, for periods that start from now on (a plan priced in fiat: the new fiat price, converted at the current rate)" }),
    active: z.boolean().optional().openapi({ description: "false closes the plan to new subscribers; existing ones continue" }),
  })
  .strict()
  .refine((body) => body.amount !== undefined || body.active !== undefined, { message: "give amount and/or active" })
  .openapi("UpdatePlan");

const PlanParams = z.object({ id: z.string().max(64).openapi({ example: "plan_31337_1" }) });
const SubscriptionParams = z.object({ id: z.string().max(64).openapi({ example: "sub_31337_1" }) });

const ListSubscriptionsQuery = z.object({
  status: z.enum(SUBSCRIPTION_STATUSES).optional(),
  subscriber: AddressSchema.optional(),
  planId: z.string().max(64).optional().openapi({ example: "plan_31337_1" }),
  chainId: queryInteger(1, Number.MAX_SAFE_INTEGER).optional(),
  limit: queryInteger(1, 100).default(20),
  cursor: z.string().max(600).optional().openapi({ description: "nextCursor of the previous page" }),
});

const CancelResultSchema = z
  .object({
    id: z.string(),
    status: z.literal("canceled"),
    transactionHash: z.string(),
    canceledAt: z.string(),
    currency: z.string(),
    refunded: z.string().openapi({ description: "Unearned part of the current period, sent back to the subscriber" }),
    refundedBaseUnits: z.string(),
    earned: z.string().openapi({ description: "Earned part of the current period, credited to the merchant" }),
    earnedBaseUnits: z.string(),
  })
  .openapi("SubscriptionCancellation");

export function subscriptionRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const optional = idempotent(deps.store.db, { required: false });

  /** Resolves a public plan id to the merchant's registration on its chain; 404 for anything not theirs. */
  async function planRegistration(c: Parameters<typeof currentMerchant>[0], id: string) {
    const ref = parsePlanId(id);
    const registration = ref && (await onchainIdentity(deps, currentMerchant(c), ref.chainId));
    if (!ref || !registration) throw problem.notFound(`Plan ${id}`);
    return { ref, registration };
  }

  async function subscriptionRegistration(c: Parameters<typeof currentMerchant>[0], id: string) {
    const ref = parseSubscriptionId(id);
    const registration = ref && (await onchainIdentity(deps, currentMerchant(c), ref.chainId));
    if (!ref || !registration) throw problem.notFound(`Subscription ${id}`);
    return { ref, registration };
  }

  /** The indexed subscription if it belongs to the merchant. */
  async function ownSubscription(registration: Registration, subscriptionId: bigint, id: string) {
    const row = await deps.indexed.subscription(registration.chain.id, subscriptionId);
    if (!row || row.merchantId !== registration.owner.merchantId) throw problem.notFound(`Subscription ${id}`);
    return row;
  }

  async function viewOfPlan(registration: Registration, plan: PlanRecord, fiat?: PlanPriceRow | null) {
    const priced = fiat === undefined ? await planPriceOf(deps, plan.chainId, plan.planId) : (fiat ?? undefined);
    return planView(registration.chain, plan, await tokenAt(registration.chain, plan.token), priced);
  }

  // ---------------------------------------------------------------------------------------------- plans

  const createPlanRoute = createRoute({
    method: "post",
    path: "/plans",
    tags: ["Subscriptions"],
    summary: "Create a plan (sent on-chain with the operator key)",
    description:
      "Sends `createPlan` from the merchant's operator key and waits for it to be mined. The response carries `subscribe.transactions`: what a subscriber's wallet sends (approve 12 periods, then subscribe). ERC-20 tokens only. A plan priced in fiat (`currency` USD, EUR or CNY with `payCurrency`) is created at the fiat price converted at the current rate (rounded up), and its token price follows the rate before renewals (docs/PRICES.md); its subscribe instructions cap the price at today's + 20%. Send an `Idempotency-Key` header to make retries safe.",
    security: BEARER,
    middleware: [requireScope("subscriptions:write"), optional] as const,
    request: {
      headers: OptionalIdempotencyHeaders,
      body: { required: true, content: { "application/json": { schema: CreatePlanBody } } },
    },
    responses: {
      201: { description: "Created", content: { "application/json": { schema: PlanSchema } } },
      ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429, 503),
    },
  });
  app.openapi(createPlanRoute, async (c) => c.json(await createPlanFor(deps, currentMerchant(c), c.req.valid("json"), c.get("requestId")), 201));

  const listPlans = createRoute({
    method: "get",
    path: "/plans",
    tags: ["Subscriptions"],
    summary: "List the merchant's plans on every chain",
    description: "Read from the indexer: a plan appears here once its creation is indexed (usually well under a second).",
    security: BEARER,
    middleware: [requireScope("subscriptions:read")] as const,
    request: {
      query: z.object({
        chainId: queryInteger(1, Number.MAX_SAFE_INTEGER).optional(),
        active: z.enum(["true", "false"]).optional(),
      }),
    },
    responses: {
      200: { description: "Plans, by chain then plan id", content: { "application/json": { schema: z.object({ data: z.array(PlanSchema) }) } } },
      ...problemResponses(401, 403, 422, 429),
    },
  });
  app.openapi(listPlans, async (c) => {
    const query = c.req.valid("query");
    const found = (await onchainIdentities(deps, currentMerchant(c))).filter(
      (registration) => query.chainId === undefined || registration.chain.id === query.chainId,
    );
    const data = [];
    const fiatPrices = await planPricesOf(deps, currentMerchant(c).id);
    for (const registration of found) {
      for (const row of await deps.indexed.plans(registration.owner)) {
        if (query.active !== undefined && String(row.active) !== query.active) continue;
        data.push(await viewOfPlan(registration, planFromIndexed(row), fiatPrices.get(`${row.chainId}:${row.planId}`) ?? null));
      }
    }
    return c.json({ data }, 200);
  });

  const getPlan = createRoute({
    method: "get",
    path: "/plans/{id}",
    tags: ["Subscriptions"],
    summary: "A plan",
    security: BEARER,
    middleware: [requireScope("subscriptions:read")] as const,
    request: { params: PlanParams },
    responses: {
      200: { description: "The plan", content: { "application/json": { schema: PlanSchema } } },
      ...problemResponses(401, 403, 404, 429),
    },
  });
  app.openapi(getPlan, async (c) => {
    const { id } = c.req.valid("param");
    const { ref, registration } = await planRegistration(c, id);
    const indexed: IndexedPlan | undefined = await deps.indexed.plan(ref.chainId, ref.planId);
    // Just created and not indexed yet: the contract has it already.
    const plan = indexed ? planFromIndexed(indexed) : await readPlan(registration.chain, ref.planId);
    if (!plan || plan.merchantId !== registration.owner.merchantId) throw problem.notFound(`Plan ${id}`);
    return c.json(await viewOfPlan(registration, plan), 200);
  });

  const updatePlanRoute = createRoute({
    method: "patch",
    path: "/plans/{id}",
    tags: ["Subscriptions"],
    summary: "Change a plan's price or availability (sent on-chain)",
    description:
      "`amount` sends setPlanPrice: it applies to periods that start from now on, and a renewal never charges more than a subscriber's maxPrice. `active: false` sends setPlanActive(false): no new subscribers, existing subscriptions continue. Unchanged fields send nothing.",
    security: BEARER,
    middleware: [requireScope("subscriptions:write"), optional] as const,
    request: { params: PlanParams, headers: OptionalIdempotencyHeaders, body: { required: true, content: { "application/json": { schema: UpdatePlanBody } } } },
    responses: {
      200: {
        description: "The plan as the contract holds it after the change",
        content: {
          "application/json": {
            schema: PlanSchema.extend({ updateTransactions: z.array(z.string()).openapi({ description: "Hashes of the transactions sent" }) }),
          },
        },
      },
      ...problemResponses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
    },
  });
  app.openapi(updatePlanRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { ref, registration } = await planRegistration(c, id);
    return c.json(await updatePlanFor(deps, currentMerchant(c), registration, { planId: ref.planId, publicId: id }, c.req.valid("json"), c.get("requestId")), 200);
  });

  // ---------------------------------------------------------------------------------------------- subscriptions

  const listSubscriptions = createRoute({
    method: "get",
    path: "/subscriptions",
    tags: ["Subscriptions"],
    summary: "List subscriptions to the merchant's plans",
    description: "Ordered by chain then subscription id; `nextCursor` fetches the next page (null on the last one).",
    security: BEARER,
    middleware: [requireScope("subscriptions:read")] as const,
    request: { query: ListSubscriptionsQuery },
    responses: {
      200: {
        description: "A page of subscriptions",
        content: { "application/json": { schema: z.object({ data: z.array(SubscriptionSchema), nextCursor: z.string().nullable() }) } },
      },
      ...problemResponses(401, 403, 422, 429),
    },
  });
  app.openapi(listSubscriptions, async (c) => {
    const query = c.req.valid("query");
    let chainId = query.chainId;
    let planId: number | undefined;
    if (query.planId !== undefined) {
      const ref = parsePlanId(query.planId);
      if (!ref) throw invalid("planId", "must be a plan id such as plan_31337_1");
      if (chainId !== undefined && chainId !== ref.chainId) throw invalid("planId", `is a plan of chain ${ref.chainId}, not ${chainId}`);
      chainId = ref.chainId;
      planId = ref.planId;
    }
    let cursor: SubscriptionCursor | undefined;
    if (query.cursor !== undefined) {
      const parts = requireCursor(query.cursor, 2, ([chain, subscription]) => /^\d{1,10}$/.test(chain) && /^\d{1,30}$/.test(subscription));
      cursor = { chainId: Number(parts[0]), subscriptionId: BigInt(parts[1]) };
    }
    const found = await onchainIdentities(deps, currentMerchant(c));
    const rows = await deps.indexed.subscriptionPage(
      found.map((registration) => registration.owner),
      { chainId, planId, status: query.status, subscriber: query.subscriber },
      query.limit + 1,
      cursor,
    );
    const page = rows.slice(0, query.limit);
    const plans = new Map<string, PlanRecord | undefined>();
    const data = [];
    for (const row of page) {
      const registration = found.find((candidate) => candidate.chain.id === row.chainId)!;
      const planKey = `${row.chainId}:${row.planId}`;
      if (!plans.has(planKey)) {
        const indexed = await deps.indexed.plan(row.chainId, row.planId);
        plans.set(planKey, indexed ? planFromIndexed(indexed) : undefined);
      }
      data.push(subscriptionView(row, plans.get(planKey), await tokenAt(registration.chain, row.token)));
    }
    const last = page.at(-1);
    const nextCursor = rows.length > query.limit && last ? encodeCursor([last.chainId, last.subscriptionId]) : null;
    return c.json({ data, nextCursor }, 200);
  });

  const getSubscription = createRoute({
    method: "get",
    path: "/subscriptions/{id}",
    tags: ["Subscriptions"],
    summary: "A subscription: status, current period, next charge",
    security: BEARER,
    middleware: [requireScope("subscriptions:read")] as const,
    request: { params: SubscriptionParams },
    responses: {
      200: { description: "The subscription", content: { "application/json": { schema: SubscriptionSchema } } },
      ...problemResponses(401, 403, 404, 429),
    },
  });
  app.openapi(getSubscription, async (c) => {
    const { id } = c.req.valid("param");
    const { ref, registration } = await subscriptionRegistration(c, id);
    const row = await ownSubscription(registration, ref.subscriptionId, id);
    const plan = await deps.indexed.plan(row.chainId, row.planId);
    return c.json(subscriptionView(row, plan && planFromIndexed(plan), await tokenAt(registration.chain, row.token)), 200);
  });

  const listCharges = createRoute({
    method: "get",
    path: "/subscriptions/{id}/charges",
    tags: ["Subscriptions"],
    summary: "Every period charged on a subscription, oldest first",
    security: BEARER,
    middleware: [requireScope("subscriptions:read")] as const,
    request: { params: SubscriptionParams },
    responses: {
      200: { description: "Charges", content: { "application/json": { schema: z.object({ data: z.array(ChargeSchema) }) } } },
      ...problemResponses(401, 403, 404, 429),
    },
  });
  app.openapi(listCharges, async (c) => {
    const { id } = c.req.valid("param");
    const { ref, registration } = await subscriptionRegistration(c, id);
    const row = await ownSubscription(registration, ref.subscriptionId, id);
    const token = await tokenAt(registration.chain, row.token);
    const charges = await deps.indexed.charges(row.chainId, row.subscriptionId);
    return c.json({ data: chargeViews(charges, token) }, 200);
  });

  const cancelRoute = createRoute({
    method: "post",
    path: "/subscriptions/{id}/cancel",
    tags: ["Subscriptions"],
    summary: "Cancel a subscription (sent on-chain with the operator key)",
    description:
      "Stops renewals and, in the same transaction, refunds the unearned part of the current period to the subscriber (rounded in the subscriber's favour). 202: the transaction is mined; the subscription shows `canceled` once indexed.",
    security: BEARER,
    middleware: [requireScope("subscriptions:write"), optional] as const,
    request: { params: SubscriptionParams, headers: OptionalIdempotencyHeaders },
    responses: {
      202: { description: "Canceled on-chain", content: { "application/json": { schema: CancelResultSchema } } },
      ...problemResponses(400, 401, 403, 404, 409, 429, 503),
    },
  });
  app.openapi(cancelRoute, async (c) => {
    const { id } = c.req.valid("param");
    const { ref, registration } = await subscriptionRegistration(c, id);
    const result = await cancelSubscription(deps, currentMerchant(c), registration, ref.subscriptionId, id, c.get("requestId"));
    const token = await tokenAt(registration.chain, result.token);
    return c.json(
      {
        id: subscriptionPublicId(registration.chain.id, ref.subscriptionId),
        status: "canceled" as const,
        transactionHash: result.transactionHash,
        canceledAt: isoFromSeconds(result.canceledAt),
        currency: token.symbol,
        refunded: formatAmount(result.refunded, token.decimals),
        refundedBaseUnits: result.refunded.toString(),
        earned: formatAmount(result.earned, token.decimals),
        earnedBaseUnits: result.earned.toString(),
      },
      202,
    );
  });

  return app;
}
