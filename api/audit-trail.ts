/**
 * The audit trail: every successful change made through the API (keys, webhook endpoints, refunds, voids,
 * releases, fulfilments, settings, plans, cancellations, alert rules, merchants) is appended to the audit log
 * (api/audit.ts) by this one middleware, so no route can forget it. Invoice creation is business, not
 * administration, and is left out. Each entry names the actor, the API key, the request id, the action (method
 * and path with ids generalised), its target id and the request's body (bodies never carry secrets: keys and
 * signing secrets only appear in responses). Also records which client address each API key is used from
 * (the `api_key_new_client` alert).
 */
import { createMiddleware } from "hono/factory";
import { apiKeyUsedFrom } from "./alerts";
import { appendAudit, auditFrom } from "./audit";
import type { ApiDeps, AppEnv } from "./env";
import { clientAddress } from "./middleware";

const CHANGES = new Set(["POST", "PUT", "PATCH", "DELETE"]);
// Invoice creation is business; alert rule changes are logged by their route with the before and after.
const NOT_ADMINISTRATIVE = [/^POST \/v1\/invoices$/, /^PUT \/v1\/alert-rules\//];
const ID = /^[a-z]{2,5}_[A-Za-z0-9_-]{6,}$/;
const MAX_BODY_CHARS = 4_096;

/** `POST /v1/invoices/inv_x/refund` → action `POST /v1/invoices/{id}/refund`, target `inv_x`. */
export function auditAction(method: string, path: string): { action: string; target: string | null } {
  let target: string | null = null;
  const generic = path
    .split("/")
    .map((segment) => {
      if (ID.test(segment) || /^\d+$/.test(segment)) {
        target ??= segment;
        return "{id}";
      }
      return segment;
    })
    .join("/");
  return { action: `${method} ${generic}`, target };
}

export function auditTrail(deps: ApiDeps) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = c.get("principal");
    if (principal?.kind === "merchant" && principal.apiKeyId && principal.merchant) {
      void apiKeyUsedFrom(deps.store.db, { id: principal.apiKeyId, merchantId: principal.merchant.id }, clientAddress(c, deps.config.trustProxy)).catch((error: unknown) =>
        deps.logger.error({ err: error }, "could not record the API key's client address"),
      );
    }
    await next();
    if (!CHANGES.has(c.req.method) || c.res.status >= 400) return;
    const { action, target } = auditAction(c.req.method, c.req.path);
    if (NOT_ADMINISTRATIVE.some((pattern) => pattern.test(action))) return;
    let body: unknown = null;
    try {
      const text = c.req.header("content-type")?.includes("json") ? JSON.stringify(await c.req.json()) : "";
      body = text ? (text.length > MAX_BODY_CHARS ? { truncated: text.slice(0, MAX_BODY_CHARS) } : JSON.parse(text)) : null;
    } catch {
      body = null;
    }
    const replayed = c.res.headers.get("Idempotent-Replayed") === "true";
    await appendAudit(deps.store.db, auditFrom(c, action, target, { status: c.res.status, body, ...(replayed ? { replayed: true } : {}) })).catch((error: unknown) =>
      deps.logger.error({ err: error, action }, "could not append to the audit log"),
    );
  });
}
