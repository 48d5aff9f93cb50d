/**
 * A small client for the chainbill HTTP API, as an integrator would write one: bearer key, JSON bodies, an
 * Idempotency-Key when asked, and RFC 9457 problem details turned into readable errors.
 */

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  errors?: { field: string; message: string }[];
}

/** A non-2xx answer from the API, carrying its problem details. */
export class ApiError extends Error {
  constructor(
    readonly method: string,
    readonly route: string,
    readonly status: number,
    readonly problem: Problem | undefined,
    body: string,
  ) {
    super(ApiError.describe(method, route, status, problem, body));
  }

  private static describe(method: string, route: string, status: number, problem: Problem | undefined, body: string): string {
    if (!problem) return `${method} ${route} → ${status}: ${body.slice(0, 300)}`;
    const fields = (problem.errors ?? []).map((error) => `\n    ${error.field}: ${error.message}`).join("");
    return `${method} ${route} → ${status} ${problem.title ?? ""}${problem.detail ? `: ${problem.detail}` : ""}${fields}`;
  }
}

export interface RequestOptions {
  /** Bearer key for this call (default: the client's key). */
  key?: string;
  body?: unknown;
  /** Sent as the Idempotency-Key header. */
  idempotencyKey?: string;
  accept?: string;
  query?: Record<string, string | number | undefined>;
}

export interface ApiClient {
  baseUrl: string;
  /** Calls the API and returns the parsed JSON (or text for non-JSON answers); throws ApiError on failure. */
  request<T = unknown>(method: string, route: string, options?: RequestOptions): Promise<T>;
  /** Like `request`, but returns the raw Response whatever its status. */
  raw(method: string, route: string, options?: RequestOptions): Promise<Response>;
}

export function createApiClient(baseUrl: string, key?: string): ApiClient {
  const base = baseUrl.replace(/\/$/, "");
  async function raw(method: string, route: string, options: RequestOptions = {}): Promise<Response> {
    const bearer = options.key ?? key;
    const query = Object.entries(options.query ?? {}).filter(([, value]) => value !== undefined);
    const search = query.length ? `?${new URLSearchParams(query.map(([name, value]): [string, string] => [name, String(value)]))}` : "";
    return fetch(`${base}${route}${search}`, {
      method,
      headers: {
        ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
        ...(options.body !== undefined ? { "content-type": "application/json" } : {}),
        ...(options.idempotencyKey ? { "idempotency-key": options.idempotencyKey } : {}),
        accept: options.accept ?? "application/json",
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  }
  return {
    baseUrl: base,
    raw,
    async request<T>(method: string, route: string, options: RequestOptions = {}): Promise<T> {
      const response = await raw(method, route, options);
      const text = await response.text();
      const isJson = (response.headers.get("content-type") ?? "").includes("json");
      if (!response.ok) {
        let problem: Problem | undefined;
        if (isJson) problem = JSON.parse(text) as Problem;
        throw new ApiError(method, route, response.status, problem, text);
      }
      if (!text) return undefined as T;
      return (isJson ? JSON.parse(text) : text) as T;
    },
  };
}

/** `GET /openapi.json`: `ok` when it answers 200; otherwise the status and body (undefined when nothing answers). */
export async function probeApi(baseUrl: string): Promise<{ ok: boolean; status?: number; body?: string }> {
  try {
    const response = await fetch(`${baseUrl.replace(/\/$/, "")}/openapi.json`);
    const body = await response.text();
    return { ok: response.ok, status: response.status, body: response.ok ? undefined : body.slice(0, 500) };
  } catch {
    return { ok: false };
  }
}

/** The routes the running API serves, from its OpenAPI document (`"post /v1/invoices"`, …). */
export async function servedRoutes(baseUrl: string): Promise<Set<string>> {
  const response = await fetch(`${baseUrl.replace(/\/$/, "")}/openapi.json`);
  const document = (await response.json()) as { paths?: Record<string, Record<string, unknown>> };
  const routes = new Set<string>();
  for (const [route, operations] of Object.entries(document.paths ?? {})) {
    for (const method of Object.keys(operations)) routes.add(`${method.toLowerCase()} ${route}`);
  }
  return routes;
}
