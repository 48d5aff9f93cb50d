/**
 * Merchants and API keys: create a merchant (admin key), read yourself with your on-chain registration per
 * chain, create/list/revoke API keys (shown once, stored hashed). A key creates only keys with a subset of its
 * own scopes, and a merchant holds at most `MAX_ACTIVE_KEYS` active keys.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { and, count, desc, eq, isNull } from "drizzle-orm";
import { currentMerchant, newApiKey, newId, requireAdmin, requireScope, SCOPES, type createAuth } from "../auth";
import type { ApiDeps, AppEnv } from "../env";
import { idempotent } from "../idempotency";
import { MerchantSchema, merchantView } from "../merchants/view";
import { newOperatorKey } from "../operator";
import { validationHook } from "../middleware";
import { problem } from "../problems";
import { BEARER, NonZeroAddressSchema, OptionalIdempotencyHeaders, plainRecord, problemResponses } from "../schemas";
import { apiKeys, merchants } from "../store/schema";

/** Active (unrevoked) keys a merchant may hold at once. */
export const MAX_ACTIVE_KEYS = 25;

const ScopeSchema = z.enum(SCOPES);

const ApiKeySchema = z
  .object({
    id: z.string(),
    name: z.string(),
    prefix: z.string(),
    scopes: z.array(ScopeSchema),
    createdAt: z.string(),
    revokedAt: z.string().nullable(),
  })
  .openapi("ApiKey");

const NewApiKeySchema = ApiKeySchema.extend({
  secret: z.string().openapi({ description: "The key itself. Shown once: store it now." }),
}).openapi("NewApiKey");

const CreateMerchantBody = z
  .object({
    name: z.string().trim().min(1).max(200),
    payoutAddress: NonZeroAddressSchema.openapi({ description: "Receives released payments and subscription earnings" }),
    ownerAddress: NonZeroAddressSchema.optional().openapi({
      description: "Wallet that registers and controls the merchant on-chain (default: the payout address)",
    }),
  })
  .strict()
  .openapi("CreateMerchant");

const CreateKeyBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(ScopeSchema).min(1).optional().openapi({ description: "A subset of the calling key's scopes; default: all of them" }),
  })
  .strict();

function keyView(row: typeof apiKeys.$inferSelect) {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    scopes: row.scopes as z.infer<typeof ScopeSchema>[],
    createdAt: row.createdAt.toISOString(),
    revokedAt: row.revokedAt ? row.revokedAt.toISOString() : null,
  };
}

export function merchantRoutes(deps: ApiDeps, auth: ReturnType<typeof createAuth>) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const db = deps.store.db;
  const optional = idempotent(db, { required: false });

  const createMerchant = createRoute({
    method: "post",
    path: "/merchants",
    tags: ["Merchants"],
    summary: "Create a merchant (admin key)",
    description:
      "Creates the merchant, its operator (signer) key and its first API key (every scope). The response lists, per chain, the transaction the owner wallet sends to register the merchant on-chain (with the operator's signed consent in it).",
    security: BEARER,
    middleware: [requireAdmin, optional] as const,
    request: { headers: OptionalIdempotencyHeaders, body: { required: true, content: { "application/json": { schema: CreateMerchantBody } } } },
    responses: {
      201: {
        description: "Created",
        content: { "application/json": { schema: z.object({ merchant: MerchantSchema, apiKey: NewApiKeySchema }) } },
      },
      ...problemResponses(400, 401, 403, 413, 415, 422, 429),
    },
  });
  app.openapi(createMerchant, async (c) => {
    const body = c.req.valid("json");
    const operator = newOperatorKey(deps.config.operatorKeySecret);
    const key = newApiKey();
    const merchantRow = {
      id: newId("mer"),
      name: body.name,
      signerAddress: operator.address,
      signerKeyEncrypted: operator.encrypted,
      payoutAddress: body.payoutAddress,
      ownerAddress: body.ownerAddress ?? body.payoutAddress,
    };
    const keyRow = { id: newId("key"), merchantId: merchantRow.id, name: "default", prefix: key.prefix, hash: key.hash, scopes: [...SCOPES] };
    const [merchant, apiKey] = await db.transaction(async (tx) => {
      const [inserted] = await tx.insert(merchants).values(merchantRow).returning();
      const [insertedKey] = await tx.insert(apiKeys).values(keyRow).returning();
      return [inserted, insertedKey] as const;
    });
    return c.json({ merchant: await merchantView(deps, merchant), apiKey: { ...keyView(apiKey), secret: key.secret } }, 201);
  });

  const getMe = createRoute({
    method: "get",
    path: "/merchants/me",
    tags: ["Merchants"],
    summary: "The merchant of this API key, with its on-chain registration per chain",
    security: BEARER,
    middleware: [requireScope("merchant:read")] as const,
    responses: { 200: { description: "The merchant", content: { "application/json": { schema: MerchantSchema } } }, ...problemResponses(401, 403, 429) },
  });
  app.openapi(getMe, async (c) => c.json(await merchantView(deps, currentMerchant(c)), 200));

  const updateMe = createRoute({
    method: "patch",
    path: "/merchants/me",
    tags: ["Merchants"],
    summary: "Change the merchant's settings (payout schedule, confirmations per chain, fiat currency, rate lock)",
    security: BEARER,
    middleware: [requireScope("merchant:write"), optional] as const,
    request: {
      headers: OptionalIdempotencyHeaders,
      body: {
        required: true,
        content: {
          "application/json": {
            schema: z
              .object({
                subscriptionPayoutIntervalSeconds: z.number().int().min(0).max(365 * 86_400).optional().openapi({
                  description: "Pay subscription income out every N seconds (the keeper sends the withdrawal); 0: never automatically",
                  example: 86_400,
                }),
                confirmations: plainRecord(z.record(z.string().regex(/^[1-9]\d{0,9}$/, "must be a chain id"), z.number().int().min(1).max(1_000).nullable()))
                  .optional()
                  .openapi({
                    description: "Per chain id: blocks (the payment's own included) after which a payment is `invoice.confirmed`; null: back to the chain's default. Chains not named keep their setting.",
                    example: { "11155111": 3 },
                  }),
                fiatCurrency: z.enum(["USD", "EUR", "CNY"]).optional().openapi({ description: "The currency statements value entries in (new invoices record their value in it)" }),
                rateLockSeconds: z
                  .number()
                  .int()
                  .min(60)
                  .max(86_400)
                  .optional()
                  .openapi({ description: "Seconds a fiat price converted to a token stays locked: the invoice's expiry (60 – 86,400)", example: 900 }),
              })
              .strict()
              .refine((body) => Object.values(body).some((value) => value !== undefined), { message: "name at least one setting" })
              .openapi("UpdateMerchant"),
          },
        },
      },
    },
    responses: { 200: { description: "The merchant", content: { "application/json": { schema: MerchantSchema } } }, ...problemResponses(400, 401, 403, 413, 415, 422, 429) },
  });
  app.openapi(updateMe, async (c) => {
    const merchant = currentMerchant(c);
    const body = c.req.valid("json");
    const unknownChains = Object.keys(body.confirmations ?? {}).filter((chainId) => !deps.chains.has(Number(chainId)));
    if (unknownChains.length > 0) {
      throw problem.validation(unknownChains.map((chainId) => ({ field: `confirmations.${chainId}`, message: `chain ${chainId} is not served by this API (served: ${[...deps.chains.keys()].join(", ")})` })));
    }
    const [updated] = await db.transaction(async (tx) => {
      const [current] = await tx.select().from(merchants).where(eq(merchants.id, merchant.id)).for("update");
      const policy = { ...current.confirmationPolicy };
      for (const [chainId, blocks] of Object.entries(body.confirmations ?? {})) {
        if (blocks === null) delete policy[chainId];
        else policy[chainId] = blocks;
      }
      return tx
        .update(merchants)
        .set({
          ...(body.subscriptionPayoutIntervalSeconds !== undefined ? { subscriptionPayoutIntervalSeconds: body.subscriptionPayoutIntervalSeconds } : {}),
          ...(body.fiatCurrency !== undefined ? { fiatCurrency: body.fiatCurrency } : {}),
          ...(body.rateLockSeconds !== undefined ? { rateLockSeconds: body.rateLockSeconds } : {}),
          confirmationPolicy: policy,
        })
        .where(eq(merchants.id, merchant.id))
        .returning();
    });
    // Cached principals hold the old row: this process forgets them now (other replicas within 5 s).
    auth.forgetAll();
    return c.json(await merchantView(deps, updated), 200);
  });

  const createKey = createRoute({
    method: "post",
    path: "/api-keys",
    tags: ["API keys"],
    summary: "Create an API key (shown once)",
    description: `The new key's scopes must be a subset of the calling key's (default: the calling key's scopes). A merchant holds at most ${MAX_ACTIVE_KEYS} active keys.`,
    security: BEARER,
    middleware: [requireScope("merchant:write"), optional] as const,
    request: { headers: OptionalIdempotencyHeaders, body: { required: true, content: { "application/json": { schema: CreateKeyBody } } } },
    responses: {
      201: { description: "Created", content: { "application/json": { schema: NewApiKeySchema } } },
      ...problemResponses(400, 401, 403, 409, 413, 415, 422, 429),
    },
  });
  app.openapi(createKey, async (c) => {
    const merchant = currentMerchant(c);
    const held = c.get("principal").scopes;
    const body = c.req.valid("json");
    const scopes = body.scopes ?? SCOPES.filter((scope) => held.has(scope));
    const beyond = scopes.filter((scope) => !held.has(scope));
    if (beyond.length > 0) {
      throw problem.forbidden(`A key may only create keys with a subset of its own scopes; this key lacks ${beyond.map((scope) => `\`${scope}\``).join(", ")}.`);
    }
    const key = newApiKey();
    const row = await db.transaction(async (tx) => {
      // Serializes concurrent key creations of one merchant, so the cap holds under concurrency.
      await tx.select({ id: merchants.id }).from(merchants).where(eq(merchants.id, merchant.id)).for("update");
      const [{ active }] = await tx
        .select({ active: count() })
        .from(apiKeys)
        .where(and(eq(apiKeys.merchantId, merchant.id), isNull(apiKeys.revokedAt)));
      if (active >= MAX_ACTIVE_KEYS) {
        throw problem.conflict("api-key-limit", `This merchant already has ${active} active API keys (at most ${MAX_ACTIVE_KEYS}): revoke one first.`, { limit: MAX_ACTIVE_KEYS });
      }
      const [inserted] = await tx
        .insert(apiKeys)
        .values({ id: newId("key"), merchantId: merchant.id, name: body.name, prefix: key.prefix, hash: key.hash, scopes: [...scopes] })
        .returning();
      return inserted;
    });
    return c.json({ ...keyView(row), secret: key.secret }, 201);
  });

  const listKeys = createRoute({
    method: "get",
    path: "/api-keys",
    tags: ["API keys"],
    summary: "List API keys (never their secrets)",
    security: BEARER,
    middleware: [requireScope("merchant:read")] as const,
    responses: {
      200: { description: "Keys", content: { "application/json": { schema: z.object({ data: z.array(ApiKeySchema) }) } } },
      ...problemResponses(401, 403, 429),
    },
  });
  app.openapi(listKeys, async (c) => {
    const rows = await db.select().from(apiKeys).where(eq(apiKeys.merchantId, currentMerchant(c).id)).orderBy(desc(apiKeys.createdAt));
    return c.json({ data: rows.map(keyView) }, 200);
  });

  const revokeKey = createRoute({
    method: "delete",
    path: "/api-keys/{id}",
    tags: ["API keys"],
    summary: "Revoke an API key",
    security: BEARER,
    middleware: [requireScope("merchant:write"), optional] as const,
    request: { params: z.object({ id: z.string().max(64) }), headers: OptionalIdempotencyHeaders },
    responses: { 204: { description: "Revoked" }, ...problemResponses(401, 403, 404, 429) },
  });
  app.openapi(revokeKey, async (c) => {
    const merchant = currentMerchant(c);
    const [row] = await db
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.id, c.req.valid("param").id), eq(apiKeys.merchantId, merchant.id), isNull(apiKeys.revokedAt)))
      .returning();
    if (!row) throw problem.notFound(`API key ${c.req.valid("param").id}`);
    auth.forget(row.hash);
    return c.body(null, 204);
  });

  return app;
}
