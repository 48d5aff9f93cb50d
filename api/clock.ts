/**
 * Chain time. The escrow compares `block.timestamp` with an invoice's `expiresAt` and `fulfillBy`, so the API
 * does too: "now" on a chain is the later of the wall clock and the head block's timestamp (a chain whose
 * clock runs ahead, like a test node after `evm_increaseTime`, is believed). The head's timestamp is fetched
 * once per new head (the head number itself comes from the chain runtime's short cache), so reading the clock
 * costs no RPC call while the head does not move.
 */
import type { ChainRuntime } from "./chains";

export interface HeadTime {
  block: bigint;
  timestamp: bigint;
}


function wallSeconds(): bigint {
  return BigInt(Math.floor(Date.now() / 1000));
}

async function headTime(chain: ChainRuntime): Promise<HeadTime> {
  const block = await chain.headBlock();
  const cache = chain.caches.headTime;
  const known = cache.known;
  if (known && known.block >= block) return known;
  let request = cache.pending;
  if (!request) {
    request = chain.client
      .getBlock({ blockNumber: block })
      .then((fetched) => {
        const value = { block: fetched.number ?? block, timestamp: fetched.timestamp };
        const current = cache.known;
        if (!current || current.block < value.block) cache.known = value;
        return value;
      })
      .finally(() => (cache.pending = undefined));
    cache.pending = request;
  }
  return request;
}

/** Unix seconds "now" on `chain`. Falls back to the wall clock when the node cannot be reached. */
export async function chainNow(chain: ChainRuntime | undefined): Promise<bigint> {
  const wall = wallSeconds();
  if (!chain) return wall;
  try {
    const head = await headTime(chain);
    return head.timestamp > wall ? head.timestamp : wall;
  } catch {
    const known = chain.caches.headTime.known;
    return known && known.timestamp > wall ? known.timestamp : wall;
  }
}
