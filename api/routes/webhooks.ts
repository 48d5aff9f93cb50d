/**
 * Webhook endpoints and events.
 *
 * - `/webhook-endpoints`: a merchant's endpoints (at most `MAX_ENDPOINTS`), each with event filters and a
 *   `whsec_` signing secret shown at creation and rotation only; rotation keeps the previous secret signing
 *   beside the new one for an overlap window. Endpoint URLs must be public https URLs unless the server allows
 *   private ones (WEBHOOK_ALLOW_PRIVATE_URLS, local development).
 * - the delivery log (`/webhook-endpoints/{id}/attempts`: every attempt with its status, latency and answer),
 *   deliveries per event, and redelivery of one event or of every failed delivery of an endpoint.
 * - `/events`: the same events for merchants who poll, oldest first after a cursor.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { and, asc, count, desc, eq, gt, isNull, lt, sql } from "drizzle-orm";
import { currentMerchant, newId, requireScope } from "../auth";
import { encodeCursor, requireCursor } from "../cursor";
import type { ApiDeps, AppEnv } from "../env";
import { idempotent } from "../idempotency";
import { validationHook } from "../middleware";
import { problem } from "../problems";
import { BEARER, OptionalIdempotencyHeaders, problemResponses, queryInteger } from "../schemas";
import { webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from "../store/schema";
import { EVENT_TYPES } from "../webhooks/events";
import { newSigningSecret, sealSecret } from "../webhooks/secrets";
import { endpointUrlProblem } from "../webhooks/send";

/** Endpoints a merchant may have at once. */
export const MAX_ENDPOINTS = 16;
/** Events appear in GET /v1/events this long after they are stored, so a cursor never skips one still committing. */
const EVENT_VISIBILITY_LAG_MS = 2_000;

type EndpointRow = typeof webhookEndpoints.$inferSelect;

const EventTypeSchema = z.enum(EVENT_TYPES);

const EndpointSchema = z
  .object({
    id: z.string(),
    url: z.string(),
    description: z.string().nullable(),
    events: z.array(EventTypeSchema).openapi({ description: "Event types delivered; empty: every type" }),
    enabled: z.boolean(),
    disabledAt: z.string().nullable(),
    disabledReason: z.string().nullable().openapi({ description: "Why the endpoint was disabled (after a long run of failures, or by the merchant)" }),
    failingSince: z.string().nullable().openapi({ description: "Start of the current run of failed attempts" }),
    consecutiveFailures: z.number().int(),
    previousSecretValidUntil: z.string().nullable().openapi({ description: "After a rotation: until when the previous secret still signs too" }),
    expiresAt: z.string().nullable().openapi({ description: "Temporary endpoints (npm run listen) stop receiving then" }),
    createdAt: z.string(),
  })
  .openapi("WebhookEndpoint");

const EndpointWithSecretSchema = EndpointSchema.extend({
  secret: z.string().openapi({ description: "The `whsec_…` signing secret. Shown only now: store it." }),
}).openapi("WebhookEndpointWithSecret");

const EventSchema = z
  .object({
    id: z.string().openapi({ description: "Also the `webhook-id` of every delivery of this event" }),
    type: EventTypeSchema,
    timestamp: z.string().openapi({ description: "When it happened (the block's time for chain events)" }),
    data: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    reverted: z.boolean().openapi({ description: "The block that carried it left the chain (a reorg)" }),
  })
  .openapi("Event");

const AttemptSchema = z
  .object({
    id: z.string(),
    eventId: z.string(),
    eventType: z.string(),
    attempt: z.number().int(),
    statusCode: z.number().int().nullable(),
    latencyMs: z.number().int(),
    responseExcerpt: z.string().nullable().openapi({ description: "First 512 bytes of the answer" }),
    error: z.string().nullable(),
    attemptedAt: z.string(),
  })
  .openapi("WebhookAttempt");

const DeliverySchema = z
  .object({
    endpointId: z.string(),
    eventId: z.string(),
    status: z.enum(["pending", "succeeded", "failed"]),
    attempts: z.number().int(),
    nextAttemptAt: z.string().nullable(),
    lastStatusCode: z.number().int().nullable(),
    lastError: z.string().nullable(),
  })
  .openapi("WebhookDelivery");

const EndpointBody = z
  .object({
    url: z.string().max(2_048).openapi({ example: "https://example.com/webhooks/chainbill" }),
    description: z.string().trim().max(500).optional(),
    events: z
      .array(EventTypeSchema)
      .max(EVENT_TYPES.length)
      .refine((types) => new Set(types).size === types.length, { message: "lists an event type twice" })
      .optional()
      .openapi({ description: "Event types to deliver; omitted or empty: every type" }),
    temporarySeconds: z.number().int().min(60).max(86_400).optional().openapi({ description: "A temporary endpoint (npm run listen): stops receiving after this many seconds" }),
  })
  .strict()
  .openapi("CreateWebhookEndpoint");

const UpdateEndpointBody = z
  .object({
    url: EndpointBody.shape.url.optional(),
    description: z.string().trim().max(500).nullable().optional(),
    events: EndpointBody.shape.events,
    enabled: z.boolean().optional().openapi({ description: "true re-enables a disabled endpoint (its failure count starts again); false disables it" }),
  })
  .strict()
  .openapi("UpdateWebhookEndpoint");

const RotateBody = z
  .object({
    overlapSeconds: z.number().int().min(0).max(7 * 86_400).optional().openapi({ description: "How long the previous secret keeps signing beside the new one (0: stops at once)" }),
  })
  .strict();

const IdParam = z.object({ id: z.string().min(1).max(64) });
const PageQuery = z.object({
  limit: queryInteger(1, 100).default(20),
  cursor: z.string().max(600).optional().openapi({ description: "nextCursor of the previous page" }),
});

const iso = (date: Date | null) => (date ? date.toISOString() : null);

function endpointView(row: EndpointRow) {
  const now = Date.now();
  return {
    id: row.id,
    url: row.url,
    description: row.description,
    events: row.eventTypes as z.infer<typeof EventTypeSchema>[],
    enabled: row.disabledAt === null,
    disabledAt: iso(row.disabledAt),
    disabledReason: row.disabledReason,
    failingSince: iso(row.failingSince),
    consecutiveFailures: row.consecutiveFailures,
    previousSecretValidUntil: row.previousSecretExpiresAt && row.previousSecretExpiresAt.getTime() > now ? row.previousSecretExpiresAt.toISOString() : null,
    expiresAt: iso(row.expiresAt),
    createdAt: row.createdAt.toISOString(),
  };
}

function eventView(row: typeof webhookEvents.$inferSelect) {
  const payload = row.payload as { timestamp: string; data: Record<string, unknown> };
  return {
    id: row.id,
    type: row.type as z.infer<typeof EventTypeSchema>,
    timestamp: payload.timestamp,
    data: payload.data,
    createdAt: row.createdAt.toISOString(),
    reverted: row.revertedAt !== null,
  };
}

export function webhookRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const db = deps.store.db;
  const optional = idempotent(db, { required: false });
  const allowPrivate = deps.config.webhooks.allowPrivateUrls;

  async function checkUrl(url: string) {
    const reason = await endpointUrlProblem(url, allowPrivate);
    if (reason) throw problem.validation([{ field: "url", message: reason }]);
  }

  async function loadEndpoint(merchantId: string, id: string): Promise<EndpointRow> {
    const [row] = await db
      .select()
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.merchantId, merchantId)))
      .limit(1);
    if (!row) throw problem.notFound(`Webhook endpoint ${id}`);
    return row;
  }

  const create = createRoute({
    method: "post",
    path: "/webhook-endpoints",
    tags: ["Webhooks"],
    summary: "Add a webhook endpoint (its signing secret is shown once)",
    description: `Events are signed per Standard Webhooks (\`webhook-id\`, \`webhook-timestamp\`, \`webhook-signature\`) and delivered at least once, retried for about three days. At most ${MAX_ENDPOINTS} endpoints per merchant. The URL must be public https unless the server allows private addresses (local development); redirects are never followed.`,
    security: BEARER,
    middleware: [requireScope("webhooks:write"), optional] as const,
    request: { headers: OptionalIdempotencyHeaders, body: { required: true, content: { "application/json": { schema: EndpointBody } } } },
    responses: {
      201: { description: "Created", content: { "application/json": { schema: EndpointWithSecretSchema } } },
      ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429),
    },
  });
  app.openapi(create, async (c) => {
    const merchant = currentMerchant(c);
    const body = c.req.valid("json");
    await checkUrl(body.url);
    const secret = newSigningSecret();
    const row = await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`endpoints:${merchant.id}`}))`);
      const [{ active }] = await tx.select({ active: count() }).from(webhookEndpoints).where(eq(webhookEndpoints.merchantId, merchant.id));
      if (active >= MAX_ENDPOINTS) {
        throw problem.conflict("webhook-endpoint-limit", `This merchant already has ${active} webhook endpoints (at most ${MAX_ENDPOINTS}): delete one first.`, { limit: MAX_ENDPOINTS });
      }
      const [inserted] = await tx
        .insert(webhookEndpoints)
        .values({
          id: newId("we"),
          merchantId: merchant.id,
          url: body.url,
          description: body.description ?? null,
          eventTypes: body.events ?? [],
          secretEncrypted: sealSecret(secret, deps.config.operatorKeySecret),
          expiresAt: body.temporarySeconds ? new Date(Date.now() + body.temporarySeconds * 1000) : null,
        })
        .returning();
      return inserted;
    });
    return c.json({ ...endpointView(row), secret }, 201);
  });

  const list = createRoute({
    method: "get",
    path: "/webhook-endpoints",
    tags: ["Webhooks"],
    summary: "List webhook endpoints (never their secrets)",
    security: BEARER,
    middleware: [requireScope("webhooks:read")] as const,
    responses: {
      200: { description: "Endpoints", content: { "application/json": { schema: z.object({ data: z.array(EndpointSchema) }) } } },
      ...problemResponses(401, 403, 429),
    },
  });
  app.openapi(list, async (c) => {
    const rows = await db.select().from(webhookEndpoints).where(eq(webhookEndpoints.merchantId, currentMerchant(c).id)).orderBy(asc(webhookEndpoints.createdAt));
    return c.json({ data: rows.map(endpointView) }, 200);
  });

  const get = createRoute({
    method: "get",
    path: "/webhook-endpoints/{id}",
    tags: ["Webhooks"],
    summary: "One webhook endpoint",
    security: BEARER,
    middleware: [requireScope("webhooks:read")] as const,
    request: { params: IdParam },
    responses: { 200: { description: "The endpoint", content: { "application/json": { schema: EndpointSchema } } }, ...problemResponses(401, 403, 404, 429) },
  });
  app.openapi(get, async (c) => c.json(endpointView(await loadEndpoint(currentMerchant(c).id, c.req.valid("param").id)), 200));

  const update = createRoute({
    method: "patch",
    path: "/webhook-endpoints/{id}",
    tags: ["Webhooks"],
    summary: "Change an endpoint's URL, description or events; enable or disable it",
    security: BEARER,
    middleware: [requireScope("webhooks:write"), optional] as const,
    request: { params: IdParam, headers: OptionalIdempotencyHeaders, body: { required: true, content: { "application/json": { schema: UpdateEndpointBody } } } },
    responses: { 200: { description: "The endpoint", content: { "application/json": { schema: EndpointSchema } } }, ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429) },
  });
  app.openapi(update, async (c) => {
    const merchant = currentMerchant(c);
    const { id } = c.req.valid("param");
    const body = c.req.valid("json");
    await loadEndpoint(merchant.id, id);
    if (body.url !== undefined) await checkUrl(body.url);
    const changes: Partial<typeof webhookEndpoints.$inferInsert> = {};
    if (body.url !== undefined) changes.url = body.url;
    if (body.description !== undefined) changes.description = body.description;
    if (body.events !== undefined) changes.eventTypes = body.events;
    if (body.enabled === true) Object.assign(changes, { disabledAt: null, disabledReason: null, failingSince: null, consecutiveFailures: 0 });
    if (body.enabled === false) Object.assign(changes, { disabledAt: new Date(), disabledReason: "disabled by the merchant" });
    const [row] = Object.keys(changes).length
      ? await db.update(webhookEndpoints).set(changes).where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.merchantId, merchant.id))).returning()
      : [await loadEndpoint(merchant.id, id)];
    if (body.enabled === true) deps.webhooks?.wake();
    return c.json(endpointView(row), 200);
  });

  const remove = createRoute({
    method: "delete",
    path: "/webhook-endpoints/{id}",
    tags: ["Webhooks"],
    summary: "Delete an endpoint (its pending deliveries are dropped)",
    security: BEARER,
    middleware: [requireScope("webhooks:write"), optional] as const,
    request: { params: IdParam, headers: OptionalIdempotencyHeaders },
    responses: { 204: { description: "Deleted" }, ...problemResponses(401, 403, 404, 429) },
  });
  app.openapi(remove, async (c) => {
    const merchant = currentMerchant(c);
    const { id } = c.req.valid("param");
    await db.transaction(async (tx) => {
      const deleted = await tx.delete(webhookEndpoints).where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.merchantId, merchant.id))).returning({ id: webhookEndpoints.id });
      if (deleted.length === 0) throw problem.notFound(`Webhook endpoint ${id}`);
      await tx
        .update(webhookDeliveries)
        .set({ status: "failed", lastError: "endpoint deleted", completedAt: new Date() })
        .where(and(eq(webhookDeliveries.endpointId, id), eq(webhookDeliveries.status, "pending")));
    });
    return c.body(null, 204);
  });

  const rotate = createRoute({
    method: "post",
    path: "/webhook-endpoints/{id}/rotate-secret",
    tags: ["Webhooks"],
    summary: "Rotate the signing secret (both secrets sign during the overlap)",
    description:
      "During the overlap every delivery carries two signatures in `webhook-signature` (space-separated), one per secret, so a receiver verifying with either secret accepts it: deploy the new secret, then let the old one lapse.",
    security: BEARER,
    middleware: [requireScope("webhooks:write"), optional] as const,
    request: { params: IdParam, headers: OptionalIdempotencyHeaders, body: { required: false, content: { "application/json": { schema: RotateBody } } } },
    responses: { 200: { description: "The new secret", content: { "application/json": { schema: EndpointWithSecretSchema } } }, ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429) },
  });
  app.openapi(rotate, async (c) => {
    const merchant = currentMerchant(c);
    const { id } = c.req.valid("param");
    const overlapSeconds = (c.req.valid("json") as z.infer<typeof RotateBody> | undefined)?.overlapSeconds ?? 86_400;
    const current = await loadEndpoint(merchant.id, id);
    const secret = newSigningSecret();
    const [row] = await db
      .update(webhookEndpoints)
      .set({
        secretEncrypted: sealSecret(secret, deps.config.operatorKeySecret),
        previousSecretEncrypted: overlapSeconds > 0 ? current.secretEncrypted : null,
        previousSecretExpiresAt: overlapSeconds > 0 ? new Date(Date.now() + overlapSeconds * 1000) : null,
      })
      .where(and(eq(webhookEndpoints.id, id), eq(webhookEndpoints.merchantId, merchant.id)))
      .returning();
    return c.json({ ...endpointView(row), secret }, 200);
  });

  const attempts = createRoute({
    method: "get",
    path: "/webhook-endpoints/{id}/attempts",
    tags: ["Webhooks"],
    summary: "The endpoint's delivery log: every attempt, newest first",
    security: BEARER,
    middleware: [requireScope("webhooks:read")] as const,
    request: { params: IdParam, query: PageQuery.extend({ eventId: z.string().max(64).optional() }) },
    responses: {
      200: { description: "Attempts", content: { "application/json": { schema: z.object({ data: z.array(AttemptSchema), nextCursor: z.string().nullable() }) } } },
      ...problemResponses(401, 403, 404, 422, 429),
    },
  });
  app.openapi(attempts, async (c) => {
    const merchant = currentMerchant(c);
    const { id } = c.req.valid("param");
    const query = c.req.valid("query");
    await loadEndpoint(merchant.id, id);
    const before = query.cursor ? Number(requireCursor(query.cursor, 1, ([value]) => /^\d{1,18}$/.test(value))[0]) : undefined;
    const rows = await db
      .select({ attempt: webhookAttempts, type: webhookEvents.type })
      .from(webhookAttempts)
      .innerJoin(webhookEvents, eq(webhookEvents.id, webhookAttempts.eventId))
      .where(and(eq(webhookAttempts.endpointId, id), before === undefined ? sql`true` : lt(webhookAttempts.id, before), query.eventId ? eq(webhookAttempts.eventId, query.eventId) : sql`true`))
      .orderBy(desc(webhookAttempts.id))
      .limit(query.limit + 1);
    const page = rows.slice(0, query.limit);
    return c.json(
      {
        data: page.map(({ attempt, type }) => ({
          id: String(attempt.id),
          eventId: attempt.eventId,
          eventType: type,
          attempt: attempt.attempt,
          statusCode: attempt.statusCode,
          latencyMs: attempt.latencyMs,
          responseExcerpt: attempt.responseExcerpt,
          error: attempt.error,
          attemptedAt: attempt.attemptedAt.toISOString(),
        })),
        nextCursor: rows.length > query.limit ? encodeCursor([page.at(-1)!.attempt.id]) : null,
      },
      200,
    );
  });

  const deliveries = createRoute({
    method: "get",
    path: "/webhook-endpoints/{id}/deliveries",
    tags: ["Webhooks"],
    summary: "The endpoint's deliveries (one per event), newest first, optionally by status",
    security: BEARER,
    middleware: [requireScope("webhooks:read")] as const,
    request: { params: IdParam, query: PageQuery.extend({ status: z.enum(["pending", "succeeded", "failed"]).optional() }) },
    responses: {
      200: { description: "Deliveries", content: { "application/json": { schema: z.object({ data: z.array(DeliverySchema), nextCursor: z.string().nullable() }) } } },
      ...problemResponses(401, 403, 404, 422, 429),
    },
  });
  app.openapi(deliveries, async (c) => {
    const merchant = currentMerchant(c);
    const { id } = c.req.valid("param");
    const query = c.req.valid("query");
    await loadEndpoint(merchant.id, id);
    const before = query.cursor ? Number(requireCursor(query.cursor, 1, ([value]) => /^\d{1,18}$/.test(value))[0]) : undefined;
    const rows = await db
      .select()
      .from(webhookDeliveries)
      .where(and(eq(webhookDeliveries.endpointId, id), query.status ? eq(webhookDeliveries.status, query.status) : sql`true`, before === undefined ? sql`true` : lt(webhookDeliveries.id, before)))
      .orderBy(desc(webhookDeliveries.id))
      .limit(query.limit + 1);
    const page = rows.slice(0, query.limit);
    return c.json({ data: page.map(deliveryView), nextCursor: rows.length > query.limit ? encodeCursor([page.at(-1)!.id]) : null }, 200);
  });

  const redeliverFailed = createRoute({
    method: "post",
    path: "/webhook-endpoints/{id}/redeliver",
    tags: ["Webhooks"],
    summary: "Send every failed delivery of the endpoint again",
    description: "Failed deliveries start a new retry schedule, in their original order. Those of a disabled endpoint wait until it is enabled again (PATCH `enabled: true`). Events that happened while it was disabled were not queued for it: catch up with GET /v1/events, or redeliver them one by one.",
    security: BEARER,
    middleware: [requireScope("webhooks:write"), optional] as const,
    request: { params: IdParam, headers: OptionalIdempotencyHeaders },
    responses: {
      202: { description: "Queued", content: { "application/json": { schema: z.object({ requeued: z.number().int() }) } } },
      ...problemResponses(401, 403, 404, 429),
    },
  });
  app.openapi(redeliverFailed, async (c) => {
    const merchant = currentMerchant(c);
    const { id } = c.req.valid("param");
    await loadEndpoint(merchant.id, id);
    const requeued = await db
      .update(webhookDeliveries)
      .set({ status: "pending", attempts: 0, nextAttemptAt: new Date(), lockedUntil: null, completedAt: null })
      .where(and(eq(webhookDeliveries.endpointId, id), eq(webhookDeliveries.status, "failed")))
      .returning({ id: webhookDeliveries.id });
    deps.webhooks?.wake();
    return c.json({ requeued: requeued.length }, 202);
  });

  const listEvents = createRoute({
    method: "get",
    path: "/events",
    tags: ["Webhooks"],
    summary: "The merchant's events, oldest first after a cursor (poll to catch up)",
    description: `The same events the webhooks deliver. Keep the last \`nextCursor\` and pass it as \`after\` to get only newer events; an empty page keeps the cursor. Events appear here ${EVENT_VISIBILITY_LAG_MS / 1000} s after they are stored, so a cursor never skips one.`,
    security: BEARER,
    middleware: [requireScope("webhooks:read")] as const,
    request: {
      query: z.object({
        after: z.string().max(600).optional().openapi({ description: "nextCursor of the previous page" }),
        type: EventTypeSchema.optional(),
        limit: queryInteger(1, 100).default(50),
      }),
    },
    responses: {
      200: {
        description: "Events",
        content: { "application/json": { schema: z.object({ data: z.array(EventSchema), nextCursor: z.string().nullable(), hasMore: z.boolean() }) } },
      },
      ...problemResponses(401, 403, 422, 429),
    },
  });
  app.openapi(listEvents, async (c) => {
    const merchant = currentMerchant(c);
    const query = c.req.valid("query");
    const after = query.after ? Number(requireCursor(query.after, 1, ([value]) => /^\d{1,18}$/.test(value))[0]) : 0;
    const visibleBefore = new Date(Date.now() - EVENT_VISIBILITY_LAG_MS);
    const rows = await db
      .select()
      .from(webhookEvents)
      .where(
        and(
          eq(webhookEvents.merchantId, merchant.id),
          gt(webhookEvents.sequence, after),
          lt(webhookEvents.createdAt, visibleBefore),
          query.type ? eq(webhookEvents.type, query.type) : sql`true`,
        ),
      )
      .orderBy(asc(webhookEvents.sequence))
      .limit(query.limit + 1);
    const page = rows.slice(0, query.limit);
    const last = page.at(-1);
    return c.json(
      { data: page.map(eventView), nextCursor: last ? encodeCursor([last.sequence]) : (query.after ?? null), hasMore: rows.length > query.limit },
      200,
    );
  });

  const getEvent = createRoute({
    method: "get",
    path: "/events/{id}",
    tags: ["Webhooks"],
    summary: "One event, with its deliveries",
    security: BEARER,
    middleware: [requireScope("webhooks:read")] as const,
    request: { params: IdParam },
    responses: {
      200: { description: "The event", content: { "application/json": { schema: EventSchema.extend({ deliveries: z.array(DeliverySchema) }) } } },
      ...problemResponses(401, 403, 404, 429),
    },
  });
  app.openapi(getEvent, async (c) => {
    const merchant = currentMerchant(c);
    const row = await loadEvent(merchant.id, c.req.valid("param").id);
    const rows = await db.select().from(webhookDeliveries).where(eq(webhookDeliveries.eventId, row.id)).orderBy(asc(webhookDeliveries.id));
    return c.json({ ...eventView(row), deliveries: rows.map(deliveryView) }, 200);
  });

  const redeliverEvent = createRoute({
    method: "post",
    path: "/events/{id}/redeliver",
    tags: ["Webhooks"],
    summary: "Send one event again (to one endpoint, or to every enabled endpoint that takes its type)",
    security: BEARER,
    middleware: [requireScope("webhooks:write"), optional] as const,
    request: {
      params: IdParam,
      headers: OptionalIdempotencyHeaders,
      body: { required: false, content: { "application/json": { schema: z.object({ endpointId: z.string().max(64).optional() }).strict() } } },
    },
    responses: {
      202: { description: "Queued", content: { "application/json": { schema: z.object({ requeued: z.number().int() }) } } },
      ...problemResponses(400, 401, 403, 404, 413, 415, 422, 429),
    },
  });
  app.openapi(redeliverEvent, async (c) => {
    const merchant = currentMerchant(c);
    const event = await loadEvent(merchant.id, c.req.valid("param").id);
    const endpointId = (c.req.valid("json") as { endpointId?: string } | undefined)?.endpointId;
    const targets = endpointId
      ? [await loadEndpoint(merchant.id, endpointId)]
      : (await db.select().from(webhookEndpoints).where(and(eq(webhookEndpoints.merchantId, merchant.id), isNull(webhookEndpoints.disabledAt)))).filter(
          (endpoint) => endpoint.eventTypes.length === 0 || endpoint.eventTypes.includes(event.type),
        );
    if (targets.length === 0) return c.json({ requeued: 0 }, 202);
    await db.transaction(async (tx) => {
      // A delivery row per (endpoint, event): reset it, or create it for an endpoint added after the event.
      await tx
        .insert(webhookDeliveries)
        .values(targets.map((endpoint) => ({ eventId: event.id, endpointId: endpoint.id, merchantId: merchant.id, orderKey: event.orderKey, eventSequence: event.sequence })))
        .onConflictDoUpdate({
          target: [webhookDeliveries.endpointId, webhookDeliveries.eventId],
          set: { status: "pending", attempts: 0, nextAttemptAt: new Date(), lockedUntil: null, completedAt: null },
        });
    });
    deps.webhooks?.wake();
    return c.json({ requeued: targets.length }, 202);
  });

  async function loadEvent(merchantId: string, id: string) {
    const [row] = await db
      .select()
      .from(webhookEvents)
      .where(and(eq(webhookEvents.id, id), eq(webhookEvents.merchantId, merchantId)))
      .limit(1);
    if (!row) throw problem.notFound(`Event ${id}`);
    return row;
  }

  return app;
}

function deliveryView(row: typeof webhookDeliveries.$inferSelect) {
  return {
    endpointId: row.endpointId,
    eventId: row.eventId,
    status: row.status as "pending" | "succeeded" | "failed",
    attempts: row.attempts,
    nextAttemptAt: row.status === "pending" ? row.nextAttemptAt.toISOString() : null,
    lastStatusCode: row.lastStatusCode,
    lastError: row.lastError,
  };
}
