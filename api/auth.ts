/**
 * API keys: random 256-bit secrets shown once, stored as SHA-256 hashes, scoped, revocable; plus the admin key
 * from the environment that bootstraps merchants. Lookups are cached briefly per process; a revocation clears
 * the local cache at once and reaches other replicas within `CACHE_TTL_MS`.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { and, eq, isNull } from "drizzle-orm";
import { createMiddleware } from "hono/factory";
import type { AppEnv, ApiDeps, MerchantRecord, Principal } from "./env";
import { clientAddress, type Buckets } from "./middleware";
import { problem } from "./problems";
import { apiKeys, merchants } from "./store/schema";

export const SCOPES = [
  "merchant:read",
  "merchant:write",
  "invoices:read",
  "invoices:write",
  "subscriptions:read",
  "subscriptions:write",
  "statements:read",
  "webhooks:read",
  "webhooks:write",
] as const;
export type Scope = (typeof SCOPES)[number];

const KEY_PREFIX = "cb_live_";
/** The shape of every key this API issues: anything else is refused without a lookup. */
const KEY_FORMAT = /^cb_live_[A-Za-z0-9_-]{43}$/;
const CACHE_TTL_MS = 5_000;

export function newApiKey(): { secret: string; prefix: string; hash: string } {
  const secret = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
  return { secret, prefix: secret.slice(0, KEY_PREFIX.length + 6), hash: hashKey(secret) };
}

export function hashKey(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export function newId(kind: string): string {
  return `${kind}_${randomBytes(12).toString("base64url")}`;
}

interface CachedPrincipal {
  principal: Principal;
  expiresAt: number;
}

/**
 * `failures` limits unknown keys per client address: once a client has spent its budget of failed
 * authentications, its requests are refused (429) before any lookup, so a flood of guessed keys costs nothing.
 */
export function createAuth(deps: ApiDeps, failures: Buckets) {
  const cache = new Map<string, CachedPrincipal>();
  const adminKey = Buffer.from(deps.config.adminApiKey);

  async function lookup(secret: string): Promise<Principal | undefined> {
    const hash = hashKey(secret);
    const cached = cache.get(hash);
    if (cached && cached.expiresAt > Date.now()) return cached.principal;
    const rows = await deps.store.db
      .select({ key: apiKeys, merchant: merchants })
      .from(apiKeys)
      .innerJoin(merchants, eq(merchants.id, apiKeys.merchantId))
      .where(and(eq(apiKeys.hash, hash), isNull(apiKeys.revokedAt)))
      .limit(1);
    const row = rows[0];
    if (!row) {
      cache.delete(hash);
      return undefined;
    }
    const principal: Principal = {
      kind: "merchant",
      merchant: row.merchant as MerchantRecord,
      apiKeyId: row.key.id,
      scopes: new Set(row.key.scopes),
    };
    if (cache.size > 10_000) cache.clear();
    cache.set(hash, { principal, expiresAt: Date.now() + CACHE_TTL_MS });
    return principal;
  }

  /** Authenticates the bearer key (admin or merchant) and sets `principal`. */
  const authenticate = createMiddleware<AppEnv>(async (c, next) => {
    const header = c.req.header("authorization") ?? "";
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) throw problem.unauthorized();
    const secret = match[1];
    const presented = Buffer.from(secret);
    const client = clientAddress(c, deps.config.trustProxy);
    if (!failures.has(client)) {
      const verdict = failures.take(client);
      throw problem.rateLimited(verdict.ok ? 1 : verdict.retryAfter, "client");
    }
    if (presented.length === adminKey.length && timingSafeEqual(presented, adminKey)) {
      c.set("principal", { kind: "admin", scopes: new Set<string>() });
    } else {
      const principal = KEY_FORMAT.test(secret) ? await lookup(secret) : undefined;
      if (!principal) {
        failures.take(client);
        throw problem.unauthorized("The API key is unknown or was revoked.");
      }
      c.set("principal", principal);
    }
    await next();
  });

  return {
    authenticate,
    /** Forgets a key at once in this process (after revocation). */
    forget(hash: string) {
      cache.delete(hash);
    },
    forgetAll() {
      cache.clear();
    },
  };
}

/** Requires the admin key. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  if (c.get("principal").kind !== "admin") throw problem.forbidden("This operation needs the admin API key.");
  await next();
});

/** Requires a merchant key carrying `scope`. */
export function requireScope(scope: Scope) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = c.get("principal");
    if (principal.kind !== "merchant") {
      throw problem.forbidden("This operation needs a merchant API key (the admin key only creates merchants).");
    }
    if (!principal.scopes.has(scope)) throw problem.forbidden(`This API key lacks the \`${scope}\` scope.`);
    await next();
  });
}

/** The authenticated merchant (after `requireScope`). */
export function currentMerchant(c: { get(key: "principal"): Principal }): MerchantRecord {
  const merchant = c.get("principal").merchant;
  if (!merchant) throw problem.forbidden("This operation needs a merchant API key.");
  return merchant;
}
