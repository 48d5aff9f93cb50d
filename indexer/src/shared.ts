/**
 * Handlers shared by both contracts: claimable balances (payouts that could not be delivered) and protocol
 * administration events.
 */
import type { Hex } from "viem";
import { claimable, claimEvent, protocolEvent } from "ponder:schema";
import { replaceBigInts } from "ponder";
import { eventId, locate } from "./ledger";

interface AnyEvent {
  args: unknown;
  block: { timestamp: bigint; number: bigint };
  transaction: { hash: Hex };
  log: { logIndex: number; address: Hex };
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyContext = { chain: { id: number }; db: any };

export async function recordClaimable(context: AnyContext, event: AnyEvent, account: Hex, token: Hex, delta: bigint) {
  const chainId = context.chain.id;
  await context.db
    .insert(claimable)
    .values({ chainId, contract: event.log.address, account, token, balance: delta, updatedAt: event.block.timestamp })
    .onConflictDoUpdate((row: { balance: bigint }) => ({ balance: row.balance + delta, updatedAt: event.block.timestamp }));
}

/** A payout deferred to a claimable balance (`to` undefined) or a claim of one, as a row of `claim_event`. */
export async function recordClaimEvent(context: AnyContext, event: AnyEvent, kind: "deferred" | "claimed", account: Hex, token: Hex, amount: bigint, to?: Hex) {
  const at = locate(context.chain.id, event);
  await context.db.insert(claimEvent).values({
    id: eventId(at),
    chainId: at.chainId,
    contract: event.log.address,
    kind,
    account,
    token,
    to: to ?? null,
    amount,
    timestamp: at.timestamp,
    blockNumber: at.blockNumber,
    transactionHash: at.transactionHash,
  });
}

export async function recordProtocolEvent(context: AnyContext, event: AnyEvent, name: string) {
  const at = locate(context.chain.id, event);
  await context.db.insert(protocolEvent).values({
    id: eventId(at),
    chainId: at.chainId,
    contract: event.log.address,
    name,
    args: replaceBigInts(event.args as Record<string, unknown>, (value) => value.toString()),
    timestamp: at.timestamp,
    blockNumber: at.blockNumber,
    transactionHash: at.transactionHash,
  });
}
