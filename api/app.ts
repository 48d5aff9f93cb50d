/**
 * The chainbill HTTP API: `/v1` resources, the OpenAPI 3.1 document at `/openapi.json` and an interactive
 * reference at `/docs` (served locally). Built from explicit dependencies so it can be mounted in Ponder's
 * server (the default) or any Hono host.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import { requestId } from "hono/request-id";
import { createAuth } from "./auth";
import { docsRoutes } from "./docs";
import type { ApiDeps, AppEnv } from "./env";
import { errorHandler, rateLimit, requestLog, validationHook } from "./middleware";
import { problem } from "./problems";
import { merchantRoutes } from "./routes/merchants";
import { invoiceRoutes } from "./routes/invoices";
import { subscriptionRoutes } from "./routes/subscriptions";
import { statementRoutes } from "./routes/statements";

export const API_VERSION = "0.1.0";

/** The OpenAPI document's header, shared by `/openapi.json` and scripts/export-openapi.ts. */
export const OPENAPI_CONFIG = {
  openapi: "3.1.0",
  info: {
    title: "chainbill API",
    version: API_VERSION,
    description:
      "Crypto billing: invoices paid into an on-chain escrow, subscriptions, statements. Amounts are decimal strings plus integer base-unit strings; errors are RFC 9457 problem details.",
  },
};

export function createApp(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const auth = createAuth(deps);

  app.use("*", requestId({ headerName: "Request-Id" }));
  app.use("/v1/*", requestLog(deps.logger));
  app.use(
    "/v1/*",
    bodyLimit({
      maxSize: deps.config.bodyLimitBytes,
      onError: () => {
        throw problem.tooLarge(deps.config.bodyLimitBytes);
      },
    }),
  );
  app.use("/v1/*", auth.authenticate);
  app.use("/v1/*", rateLimit(deps.config.rateLimitPerMinute));

  app.route("/v1", merchantRoutes(deps, auth));
  app.route("/v1", invoiceRoutes(deps));
  app.route("/v1", subscriptionRoutes(deps));
  app.route("/v1", statementRoutes(deps));
  // Mounted in another Hono app (Ponder's server), `app.notFound` below is never consulted: the host's plain-text
  // 404 answers instead. Unknown /v1 routes therefore get their problem response from this last route.
  app.all("/v1/*", (c) => {
    throw problem.notFound(`Route ${c.req.method} ${c.req.path}`);
  });

  app.openAPIRegistry.registerComponent("securitySchemes", "bearerAuth", { type: "http", scheme: "bearer" });
  app.doc31("/openapi.json", OPENAPI_CONFIG);
  app.route("/", docsRoutes());

  app.notFound((c) => c.body(JSON.stringify(problem.notFound(`Route ${c.req.method} ${c.req.path}`).toProblem(c.get("requestId"))), 404, { "content-type": "application/problem+json" }));
  app.onError(errorHandler(deps.logger));
  return app;
}

export type ChainbillApp = ReturnType<typeof createApp>;
