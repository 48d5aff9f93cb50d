/**
 * Webhooks in the API process: the event deriver (every 100 ms) and, unless WEBHOOK_WORKER=false, a delivery
 * worker woken as soon as new events are stored. Standalone workers (`npm run webhooks:worker`) share the
 * store with it safely.
 */
import type { Logger } from "pino";
import type { ChainRuntime } from "../chains";
import type { ApiConfig } from "../config";
import type { Freshness } from "../freshness";
import type { IndexedReader } from "../indexed";
import type { Store } from "../store";
import { raiseAlert } from "../alerts";
import { createDeriver, type Deriver } from "./deriver";
import { createSender } from "./send";
import { createWorker, type Worker, type WorkerOptions } from "./worker";

export interface Webhooks {
  deriver: Deriver;
  worker: Worker | undefined;
  /** Wakes the local worker (new events or deliveries queued by this process). */
  wake(): void;
  stop(): Promise<void>;
}

const DERIVE_EVERY_MS = 100;

/** The notice of an endpoint disabled after a long run of failures: an `endpoint_disabled` alert (and its event). */
export function endpointDisabledNotice(store: Store): WorkerOptions["onEndpointDisabled"] {
  return async (endpoint) => {
    await raiseAlert(
      store.db,
      endpoint.merchantId,
      "endpoint_disabled",
      `Webhook endpoint ${endpoint.id} (${endpoint.url}) was disabled: ${endpoint.reason}`,
      { endpointId: endpoint.id, url: endpoint.url, reason: endpoint.reason },
      `${endpoint.id}:${Date.now()}`,
    );
  };
}

export function workerOptions(config: ApiConfig["webhooks"], store: Store, logger: Logger, secretKey: Buffer): WorkerOptions {
  return {
    onEndpointDisabled: endpointDisabledNotice(store),
    store,
    logger,
    secretKey,
    sender: createSender({ allowPrivate: config.allowPrivateUrls, timeoutMs: config.timeoutMs }),
    retrySchedule: config.retrySchedule,
    disableAfterSeconds: config.disableAfterSeconds,
    batchSize: config.batchSize,
    pollMs: 250,
    timeoutMs: config.timeoutMs,
  };
}

export function startWebhooks(options: {
  config: ApiConfig;
  store: Store;
  indexed: IndexedReader;
  chains: Map<number, ChainRuntime>;
  freshness: Freshness;
  logger: Logger;
}): Webhooks {
  const { config, logger } = options;
  const worker = config.webhooks.runWorker ? createWorker(workerOptions(config.webhooks, options.store, logger, config.operatorKeySecret)) : undefined;
  const deriver = createDeriver({
    store: options.store,
    indexed: options.indexed,
    chains: options.chains,
    freshness: options.freshness,
    logger,
    reorgWindowBlocks: config.webhooks.reorgWindowBlocks,
    onEvents: () => worker?.wake(),
    deps: { indexed: options.indexed, chains: options.chains },
  });
  let stopped = false;
  let failures = 0;
  const loop = (async () => {
    while (!stopped) {
      const started = Date.now();
      try {
        await deriver.tick();
        failures = 0;
      } catch (error) {
        failures += 1;
        if (failures === 1 || failures % 100 === 0) logger.error({ err: error, failures }, "deriving webhook events failed; retrying");
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(10, DERIVE_EVERY_MS - (Date.now() - started))));
    }
  })();
  worker?.wake();
  return {
    deriver,
    worker,
    wake: () => worker?.wake(),
    async stop() {
      stopped = true;
      await loop;
      await worker?.stop();
    },
  };
}
