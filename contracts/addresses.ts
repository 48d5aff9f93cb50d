/**
 * Deployed addresses per chain, read from `deployments/<chainId>.json` (written by scripts/deploy.ts).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Address, Hash } from "viem";

export interface ContractDeployment {
  address: Address;
  /** Block of the deployment transaction: where indexers start. */
  blockNumber: number;
  transactionHash: Hash;
}

/**
 * A Chainlink price feed (AggregatorV3Interface) the API reads for fiat prices (api/prices, docs/PRICES.md).
 * Local deployments carry `MockV3Aggregator`s; public chains' real feeds are configured with
 * `CHAIN_<id>_PRICE_FEEDS` (or recorded here by hand).
 */
export interface PriceFeedDeployment {
  address: Address;
  /** Decimals of the answer (Chainlink's USD pairs use 8). */
  decimals: number;
  /** The feed's heartbeat: it publishes a new round at least this often; older answers are stale. */
  heartbeatSeconds: number;
  blockNumber?: number;
  transactionHash?: Hash;
}

export interface Deployment {
  chainId: number;
  network: string;
  deployer: Address;
  deployedAt: string;
  /** Constructor parameters of the protocol contracts. */
  parameters: { owner: Address; feeRecipient: Address; feeBps: number; disputePeriod: number };
  contracts: {
    BillingEscrow: ContractDeployment;
    SubscriptionManager: ContractDeployment;
    /** Only on local chains: a mock stablecoin for demos and tests. */
    MockStablecoin?: ContractDeployment;
  };
  /** Price feeds by pair (`ETH/USD`, `USDC/USD`, `BTC/USD`, `EUR/USD`, `CNY/USD`): mocks on local chains. */
  priceFeeds?: Record<string, PriceFeedDeployment>;
}

export const DEPLOYMENTS_DIR = path.join(__dirname, "..", "deployments");

export function deploymentPath(chainId: number, directory = DEPLOYMENTS_DIR): string {
  return path.join(directory, `${chainId}.json`);
}

/** The deployment on `chainId`, or undefined when there is none. */
export function readDeployment(chainId: number, directory = DEPLOYMENTS_DIR): Deployment | undefined {
  const file = deploymentPath(chainId, directory);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as Deployment;
}
