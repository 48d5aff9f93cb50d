/**
 * (to be written)
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import type { ApiDeps, AppEnv } from "../env";
import { validationHook } from "../middleware";

export function subscriptionRoutes(_deps: ApiDeps) {
  return new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
}
