/**
 * Per-chain runtime for the API: contract addresses, a viem public client, the token registry, and a briefly
 * cached head block number for confirmation counts.
 */
import { createPublicClient, http, zeroAddress, type Address, type PublicClient } from "viem";
import type { ChainSetting } from "../indexer/chains";

export interface TokenInfo {
  symbol: string;
  address: Address;
  decimals: number;
}

export interface ChainRuntime {
  id: number;
  escrow: Address;
  subscriptions: Address;
  client: PublicClient;
  tokens: TokenInfo[];
  /** Head block number, cached for `HEAD_CACHE_MS`. */
  headBlock(): Promise<bigint>;
}

const HEAD_CACHE_MS = 500;

/** Stablecoins known per public test network (Circle's USDC). */
const KNOWN_TOKENS: Record<number, TokenInfo[]> = {
  11155111: [{ symbol: "USDC", address: "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238", decimals: 6 }],
  84532: [{ symbol: "USDC", address: "0x036CbD53842c5426634e7929541eC2318f3dCF7e", decimals: 6 }],
};

export function createChainRuntime(setting: ChainSetting): ChainRuntime {
  const client = createPublicClient({ transport: http(setting.rpcUrl, { batch: false }) }) as PublicClient;
  const tokens: TokenInfo[] = [{ symbol: "ETH", address: zeroAddress, decimals: 18 }, ...(KNOWN_TOKENS[setting.id] ?? [])];
  const mock = setting.deployment.contracts.MockStablecoin;
  if (mock) tokens.push({ symbol: "USDC", address: mock.address, decimals: 6 });
  let head: { value: bigint; at: number } | undefined;
  let pending: Promise<bigint> | undefined;
  return {
    id: setting.id,
    escrow: setting.deployment.contracts.BillingEscrow.address,
    subscriptions: setting.deployment.contracts.SubscriptionManager.address,
    client,
    tokens,
    async headBlock() {
      if (head && Date.now() - head.at < HEAD_CACHE_MS) return head.value;
      pending ??= client.getBlockNumber({ cacheTime: 0 }).finally(() => (pending = undefined));
      const value = await pending;
      head = { value, at: Date.now() };
      return value;
    },
  };
}

/** Finds a token by symbol (case-insensitive) or address on a chain. */
export function findToken(chain: ChainRuntime, currency: string): TokenInfo | undefined {
  const wanted = currency.toLowerCase();
  return chain.tokens.find((token) => token.symbol.toLowerCase() === wanted || token.address.toLowerCase() === wanted);
}
