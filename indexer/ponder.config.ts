/**
 * Ponder configuration: both chainbill contracts on every chain listed in CHAINBILL_CHAINS, addresses and start
 * blocks from deployments/. PGlite by default, Postgres when DATABASE_URL is set.
 */
import path from "node:path";
import { createConfig } from "ponder";
import { billingEscrowAbi, subscriptionManagerAbi } from "../contracts/abi";
import { isLocalChain, loadChains } from "../contracts/chains";

const chains = loadChains();


export default createConfig({
  database: process.env.DATABASE_URL
    ? { kind: "postgres", connectionString: process.env.DATABASE_URL }
    : { kind: "pglite", directory: path.resolve(process.env.PGLITE_DIR || ".data/ponder") },
  chains: Object.fromEntries(
    chains.map((chain) => [
      chain.name,
      {
        id: chain.id,
        // Ponder rate-limits each RPC URL on its own (starting at 20 req/s): listing a local node several times
        // lifts backfill from ~4,200 to ~6,300 events/s here (see bench/api.md). Remote URLs keep their limits.
        rpc: isLocalChain(chain.id) ? Array.from({ length: 4 }, () => chain.indexerRpcUrl) : chain.indexerRpcUrl,
        ws: chain.wsUrl,
        // Local nodes restart from scratch: never trust a cached RPC response for them.
        disableCache: isLocalChain(chain.id),
        pollingInterval: isLocalChain(chain.id) ? 100 : undefined,
      },
    ]),
  ),
  contracts: {
    BillingEscrow: {
      abi: billingEscrowAbi,
      chain: Object.fromEntries(
        chains.map((chain) => [
          chain.name,
          {
            address: chain.deployment.contracts.BillingEscrow.address,
            startBlock: chain.deployment.contracts.BillingEscrow.blockNumber,
          },
        ]),
      ),
    },
    SubscriptionManager: {
      abi: subscriptionManagerAbi,
      chain: Object.fromEntries(
        chains.map((chain) => [
          chain.name,
          {
            address: chain.deployment.contracts.SubscriptionManager.address,
            startBlock: chain.deployment.contracts.SubscriptionManager.blockNumber,
          },
        ]),
      ),
    },
  },
});
