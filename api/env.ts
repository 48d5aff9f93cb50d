/**
 * What every route receives: dependencies (`ApiDeps`) and the per-request variables set by middleware.
 */
import type { Logger } from "pino";
import type { ApiConfig } from "./config";
import type { Store } from "./store";
import type { IndexedReader } from "./indexed";
import type { ChainRuntime } from "./chains";
import type { merchants } from "./store/schema";

export interface ApiDeps {
  config: ApiConfig;
  store: Store;
  indexed: IndexedReader;
  chains: Map<number, ChainRuntime>;
  logger: Logger;
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
  };
}
