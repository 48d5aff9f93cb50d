/**
 * The chainbill HTTP API: `/v1` resources, the OpenAPI 3.1 document at `/openapi.json`, an interactive
 * reference at `/docs` (served locally), a page per problem type at `/problems/<type>`, and the process's
 * `/health`, `/ready` and `/status`. Built from explicit dependencies (`ApiDeps`).
 *
 * Middleware, in order: request id → CORS (allow-list only) → no-store → request log → per-client rate limit
 * (before any lookup) → body limit → input guard (JSON only, no NUL bytes) → authentication → per-merchant rate
 * limit → index freshness header → audit trail (every successful change) → the route (scope, idempotency,
 * validation) → problem details for every error.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { createMiddleware } from "hono/factory";
import { requestId } from "hono/request-id";
import { createAuth } from "./auth";
import { docsRoutes } from "./docs";
import type { ApiDeps, AppEnv } from "./env";
import {
  clientRateLimit,
  createBuckets,
  errorHandler,
  guardInput,
  merchantRateLimit,
  noStore,
  requestLog,
  validationHook,
} from "./middleware";
import { problem, problemResponse } from "./problems";
import { invoiceRoutes } from "./routes/invoices";
import { bitcoinRoutes } from "./routes/bitcoin";
import { refundLinkRoutes } from "./routes/refund-links";
import { paymentLinkRoutes, publicLinkRoutes } from "./routes/payment-links";
import { merchantRoutes } from "./routes/merchants";
import { keeperRoutes } from "./routes/keeper";
import { payoutRoutes } from "./routes/payouts";
import { problemRoutes } from "./routes/problems";
import { statementRoutes } from "./routes/statements";
import { subscriptionRoutes } from "./routes/subscriptions";
import { systemRoutes } from "./routes/system";
import { webhookRoutes } from "./routes/webhooks";
import { auditRoutes } from "./routes/audit";
import { alertRoutes } from "./routes/alerts";
import { auditTrail } from "./audit-trail";
import { checkoutRoutes } from "./checkout/routes";

export const API_VERSION = "0.2.0";

/** The OpenAPI document's header, shared by `/openapi.json` and scripts/export-openapi.ts. */
export const OPENAPI_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "chainbill API",
    version: API_VERSION,
    description:
      "Crypto billing: invoices paid into an on-chain escrow, subscriptions, statements. Amounts are decimal strings plus integer base-unit strings; errors are RFC 9457 problem details (`type` resolves to a page explaining it). Every /v1 answer carries `Chainbill-Indexed`: up to which block (and block time) each chain's data is indexed.",
  },
};

/** `Chainbill-Indexed` on every /v1 answer: the index position per chain the answer was read against. */
function indexedHeader(deps: ApiDeps) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const header = deps.freshness.header();
    await next();
    if (header) c.header("Chainbill-Indexed", header);
  });
}

/** A request whose path exists with other methods: 405 with `Allow`, instead of a 404. */
function methodNotAllowed(app: OpenAPIHono<AppEnv>) {
  const patterns = () =>
    app.routes
      .filter((route) => route.method !== "ALL" && route.path.startsWith("/v1/") && !route.path.includes("*"))
      .map((route) => ({ method: route.method, pattern: new RegExp(`^${route.path.replace(/:[^/]+/g, "[^/]+")}$`) }));
  let compiled: ReturnType<typeof patterns> | undefined;
  return (method: string, path: string): string[] => {
    compiled ??= patterns();
    return [...new Set(compiled.filter((route) => route.pattern.test(path)).map((route) => route.method))].filter((allowed) => allowed !== method);
  };
}

export function createApp(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const auth = createAuth(deps, createBuckets(deps.config.authFailuresPerClientPerMinute));
  const allowedMethods = methodNotAllowed(app);

  app.use("*", requestId({ headerName: "Request-Id" }));
  if (deps.config.corsOrigins.length > 0) {
    app.use(
      "/v1/*",
      cors({
        origin: deps.config.corsOrigins,
        allowHeaders: ["Authorization", "Content-Type", "Idempotency-Key"],
        exposeHeaders: ["Request-Id", "Chainbill-Indexed", "Idempotent-Replayed", "RateLimit-Limit", "RateLimit-Remaining", "Retry-After"],
        maxAge: 600,
      }),
    );
  }
  const clientLimit = clientRateLimit(createBuckets(deps.config.rateLimitPerClientPerMinute), deps.config.trustProxy);
  const limitBody = bodyLimit({
    maxSize: deps.config.bodyLimitBytes,
    onError: () => {
      throw problem.tooLarge(deps.config.bodyLimitBytes);
    },
  });
  // /v1 (API keys), /refund-links (the customer's token) and the hosted checkout's pages and JSON (the invoice
  // or link id) share the guards before authentication.
  for (const scope of ["/v1/*", "/refund-links/*", "/pay/*", "/l/*", "/links/*"]) {
    app.use(scope, noStore);
    app.use(scope, requestLog(deps.logger));
    app.use(scope, clientLimit);
    app.use(scope, limitBody);
    app.use(scope, guardInput);
  }
  app.use("/v1/*", auth.authenticate);
  app.use("/v1/*", merchantRateLimit(createBuckets(deps.config.rateLimitPerMinute)));
  app.use("/v1/*", indexedHeader(deps));
  app.use("/v1/*", auditTrail(deps));

  app.route("/v1", merchantRoutes(deps, auth));
  app.route("/v1", invoiceRoutes(deps));
  app.route("/v1", paymentLinkRoutes(deps));
  app.route("/v1", bitcoinRoutes(deps));
  app.route("/v1", subscriptionRoutes(deps));
  app.route("/v1", statementRoutes(deps));
  app.route("/v1", payoutRoutes(deps));
  app.route("/v1", keeperRoutes(deps));
  app.route("/v1", webhookRoutes(deps));
  app.route("/v1", auditRoutes(deps));
  app.route("/v1", alertRoutes(deps));
  app.all("/v1/*", (c) => {
    const allowed = allowedMethods(c.req.method, c.req.path);
    if (allowed.length > 0) throw problem.methodNotAllowed(c.req.method, c.req.path, allowed);
    throw problem.notFound(`Route ${c.req.method} ${c.req.path}`);
  });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer" });
  app.doc31("/openapi.json", OPENAPI_CONFIG);
  app.route("/", docsRoutes());
  app.route("/", problemRoutes());
  app.route("/", systemRoutes(deps));
  app.route("/", refundLinkRoutes(deps));
  app.route("/", publicLinkRoutes(deps));
  app.route("/", checkoutRoutes(deps));

  app.notFound((c) => problemResponse(c, problem.notFound(`Route ${c.req.method} ${c.req.path}`)));
  app.onError(errorHandler(deps.logger));
  return app;
}

export type ChainbillApp = ReturnType<typeof createApp>;
