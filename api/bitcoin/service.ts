/** Starts the Bitcoin chain source and watcher configured by BITCOIN_* (api/config.ts), when BTC is on. */
import type { Logger } from "pino";
import type { BitcoinConfig } from "../config";
import type { Store } from "../store";
import { createBitcoinCoreSource, createEsploraSource, type ChainSource } from "./source";
import { createBitcoinWatcher, type BitcoinWatcher } from "./watcher";

export function bitcoinSource(config: BitcoinConfig): ChainSource {
  return config.source.kind === "esplora" ? createEsploraSource(config.source.url) : createBitcoinCoreSource(config.source.url, config.source.auth);
}

export function startBitcoin(config: BitcoinConfig, store: Store, logger: Logger): { source: ChainSource; watcher: BitcoinWatcher } {
  const source = bitcoinSource(config);
  const watcher = createBitcoinWatcher({ db: store.db, source, network: config.network, logger });
  watcher.start(config.pollMs);
  logger.info({ network: config.network, source: source.name }, "bitcoin watcher started");
  return { source, watcher };
}
