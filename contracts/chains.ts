/**
 * Which chains this installation of chainbill runs on, from the environment, with the contracts of each read
 * from `deployments/<chainId>.json`. The one home of chain configuration: the indexer (ponder.config.ts), the
 * API and the scripts all read it from here.
 *
 *   CHAINBILL_CHAINS           comma-separated `<chainId>=<rpcUrl>` pairs (default: 31337=$RPC_URL or the local node)
 *   CHAIN_<id>_WS_URL          websocket of chain <id> for new heads (default: none, the indexer polls)
 *   CHAIN_<id>_INDEXER_RPC_URL RPC URL the indexer uses for chain <id> (default: the chain's URL); e.g. an
 *                              archive endpoint with its own rate limit, while the API keeps the main one
 *   DEPLOYMENTS_DIR            where the deployment files are (default: deployments/ at the repository root)
 */
import { readDeployment, DEPLOYMENTS_DIR, type Deployment } from "./addresses";

export interface ChainSetting {
  /** Ponder chain name: `chain<id>`. */
  name: string;
  id: number;
  rpcUrl: string;
  /** RPC URL of the indexer (`CHAIN_<id>_INDEXER_RPC_URL`, default `rpcUrl`). */
  indexerRpcUrl: string;
  /** Websocket URL for new heads (`CHAIN_<id>_WS_URL`); without it the indexer polls. */
  wsUrl?: string;
  deployment: Deployment;
}

/** Chain ids that only ever mean a local development node (Hardhat's defaults and a second test chain). */
export const LOCAL_CHAIN_IDS: ReadonlySet<number> = new Set([31337, 31338, 1337]);

/** Whether `chainId` is a local development chain (mock stablecoin deployed, time travel allowed). */
export function isLocalChain(chainId: number): boolean {
  return LOCAL_CHAIN_IDS.has(chainId);
}

export function parseChainList(raw: string): { id: number; rpcUrl: string }[] {
  return raw
    .split(",")
    .map((entry) => entry.trim())
    .filter(Boolean)
    .map((entry) => {
      const separator = entry.indexOf("=");
      const id = Number(entry.slice(0, separator));
      const rpcUrl = entry.slice(separator + 1);
      if (separator < 1 || !Number.isInteger(id) || id <= 0 || !/^https?:\/\//.test(rpcUrl)) {
        throw new Error(`CHAINBILL_CHAINS entry "${entry}" must look like 31337=http://127.0.0.1:8545`);
      }
      return { id, rpcUrl };
    });
}

/**
 * The websocket the indexer follows new heads on: only an explicit `CHAIN_<id>_WS_URL`. Local nodes are polled
 * (every 100 ms): Hardhat drops a `newHeads` subscription five minutes after it is made without closing the
 * socket (its filters expire unless polled), and Ponder never notices a subscription that goes quiet, so a
 * websocket to a local node stops indexing after five minutes (measured; see docs/ARCHITECTURE.md).
 */
function websocketFor(id: number, env: NodeJS.ProcessEnv): string | undefined {
  return env[`CHAIN_${id}_WS_URL`] || undefined;
}

export function loadChains(env: NodeJS.ProcessEnv = process.env): ChainSetting[] {
  const raw = env.CHAINBILL_CHAINS || `31337=${env.RPC_URL || "http://127.0.0.1:8545"}`;
  const directory = env.DEPLOYMENTS_DIR || DEPLOYMENTS_DIR;
  return parseChainList(raw).map(({ id, rpcUrl }) => {
    const deployment = readDeployment(id, directory);
    if (!deployment) {
      throw new Error(
        `No deployment for chain ${id} in ${directory}: deploy first (npx hardhat deploy --network <name>, or npm start).`,
      );
    }
    const indexerRpcUrl = env[`CHAIN_${id}_INDEXER_RPC_URL`] || rpcUrl;
    return { name: `chain${id}`, id, rpcUrl, indexerRpcUrl, wsUrl: websocketFor(id, env), deployment };
  });
}
