/**
 * Merchants and API keys: create a merchant (admin key), read yourself with your on-chain registration per
 * chain, create/list/revoke API keys (shown once, stored hashed).
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, isNull } from "drizzle-orm";
import { encodeFunctionData, type Address } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { currentMerchant, newApiKey, newId, requireAdmin, requireScope, SCOPES, type createAuth } from "../auth";
import type { ApiDeps, AppEnv, MerchantRecord } from "../env";
import { newOperatorKey } from "../operator";
import { problem } from "../problems";
import { AddressSchema, BEARER, problemResponses } from "../schemas";
import { validationHook } from "../middleware";
import { apiKeys, merchants } from "../store/schema";

const ScopeSchema = z.enum(SCOPES);

const ChainRegistrationSchema = z
  .object({
    chainId: z.number().int(),
    registered: z.boolean(),
    onchainMerchantId: z.string().nullable().openapi({ description: "Merchant id in BillingEscrow's registry" }),
    owner: z.string().nullable(),
    payout: z.string().nullable(),
    escrow: z.string(),
    subscriptions: z.string(),
    operatorBalanceWei: z.string().nullable().openapi({ description: "ETH the operator key holds for gas" }),
    registrationTransaction: z
      .object({ to: z.string(), data: z.string(), value: z.string() })
      .nullable()
      .openapi({ description: "Send this from the owner wallet to register the merchant on this chain" }),
  })
  .openapi("ChainRegistration");

export const MerchantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    operatorAddress: z.string().openapi({ description: "The merchant's signer: signs invoices, sends refunds" }),
    payoutAddress: z.string(),
    ownerAddress: z.string(),
    createdAt: z.string(),
    chains: z.array(ChainRegistrationSchema),
  })
  .openapi("Merchant");

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
    payoutAddress: AddressSchema.openapi({ description: "Receives released payments and subscription earnings" }),
    ownerAddress: AddressSchema.optional().openapi({
      description: "Wallet that registers and controls the merchant on-chain (default: the payout address)",
    }),
  })
  .strict()
  .openapi("CreateMerchant");

const CreateKeyBody = z
  .object({
    name: z.string().trim().min(1).max(100),
    scopes: z.array(ScopeSchema).min(1).optional().openapi({ description: "Default: every scope" }),
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

export async function merchantView(deps: ApiDeps, merchant: MerchantRecord): Promise<z.infer<typeof MerchantSchema>> {
  const registrations = await deps.indexed.merchantsBySigner(merchant.signerAddress as Address);
  const chains = await Promise.all(
    [...deps.chains.values()].map(async (chain) => {
      const registration = registrations.find((row) => row.chainId === chain.id);
      const balance = await chain.client.getBalance({ address: merchant.signerAddress as Address }).catch(() => null);
      return {
        chainId: chain.id,
        registered: registration !== undefined,
        onchainMerchantId: registration ? registration.merchantId.toString() : null,
        owner: registration?.owner ?? null,
        payout: registration?.payout ?? null,
        escrow: chain.escrow,
        subscriptions: chain.subscriptions,
        operatorBalanceWei: balance === null ? null : balance.toString(),
        registrationTransaction: registration
          ? null
          : {
              to: chain.escrow,
              data: encodeFunctionData({
                abi: billingEscrowAbi,
                functionName: "registerMerchant",
                args: [merchant.payoutAddress as Address, merchant.signerAddress as Address],
              }),
              value: "0",
            },
      };
    }),
  );
  return {
    id: merchant.id,
    name: merchant.name,
    operatorAddress: merchant.signerAddress,
    payoutAddress: merchant.payoutAddress,
    ownerAddress: merchant.ownerAddress,
    createdAt: merchant.createdAt.toISOString(),
    chains,
  };
}

export function merchantRoutes(deps: ApiDeps, auth: ReturnType<typeof createAuth>) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const db = deps.store.db;

  const createMerchant = createRoute({
    method: "post",
    path: "/merchants",
    tags: ["Merchants"],
    summary: "Create a merchant (admin key)",
    description:
      "Creates the merchant, its operator (signer) key and its first API key. The response lists, per chain, the transaction the owner wallet sends to register the merchant on-chain.",
    security: BEARER,
    middleware: [requireAdmin] as const,
    request: { body: { required: true, content: { "application/json": { schema: CreateMerchantBody } } } },
    responses: {
      201: {
        description: "Created",
        content: { "application/json": { schema: z.object({ merchant: MerchantSchema, apiKey: NewApiKeySchema }) } },
      },
      ...problemResponses(400, 401, 403, 413, 422),
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
    responses: { 200: { description: "The merchant", content: { "application/json": { schema: MerchantSchema } } }, ...problemResponses(401, 403) },
  });
  app.openapi(getMe, async (c) => c.json(await merchantView(deps, currentMerchant(c)), 200));

  const createKey = createRoute({
    method: "post",
    path: "/api-keys",
    tags: ["API keys"],
    summary: "Create an API key (shown once)",
    security: BEARER,
    middleware: [requireScope("merchant:write")] as const,
    request: { body: { required: true, content: { "application/json": { schema: CreateKeyBody } } } },
    responses: {
      201: { description: "Created", content: { "application/json": { schema: NewApiKeySchema } } },
      ...problemResponses(400, 401, 403, 422),
    },
  });
  app.openapi(createKey, async (c) => {
    const merchant = currentMerchant(c);
    const body = c.req.valid("json");
    const key = newApiKey();
    const [row] = await db
      .insert(apiKeys)
      .values({ id: newId("key"), merchantId: merchant.id, name: body.name, prefix: key.prefix, hash: key.hash, scopes: body.scopes ?? [...SCOPES] })
      .returning();
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
      ...problemResponses(401, 403),
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
    middleware: [requireScope("merchant:write")] as const,
    request: { params: z.object({ id: z.string().max(64) }) },
    responses: { 204: { description: "Revoked" }, ...problemResponses(401, 403, 404) },
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
