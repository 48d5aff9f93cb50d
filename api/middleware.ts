/**
 * Cross-cutting HTTP concerns, as Hono middleware: request ids, one structured log line per request, rate limits
 * (per client address before authentication, per merchant after), bodies (JSON only, no NUL bytes anywhere),
 * response headers every `/v1` answer carries, CORS from an allow-list, the validation hook every route uses,
 * and the translation of every error into RFC 9457 problem details (never a stack trace to the client).
 */
import { HTTPException } from "hono/http-exception";
import { createMiddleware } from "hono/factory";
import type { Context, ErrorHandler } from "hono";
import type { Logger } from "pino";
import type { AppEnv } from "./env";
import { problem, problemResponse, ProblemError, type FieldError } from "./problems";

/** Logs method, path, status, duration, request id and merchant for every request. */
export function requestLog(logger: Logger) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const started = performance.now();
    await next();
    const principal = c.get("principal");
    logger.info(
      {
        requestId: c.get("requestId"),
        method: c.req.method,
        path: c.req.path,
        status: c.res.status,
        durationMs: Math.round((performance.now() - started) * 10) / 10,
        merchantId: principal?.merchant?.id,
      },
      "request",
    );
  });
}

/** Token buckets: `capacity` requests, refilled continuously at `perMinute`. Forgets idle buckets. */
export function createBuckets(perMinute: number) {
  const buckets = new Map<string, { tokens: number; updated: number }>();
  const refillPerMs = perMinute / 60_000;
  return {
    perMinute,
    /** Takes `cost` tokens; returns the seconds to wait when there are not enough (nothing is taken then). */
    take(id: string, cost = 1): { ok: true; remaining: number } | { ok: false; retryAfter: number } {
      const now = Date.now();
      if (buckets.size > 50_000) {
        for (const [key, bucket] of buckets) if (now - bucket.updated > 60_000) buckets.delete(key);
      }
      const bucket = buckets.get(id) ?? { tokens: perMinute, updated: now };
      bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.updated) * refillPerMs);
      bucket.updated = now;
      buckets.set(id, bucket);
      if (bucket.tokens < cost) return { ok: false, retryAfter: Math.max(1, Math.ceil((cost - bucket.tokens) / refillPerMs / 1000)) };
      bucket.tokens -= cost;
      return { ok: true, remaining: Math.floor(bucket.tokens) };
    },
    /** Whether `id` has at least one token, without taking any. */
    has(id: string): boolean {
      const bucket = buckets.get(id);
      if (!bucket) return true;
      return Math.min(perMinute, bucket.tokens + (Date.now() - bucket.updated) * refillPerMs) >= 1;
    },
  };
}

export type Buckets = ReturnType<typeof createBuckets>;

/** The client's address: the socket's peer, or the first `X-Forwarded-For` hop behind a trusted proxy. */
export function clientAddress(c: Context, trustProxy: boolean): string {
  if (trustProxy) {
    const forwarded = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
    if (forwarded) return forwarded;
  }
  const incoming = (c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? "unknown";
}

/** Per client address, before authentication: every request takes a token, so floods never reach the key store. */
export function clientRateLimit(buckets: Buckets, trustProxy: boolean) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const verdict = buckets.take(clientAddress(c, trustProxy));
    if (!verdict.ok) throw problem.rateLimited(verdict.retryAfter, "client");
    await next();
  });
}

/** Per merchant (every key of a merchant shares one budget), after authentication. */
export function merchantRateLimit(buckets: Buckets) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = c.get("principal");
    const verdict = buckets.take(principal.merchant?.id ?? principal.kind);
    c.header("RateLimit-Limit", String(buckets.perMinute));
    if (!verdict.ok) {
      c.header("RateLimit-Remaining", "0");
      throw problem.rateLimited(verdict.retryAfter, "merchant");
    }
    c.header("RateLimit-Remaining", String(verdict.remaining));
    await next();
  });
}

/** Headers of every `/v1` answer: never cached by browsers or proxies (they carry merchant data). */
export const noStore = createMiddleware<AppEnv>(async (c, next) => {
  await next();
  c.header("Cache-Control", "no-store");
});

function isJsonType(contentType: string | undefined): boolean {
  const type = (contentType ?? "").split(";")[0].trim().toLowerCase();
  return /^application\/([\w.-]+\+)?json$/.test(type);
}

function findNul(value: unknown, path: string[]): string | undefined {
  if (typeof value === "string") return value.includes("\u0000") ? path.join(".") || "(body)" : undefined;
  if (Array.isArray(value)) {
    for (let index = 0; index < value.length; index += 1) {
      const found = findNul(value[index], [...path, String(index)]);
      if (found) return found;
    }
    return undefined;
  }
  if (value && typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (key.includes("\u0000")) return [...path, key.replace(/\u0000/g, "\\u0000")].join(".");
      const found = findNul(item, [...path, key]);
      if (found) return found;
    }
  }
  return undefined;
}

/**
 * Refuses what the API never accepts before any route sees it: a NUL byte in the path, the query or a JSON
 * body (PostgreSQL text cannot hold one; every such value is a client error, never a 500), and a body that is
 * not declared as JSON (415) on a method that carries one.
 */
export const guardInput = createMiddleware<AppEnv>(async (c, next) => {
  const url = new URL(c.req.url);
  let decoded: string;
  try {
    decoded = decodeURIComponent(url.pathname) + decodeURIComponent(url.search.replace(/\+/g, " "));
  } catch {
    throw problem.malformed("The URL has an invalid percent-encoding.");
  }
  if (decoded.includes("\u0000")) throw problem.malformed("The path or query contains a NUL character.");
  if (c.req.method === "POST" || c.req.method === "PATCH" || c.req.method === "PUT") {
    const contentType = c.req.header("content-type");
    const text = await c.req.text();
    if (text.length > 0 || contentType !== undefined) {
      if (!isJsonType(contentType)) throw problem.unsupportedMediaType();
      if (text.length > 0) {
        let body: unknown;
        try {
          body = JSON.parse(text);
        } catch {
          throw problem.malformed("The body is not valid JSON.");
        }
        const field = findNul(body, []);
        if (field) throw problem.validation([{ field, message: "contains a NUL character" }]);
      }
    }
  }
  await next();
});

type ZodIssue = { path: PropertyKey[]; message: string; code?: string; keys?: string[] };

/**
 * The validation hook of every route: each invalid field becomes an entry of one 422 problem, and an unknown
 * field is reported under its own name (zod reports `unrecognized_keys` once, at the parent object).
 */
export function validationHook(
  result: { success: true } | { success: false; error: { issues: ZodIssue[] } },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  const errors: FieldError[] = result.error.issues.flatMap((issue) => {
    const parent = issue.path.map(String);
    if (issue.code === "unrecognized_keys" && issue.keys?.length) {
      return issue.keys.map((key) => ({ field: [...parent, key].join("."), message: "is not a known field" }));
    }
    return [{ field: parent.join(".") || "(body)", message: issue.message }];
  });
  return problemResponse(c, problem.validation(errors));
}

/** PostgreSQL errors that can only come from a value the client sent (a safety net: input guards come first). */
const CLIENT_DATA_ERRORS = new Set(["22021", "22P05", "22001", "22003", "22007", "22008", "22P02"]);

export function errorHandler(logger: Logger): ErrorHandler<AppEnv> {
  return (error, c) => {
    if (error instanceof ProblemError) return problemResponse(c, error);
    if (error instanceof HTTPException) {
      if (error.status === 413) return problemResponse(c, problem.tooLarge(0));
      if (error.status === 415) return problemResponse(c, problem.unsupportedMediaType());
      if (error.status === 400) return problemResponse(c, problem.malformed(error.message || "The request could not be read."));
      if (error.status === 401) return problemResponse(c, problem.unauthorized());
    }
    const code = (error as { code?: unknown; cause?: { code?: unknown } }).code ?? (error as { cause?: { code?: unknown } }).cause?.code;
    if (typeof code === "string" && CLIENT_DATA_ERRORS.has(code)) {
      logger.warn({ err: error, requestId: c.get("requestId"), path: c.req.path }, "database refused a client value");
      return problemResponse(c, problem.malformed("A value in the request cannot be stored (invalid characters or out of range)."));
    }
    logger.error({ err: error, requestId: c.get("requestId"), path: c.req.path }, "unhandled error");
    return problemResponse(c, new ProblemError("internal-error", "Something failed on our side; the request id identifies it in our logs."));
  };
}
