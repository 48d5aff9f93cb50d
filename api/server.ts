/**
 * Builds the API's dependencies (configuration, store, indexed reader, chains, logger) once per process.
 */
import pino from "pino";
import { loadChains } from "../indexer/chains";
import { createApp } from "./app";
import { createChainRuntime, type ChainRuntime } from "./chains";
import { loadApiConfig } from "./config";
import type { ApiDeps } from "./env";
import { createIndexedReader, type IndexedDb } from "./indexed";
import { openStore } from "./store";

export async function buildDeps(indexedDb: IndexedDb): Promise<ApiDeps> {
  const config = loadApiConfig();
  const logger = pino({ level: config.logLevel, base: { service: "chainbill-api" } });
  const store = await openStore({ databaseUrl: config.databaseUrl, directory: config.storeDirectory });
  const chains = new Map<number, ChainRuntime>(loadChains().map((setting) => [setting.id, createChainRuntime(setting)]));
  if (config.adminApiKeyGenerated) {
    logger.warn({ adminApiKey: config.adminApiKey }, "ADMIN_API_KEY was not set: generated one for this run");
  }
  logger.info({ store: store.kind, chains: [...chains.keys()] }, "chainbill API ready");
  return { config, store, indexed: createIndexedReader(indexedDb), chains, logger };
}

export async function startApi(indexedDb: IndexedDb) {
  return createApp(await buildDeps(indexedDb));
}
