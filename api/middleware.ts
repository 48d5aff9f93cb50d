/**
 * Cross-cutting HTTP concerns: request ids, one structured log line per request, per-key rate limits, and the
 * translation of every error into RFC 9457 problem details (never a stack trace to the client).
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

/** Token bucket per API key: `perMinute` requests, refilled continuously. */
export function rateLimit(perMinute: number) {
  const buckets = new Map<string, { tokens: number; updated: number }>();
  const refillPerMs = perMinute / 60_000;
  return createMiddleware<AppEnv>(async (c, next) => {
    const principal = c.get("principal");
    const id = principal.apiKeyId ?? principal.kind;
    const now = Date.now();
    const bucket = buckets.get(id) ?? { tokens: perMinute, updated: now };
    bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.updated) * refillPerMs);
    bucket.updated = now;
    buckets.set(id, bucket);
    c.header("RateLimit-Limit", String(perMinute));
    if (bucket.tokens < 1) {
      const retryAfter = Math.ceil((1 - bucket.tokens) / refillPerMs / 1000);
      c.header("Retry-After", String(retryAfter));
      c.header("RateLimit-Remaining", "0");
      throw problem.rateLimited(retryAfter);
    }
    bucket.tokens -= 1;
    c.header("RateLimit-Remaining", String(Math.floor(bucket.tokens)));
    await next();
  });
}

/** zod-openapi validation hook: every invalid field becomes an entry of a 422 problem. */
export function validationHook(
  result: { success: true } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } },
  c: Context,
): Response | undefined {
  if (result.success) return undefined;
  const errors: FieldError[] = result.error.issues.map((issue) => ({
    field: issue.path.map(String).join(".") || "(body)",
    message: issue.message,
  }));
  return problemResponse(c, problem.validation(errors));
}

export function errorHandler(logger: Logger): ErrorHandler<AppEnv> {
  return (error, c) => {
    if (error instanceof ProblemError) return problemResponse(c, error);
    if (error instanceof HTTPException) {
      if (error.status === 413) return problemResponse(c, problem.tooLarge(0));
      const detail = error.message || "The request could not be read.";
      if (error.status === 400) return problemResponse(c, problem.malformed(detail));
      return problemResponse(c, new ProblemError(error.status as 401, "http-error", detail));
    }
    logger.error({ err: error, requestId: c.get("requestId"), path: c.req.path }, "unhandled error");
    return problemResponse(
      c,
      new ProblemError(500, "internal-error", "Internal error", "Something failed on our side; the request id identifies it in our logs."),
    );
  };
}
