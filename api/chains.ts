/**
 * Per-chain runtime for the API: contract addresses, a viem public client, the token registry, a briefly
 * cached head block number (confirmation counts) and the escrow's current protocol fee (signed into invoices
 * as the highest fee the merchant accepts).
 */
import { createPublicClient, http, isAddressEqual, type Address, type PublicClient } from "viem";
import { billingEscrowAbi } from "../contracts/abi";
import { depositImplementation } from "../contracts/invoice";
import type { ChainSetting } from "../contracts/chains";
import type { HeadTime } from "./clock";
import { tokenRegistry, type CachedToken, type TokenInfo } from "./tokens";

export interface ChainRuntime {
  id: number;
  escrow: Address;
  subscriptions: Address;
  client: PublicClient;
  tokens: TokenInfo[];
  /** Head block number, cached for `HEAD_CACHE_MS`; never below a block `observeBlock` was told exists. */
  headBlock(): Promise<bigint>;
  /**
   * Tells the runtime block `number` exists (the index has it): the cached head is raised to it, so a count of
   * confirmations read right after an `invoice.confirmed` is never below the event's.
   */
  observeBlock(number: bigint): void;
  /** The escrow's fee rate for new payments (basis points), cached for `FEE_CACHE_MS`. */
  protocolFeeBps(): Promise<number>;
  /**
   * Whether the escrow has deposit addresses (its `DEPOSIT_IMPLEMENTATION` is the forwarder `contracts/invoice.ts`
   * computes addresses from). An older deployment must never advertise an address nobody would sweep. Read once;
   * an unreachable node answers false without caching, so the next invoice asks again.
   */
  depositsSupported(): Promise<boolean>;
  /** Per-chain caches, built with the runtime: tokens read on-chain (api/tokens.ts), the head's time (api/clock.ts). */
  caches: { tokens: Map<string, CachedToken>; headTime: { known?: HeadTime; pending?: Promise<HeadTime> } };
}

const HEAD_CACHE_MS = 500;
/** How long a block the index showed raises the cached head (a reorg may take it back later). */
const OBSERVED_FOR_MS = 2_000;
const FEE_CACHE_MS = 5_000;

export function createChainRuntime(setting: ChainSetting): ChainRuntime {
  const client = createPublicClient({ transport: http(setting.rpcUrl, { batch: false }) }) as PublicClient;
  const tokens = tokenRegistry(setting.id, setting.deployment);
  let head: { value: bigint; at: number } | undefined;
  let observed = { value: 0n, at: 0 };
  let pending: Promise<bigint> | undefined;
  let fee: { value: number; at: number } | undefined;
  let deposits: boolean | undefined;
  const escrow = setting.deployment.contracts.BillingEscrow.address;
  return {
    id: setting.id,
    escrow,
    subscriptions: setting.deployment.contracts.SubscriptionManager.address,
    client,
    tokens,
    caches: { tokens: new Map(), headTime: {} },
    async headBlock() {
      // What the index showed a moment ago exists; older than that, a reorg may have taken it back.
      const floor = Date.now() - observed.at < OBSERVED_FOR_MS ? observed.value : 0n;
      if (head && Date.now() - head.at < HEAD_CACHE_MS) return head.value > floor ? head.value : floor;
      pending ??= client.getBlockNumber({ cacheTime: 0 }).finally(() => (pending = undefined));
      const value = await pending;
      head = { value, at: Date.now() };
      return value > floor ? value : floor;
    },
    observeBlock(number: bigint) {
      observed = { value: number, at: Date.now() };
    },
    async protocolFeeBps() {
      if (fee && Date.now() - fee.at < FEE_CACHE_MS) return fee.value;
      const [, feeBps] = await client.readContract({ address: escrow, abi: billingEscrowAbi, functionName: "config" });
      fee = { value: feeBps, at: Date.now() };
      return feeBps;
    },
    async depositsSupported() {
      if (deposits !== undefined) return deposits;
      try {
        const implementation = await client.readContract({ address: escrow, abi: billingEscrowAbi, functionName: "DEPOSIT_IMPLEMENTATION" });
        deposits = isAddressEqual(implementation, depositImplementation(escrow));
      } catch (error) {
        // A contract without the function reverts (no deposits, for good); a transport error is asked again later.
        if (error instanceof Error && /revert|returned no data|execution reverted/i.test(error.message)) deposits = false;
        else return false;
      }
      return deposits;
    },
  };
}
