/**
 * What every route receives: dependencies (`ApiDeps`, built once per process by api/server.ts) and the
 * per-request variables set by middleware.
 */
import type { Logger } from "pino";
import type { ApiConfig } from "./config";
import type { Store } from "./store";
import type { IndexedReader } from "./indexed";
import type { ChainRuntime } from "./chains";
import type { Freshness } from "./freshness";
import type { Remember } from "./idempotency";
import type { InvoiceRows } from "./invoices/rows";
import type { Operator } from "./operator";
import type { merchants } from "./store/schema";
import type { Webhooks } from "./webhooks/service";
import type { ChainSource } from "./bitcoin/source";
import type { BitcoinWatcher } from "./bitcoin/watcher";
import type { PriceSource } from "./prices/types";

export interface ApiDeps {
  config: ApiConfig;
  store: Store;
  indexed: IndexedReader;
  chains: Map<number, ChainRuntime>;
  logger: Logger;
  /** Sends transactions with merchants' operator keys (one path, one queue per operator). */
  operator: Operator;
  /** How current the indexed data is, per chain (and the watchdog that recovers a stalled index). */
  freshness: Freshness;
  /** Stored invoices, cached briefly (they are immutable once created). */
  invoiceRows: InvoiceRows;
  /** The event deriver and the local delivery worker (absent in tests that build the app alone). */
  webhooks?: Webhooks;
  /** The Bitcoin chain source and watcher, when BTC is enabled (api/bitcoin). */
  bitcoin?: { source: ChainSource; watcher: BitcoinWatcher };
  /** Exchange rates for fiat prices (api/prices; absent in tests that build the app alone: no fiat prices). */
  prices?: PriceSource;
}

export type MerchantRecord = typeof merchants.$inferSelect;

export interface Principal {
  kind: "admin" | "merchant";
  merchant?: MerchantRecord;
  apiKeyId?: string;
  scopes: ReadonlySet<string>;
}

export interface AppEnv {
  Variables: {
    requestId: string;
    principal: Principal;
    /** Set by `idempotent()`: stores the response in the route's own transaction. */
    remember?: Remember;
  };
}
