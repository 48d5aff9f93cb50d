/**
 * Which chains chainbill watches, from the environment, with the contracts of each read from
 * `deployments/<chainId>.json`. Shared by the Ponder config and the API.
 *
 *   CHAINBILL_CHAINS  comma-separated `<chainId>=<rpcUrl>` pairs (default: 31337=$RPC_URL or the local node)
 *   DEPLOYMENTS_DIR   where the deployment files are (default: deployments/ at the repository root)
 */
import { readDeployment, DEPLOYMENTS_DIR, type Deployment } from "../contracts/addresses";

export interface ChainSetting {
  /** Ponder chain name: `chain<id>`. */
  name: string;
  id: number;
  rpcUrl: string;
  /** Websocket URL for new heads (derived for local nodes, or `<NAME>_WS_URL`). */
  wsUrl?: string;
  deployment: Deployment;
}

const LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"];

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

function websocketFor(rpcUrl: string, id: number, env: NodeJS.ProcessEnv): string | undefined {
  const explicit = env[`CHAIN_${id}_WS_URL`];
  if (explicit) return explicit;
  const url = new URL(rpcUrl);
  // Hardhat's node serves websockets on its HTTP port; Ponder then follows new heads instead of polling.
  if (LOCAL_HOSTS.includes(url.hostname)) return rpcUrl.replace(/^http/, "ws");
  return undefined;
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
    return { name: `chain${id}`, id, rpcUrl, wsUrl: websocketFor(rpcUrl, id, env), deployment };
  });
}
