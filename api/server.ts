/**
 * The API process: builds the dependencies once (configuration, store, indexed reader, chains, operator,
 * freshness watchdog, logger), checks that the configured secrets open what is stored, and serves the app on
 * its own HTTP server (`API_HOST:API_PORT`). Ponder's own server stays on an internal loopback port: its
 * `/metrics`, `/status` and optional query APIs are never the public surface.
 */
import { serve, type ServerType } from "@hono/node-server";
import pino from "pino";
import { isLocalChain, loadChains } from "../contracts/chains";
import { createApp } from "./app";
import { createChainRuntime, type ChainRuntime } from "./chains";
import { ConfigError, loadApiConfig } from "./config";
import type { ApiDeps } from "./env";
import { createFreshness, ponderSchema, type StallRecovery } from "./freshness";
import { createIndexedReader, type IndexedDb } from "./indexed";
import { createInvoiceRows } from "./invoices/rows";
import { createOperator, secretOpens } from "./operator";
import { openStore, type Store } from "./store";
import { merchants } from "./store/schema";
import { startWebhooks } from "./webhooks/service";
import { startBitcoin } from "./bitcoin/service";
import { startDepositWatcher } from "./deposits/watcher";
import { chainlinkReader } from "./prices/chainlink";
import { loadPriceFeeds, PriceFeedConfigError } from "./prices/config";
import { createPriceSource } from "./prices/source";
import { DEFAULT_REPRICE_INTERVAL_MS, startPlanRepricer } from "./subscriptions/fiat";

/** Stops with a message that says what to do when OPERATOR_KEY_SECRET cannot open the stored operator keys. */
async function checkOperatorSecret(store: Store, secret: Buffer, generated: boolean, dataDirectory: string): Promise<void> {
  const [sample] = await store.db.select({ id: merchants.id, encrypted: merchants.signerKeyEncrypted }).from(merchants).limit(1);
  if (!sample || secretOpens(sample.encrypted, secret)) return;
  throw new ConfigError(
    `OPERATOR_KEY_SECRET does not open the operator keys already stored (merchant ${sample.id}): it is not the secret they were encrypted with. ` +
      (generated
        ? `The generated secret in ${dataDirectory}/operator-key-secret was replaced or lost. `
        : "It was changed since they were created. ") +
      "Restore the previous secret (OPERATOR_KEY_SECRET, or the operator-key-secret file of the data directory). Nothing was changed.",
  );
}

/** Thrown (uncaught) to make Ponder shut down cleanly and exit with code 75, its "retryable" exit code. */
export class IndexStalledError extends Error {
  override name = "IndexStalledError";
}

/**
 * Recovery of a stalled index, step by step: on a local node, one empty block (an indexer waiting for a new
 * head gets one); once stalled for `restartSeconds`, a restart — the uncaught IndexStalledError makes Ponder
 * shut down and exit 75, and the supervisor (npm start, systemd, Kubernetes…) starts it again.
 */
export function stallRecovery(restartSeconds: number): StallRecovery {
  return async (chain, state, stalledForMs) => {
    if (restartSeconds > 0 && stalledForMs >= restartSeconds * 1000) {
      const reason = `chain ${chain.id} indexed nothing for ${Math.round(stalledForMs / 1000)} s (indexed ${state.indexedBlock}, head ${state.headBlock})`;
      setImmediate(() => {
        throw new IndexStalledError(`${reason}: restarting the indexer (exit 75)`);
      });
      return `${reason}: exiting with code 75 so the supervisor restarts the indexer`;
    }
    if (isLocalChain(chain.id)) {
      await chain.client.request({ method: "evm_mine" as never, params: [] as never });
      return `mined one block on local chain ${chain.id} (indexed ${state.indexedBlock}, head ${state.headBlock})`;
    }
    return undefined;
  };
}

export async function buildDeps(indexedDb: IndexedDb): Promise<ApiDeps> {
  const settings = loadChains();
  const config = loadApiConfig(process.env, settings.filter((setting) => !isLocalChain(setting.id)).map((setting) => setting.id));
  const logger = pino({ level: config.logLevel, base: { service: "chainbill-api" } });
  const store = await openStore({ databaseUrl: config.databaseUrl, directory: config.storeDirectory });
  await checkOperatorSecret(store, config.operatorKeySecret, config.generatedSecrets.includes("operator-key-secret"), config.dataDirectory);
  const chains = new Map<number, ChainRuntime>(settings.map((setting) => [setting.id, createChainRuntime(setting)]));
  let priceFeeds: ReturnType<typeof loadPriceFeeds>;
  try {
    priceFeeds = loadPriceFeeds(settings, process.env);
  } catch (error) {
    if (error instanceof PriceFeedConfigError) throw new ConfigError(error.message);
    throw error;
  }
  if (config.generatedSecrets.length > 0) {
    logger.info({ secrets: config.generatedSecrets, directory: config.dataDirectory }, "using generated secrets kept in the data directory");
  }
  const freshness = createFreshness({
    db: indexedDb,
    schema: ponderSchema(),
    chains,
    stallSeconds: config.indexStallSeconds,
    maxLagBlocks: config.indexMaxLagBlocks,
    logger,
    recover: stallRecovery(config.indexRestartSeconds),
  });
  // Read before Ponder resumes indexing (it does once this module has loaded): tells a crash recovery apart.
  await freshness.initialized;
  const indexed = createIndexedReader(indexedDb);
  // A module reload (`ponder dev`) builds new dependencies: the previous deriver and worker stop first.
  await globalThis.chainbillWebhooks?.stop();
  const webhooks = startWebhooks({ config, store, indexed, chains, freshness, logger });
  globalThis.chainbillWebhooks = webhooks;
  await globalThis.chainbillDeposits?.stop();
  globalThis.chainbillDeposits = startDepositWatcher({
    store,
    indexed,
    chains,
    logger,
    pollMs: DEPOSIT_POLL_MS,
    lookbackSeconds: DEPOSIT_LOOKBACK_SECONDS,
    onEvents: () => webhooks.wake(),
  });
  await globalThis.chainbillBitcoin?.watcher.stop();
  const bitcoin = config.bitcoin ? startBitcoin(config.bitcoin, store, logger) : undefined;
  globalThis.chainbillBitcoin = bitcoin;
  const deps: ApiDeps = {
    config,
    store,
    indexed,
    chains,
    logger,
    operator: createOperator({ secret: config.operatorKeySecret, logger }),
    freshness,
    invoiceRows: createInvoiceRows(store.db),
    webhooks,
    bitcoin,
    prices: createPriceSource({ feeds: (chainId) => priceFeeds.get(chainId), reader: chainlinkReader(chains) }),
  };
  await globalThis.chainbillRepricer?.stop();
  globalThis.chainbillRepricer = startPlanRepricer(deps, repriceIntervalMs(process.env));
  return deps;
}

/** PLAN_REPRICE_INTERVAL_MS: how often fiat plans are compared with the current rate (default 60 s, at least 100 ms). */
function repriceIntervalMs(env: NodeJS.ProcessEnv): number {
  const raw = env.PLAN_REPRICE_INTERVAL_MS;
  if (raw === undefined || raw === "") return DEFAULT_REPRICE_INTERVAL_MS;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 100) throw new ConfigError(`PLAN_REPRICE_INTERVAL_MS must be an integer of at least 100 (milliseconds), not "${raw}"`);
  return value;
}

/** How often the deposit watcher checks each chain's head (it reads deposit addresses once per new block). */
const DEPOSIT_POLL_MS = 500;
/** Deposit addresses are watched until a week after their invoice expired (late payments are reported too). */
const DEPOSIT_LOOKBACK_SECONDS = 7 * 86_400;

declare global {
  var chainbillWebhooks: import("./webhooks/service").Webhooks | undefined;
  var chainbillDeposits: import("./deposits/watcher").DepositWatcher | undefined;
  var chainbillRepricer: import("./subscriptions/fiat").PlanRepricer | undefined;
  var chainbillBitcoin: { watcher: import("./bitcoin/watcher").BitcoinWatcher } | undefined;
  // The server survives a module reload (`ponder dev`): the new app is swapped in behind it.
  var chainbillApiServer: { server: ServerType; fetch: (request: Request, env: unknown) => Response | Promise<Response> } | undefined;
}

/** Builds the API and serves it on `API_HOST:API_PORT`. */
export async function startApiServer(indexedDb: IndexedDb): Promise<ApiDeps> {
  const deps = await buildDeps(indexedDb);
  const app = createApp(deps);
  const fetch = (request: Request, env: unknown) => app.fetch(request, env);
  if (globalThis.chainbillApiServer) {
    globalThis.chainbillApiServer.fetch = fetch;
  } else {
    const holder = { fetch, server: undefined as unknown as ServerType };
    await new Promise<void>((resolve, reject) => {
      holder.server = serve({ fetch: (request, env) => holder.fetch(request, env), port: deps.config.port, hostname: deps.config.host }, () => resolve());
      holder.server.once("error", reject);
    });
    globalThis.chainbillApiServer = holder;
    deps.logger.info({ url: `http://${deps.config.host}:${deps.config.port}` }, "chainbill API listening");
  }
  return deps;
}
