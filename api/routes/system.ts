/**
 * The process's own endpoints, without authentication: `/health` (the process answers), `/ready` (the
 * backfill is done and no chain's index is stalled: load balancers route only to ready replicas) and
 * `/status` (per chain: indexed block and its time, head, state).
 */
import { Hono } from "hono";
import type { ApiDeps, AppEnv } from "../env";

export function systemRoutes(deps: ApiDeps) {
  const app = new Hono<AppEnv>();
  app.get("/health", (c) => c.json({ status: "ok" }, 200, { "cache-control": "no-store" }));
  app.get("/ready", async (c) => {
    const { ready, reasons } = await deps.freshness.readiness();
    c.header("cache-control", "no-store");
    c.header("Chainbill-Indexed", deps.freshness.header());
    return ready ? c.json({ ready: true }, 200) : c.json({ ready: false, reasons }, 503);
  });
  app.get("/status", (c) =>
    c.json(
      {
        chains: deps.freshness.snapshot().map((state) => ({
          chainId: state.chainId,
          indexedBlock: state.indexedBlock === null ? null : Number(state.indexedBlock),
          indexedBlockTime: state.indexedBlockTime === null ? null : new Date(Number(state.indexedBlockTime) * 1000).toISOString(),
          headBlock: state.headBlock === null ? null : Number(state.headBlock),
          state: state.state,
          checkedAt: state.checkedAt ? new Date(state.checkedAt).toISOString() : null,
        })),
      },
      200,
      { "cache-control": "no-store" },
    ),
  );
  return app;
}
