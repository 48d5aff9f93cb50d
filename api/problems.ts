/**
 * RFC 9457 problem details: every error the API returns is `application/problem+json` with a `type` naming
 * the problem, a human `title` and `detail`, the `status`, the request id (`instance`), and for validation
 * errors the list of fields that were wrong and why.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";

export interface FieldError {
  /** Dotted path of the offending field, e.g. `lineItems.0.unitAmount`. */
  field: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

const TYPE_BASE = "/problems/";

/** An error that becomes a problem response. Throw it from any handler or middleware. */
export class ProblemError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly slug: string,
    readonly title: string,
    readonly detail?: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail ?? title);
  }

  toProblem(instance?: string): Problem {
    return {
      type: `${TYPE_BASE}${this.slug}`,
      title: this.title,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
      ...(instance ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export const problem = {
  validation: (errors: FieldError[], detail = "The request has invalid fields; see `errors`.") =>
    new ProblemError(422, "validation-error", "Invalid request", detail, { errors }),
  malformed: (detail: string) => new ProblemError(400, "malformed-request", "Malformed request", detail),
  unauthorized: (detail = "Send an API key as `Authorization: Bearer <key>`.") =>
    new ProblemError(401, "unauthorized", "Missing or invalid API key", detail),
  forbidden: (detail: string) => new ProblemError(403, "forbidden", "Not allowed", detail),
  notFound: (what: string) => new ProblemError(404, "not-found", "Not found", `${what} does not exist.`),
  conflict: (slug: string, title: string, detail: string, extensions?: Record<string, unknown>) =>
    new ProblemError(409, slug, title, detail, extensions),
  tooLarge: (limit: number) =>
    new ProblemError(413, "body-too-large", "Request body too large", `The body must be at most ${limit} bytes.`),
  rateLimited: (retryAfterSeconds: number) =>
    new ProblemError(429, "rate-limited", "Too many requests", `Retry after ${retryAfterSeconds} s.`, {
      retryAfter: retryAfterSeconds,
    }),
  unavailable: (detail: string) => new ProblemError(503, "unavailable", "Temporarily unavailable", detail),
  chainFailure: (detail: string) => new ProblemError(502, "chain-error", "The chain refused the transaction", detail),
};

export function problemResponse(c: Context, error: ProblemError): Response {
  const body = error.toProblem(c.get("requestId"));
  return c.body(JSON.stringify(body), error.status, { "content-type": "application/problem+json" });
}
