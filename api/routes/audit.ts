/**
 * The audit log as merchants see it: their own entries, newest first, each with the hashes that chain it to the
 * entry before; and a check of the whole chain (api/audit.ts).
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { and, desc, eq, lt } from "drizzle-orm";
import { verifyAuditChain } from "../audit";
import { currentMerchant, requireScope } from "../auth";
import { encodeCursor, requireCursor } from "../cursor";
import type { ApiDeps, AppEnv } from "../env";
import { validationHook } from "../middleware";
import { BEARER, problemResponses, queryInteger } from "../schemas";
import { auditLog } from "../store/schema";

const AuditEntrySchema = z
  .object({
    sequence: z.number().int().openapi({ description: "Position in the global chain (1, 2, 3, … across every merchant)" }),
    actor: z.enum(["merchant", "admin", "keeper", "system"]).openapi({
      description: "merchant: one of your API keys; admin: the operator's admin key; keeper: the keeper process; system: the API itself",
    }),
    apiKeyId: z.string().nullable().openapi({ description: "The API key used, for actions by a merchant key" }),
    requestId: z.string().nullable().openapi({ description: "The request (X-Request-Id), for actions made through the API" }),
    action: z.string().openapi({ example: "api_key.create" }),
    target: z.string().nullable().openapi({ description: "What the action was done to (an id)" }),
    details: z.record(z.string(), z.unknown()),
    createdAt: z.string(),
    previousHash: z.string().openapi({ description: "The hash of entry `sequence - 1` (64 zeros for entry 1)" }),
    hash: z.string().openapi({
      description: "SHA-256 (hex) of the canonical JSON (sorted keys, no whitespace) of {sequence, previousHash, merchantId, actor, apiKeyId, requestId, action, target, details, createdAt}",
    }),
  })
  .openapi("AuditEntry");

const ListAuditQuery = z.object({
  limit: queryInteger(1, 100).default(20),
  cursor: z.string().max(600).optional().openapi({ description: "nextCursor of the previous page" }),
});

const VerificationSchema = z
  .object({
    ok: z.boolean(),
    entries: z.number().int().openapi({ description: "Entries verified (when broken: those before the break)" }),
    brokenAt: z.number().int().optional().openapi({ description: "The first entry that does not verify (for a gap: the first missing sequence)" }),
    reason: z.string().optional(),
  })
  .openapi("AuditVerification");

export function auditRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const db = deps.store.db;

  const list = createRoute({
    method: "get",
    path: "/audit-log",
    tags: ["Audit log"],
    summary: "The merchant's audit log entries, newest first",
    description:
      "Administrative actions on the merchant (API keys created and revoked, settings and alert rules changed, …), append-only. The log is one hash chain across every merchant of this server: `previousHash` of an entry is the hash of the entry just before it in the whole log, often another merchant's (whose contents you do not see). That is intended: the chain shows nothing was changed or removed anywhere, and `GET /v1/audit-log/verify` checks it end to end.",
    security: BEARER,
    middleware: [requireScope("merchant:read")] as const,
    request: { query: ListAuditQuery },
    responses: {
      200: {
        description: "A page of entries",
        content: { "application/json": { schema: z.object({ data: z.array(AuditEntrySchema), nextCursor: z.string().nullable() }) } },
      },
      ...problemResponses(401, 403, 422, 429),
    },
  });
  app.openapi(list, async (c) => {
    const merchant = currentMerchant(c);
    const query = c.req.valid("query");
    const before = query.cursor ? Number(requireCursor(query.cursor, 1, ([sequence]) => /^[1-9]\d{0,14}$/.test(sequence))[0]) : undefined;
    const rows = await db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.merchantId, merchant.id), before === undefined ? undefined : lt(auditLog.sequence, before)))
      .orderBy(desc(auditLog.sequence))
      .limit(query.limit + 1);
    const page = rows.slice(0, query.limit);
    const data = page.map((row) => ({
      sequence: row.sequence,
      actor: row.actor as z.infer<typeof AuditEntrySchema>["actor"],
      apiKeyId: row.apiKeyId,
      requestId: row.requestId,
      action: row.action,
      target: row.target,
      details: row.details,
      createdAt: row.createdAt.toISOString(),
      previousHash: row.previousHash,
      hash: row.hash,
    }));
    const last = page.at(-1);
    return c.json({ data, nextCursor: rows.length > query.limit && last ? encodeCursor([last.sequence]) : null }, 200);
  });

  const verify = createRoute({
    method: "get",
    path: "/audit-log/verify",
    tags: ["Audit log"],
    summary: "Check the whole audit log chain",
    description:
      "Recomputes every entry's hash in order, across every merchant (the chain is global: your entries link to entries of other merchants, which is intended), and checks that sequences have no gaps and each entry links to the one before. `ok: false` names the first entry that does not verify. Entries cut off at the end cannot be told from a shorter log: note `entries` (or the newest entry's `hash`) now and then and compare later.",
    security: BEARER,
    middleware: [requireScope("merchant:read")] as const,
    responses: {
      200: { description: "The result", content: { "application/json": { schema: VerificationSchema } } },
      ...problemResponses(401, 403, 429),
    },
  });
  app.openapi(verify, async (c) => {
    const result = await verifyAuditChain(db);
    if (result.ok) return c.json({ ok: true, entries: result.entries }, 200);
    return c.json({ ok: false, entries: result.entries, brokenAt: result.sequence, reason: result.reason }, 200);
  });

  return app;
}
