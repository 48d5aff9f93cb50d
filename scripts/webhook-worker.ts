/**
 * `npm run webhooks:worker`: a webhook delivery worker on its own, for deployments on Postgres that scale
 * deliveries apart from the API (run the API with WEBHOOK_WORKER=false and as many of these as needed). Workers
 * share the store safely: each claims deliveries under a lease with `FOR UPDATE SKIP LOCKED`, so every attempt
 * is made by exactly one worker, and a worker that dies loses only its lease.
 */
import pino from "pino";
import { ConfigError, loadApiConfig } from "../api/config";
import { openStore } from "../api/store";
import { createWorker } from "../api/webhooks/worker";
import { workerOptions } from "../api/webhooks/service";
import { onShutdown } from "./lib/processes";
import { loadDotEnv } from "./lib/stack-files";

const HELP = `npm run webhooks:worker — deliver webhooks from the shared store

  npm run webhooks:worker

Claims due webhook deliveries from the API's store (Postgres: DATABASE_URL), signs each per Standard Webhooks
and posts it, retrying on the schedule. Several workers (and API processes with their own worker) can run on
one database: each delivery attempt is made by exactly one of them. PGlite (the default local store) belongs to
the API process alone: this worker needs DATABASE_URL.

Environment (also read from .env):
  DATABASE_URL          the Postgres database the API uses (required)
  OPERATOR_KEY_SECRET   the API's secret (opens the endpoints' signing secrets); locally <data>/operator-key-secret
  WEBHOOK_RETRY_SCHEDULE, WEBHOOK_DISABLE_AFTER_SECONDS, WEBHOOK_TIMEOUT_MS, WEBHOOK_BATCH_SIZE,
  WEBHOOK_ALLOW_PRIVATE_URLS  as for the API (npm start -- --help)
  LOG_LEVEL             info by default (one line per batch at debug)
`;

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  loadDotEnv();
  const config = loadApiConfig({ ...process.env, WEBHOOK_WORKER: "true" });
  if (!config.databaseUrl) {
    throw new ConfigError("DATABASE_URL is not set: a separate webhook worker shares the API's Postgres store (the default PGlite store belongs to the API process, which delivers webhooks itself).");
  }
  const logger = pino({ level: config.logLevel, base: { service: "chainbill-webhook-worker" } });
  const store = await openStore({ databaseUrl: config.databaseUrl, directory: config.storeDirectory });
  const worker = createWorker(workerOptions(config.webhooks, store, logger, config.operatorKeySecret));
  logger.info({ worker: worker.id, batchSize: config.webhooks.batchSize, retrySchedule: config.webhooks.retrySchedule }, "webhook worker started");
  onShutdown(async () => {
    await worker.stop();
    await store.close();
    logger.info({ worker: worker.id }, "webhook worker stopped");
  });
  worker.wake();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof ConfigError ? error.message : (error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
