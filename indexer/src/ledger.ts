/**
 * Ledger rows: one per movement of a merchant's balance held in the contracts, signed from the merchant's
 * point of view. Every handler that moves money calls `recordMovement`; the id (chain, transaction, log index,
 * part) makes replays after a reorg or restart idempotent.
 */
import type { Hex } from "viem";
import { ledger } from "ponder:schema";

export type LedgerKind =
  | "payment"
  | "refund"
  | "release"
  | "fee"
  | "subscription_charge"
  | "subscription_refund"
  | "withdrawal";

export interface EventLocation {
  chainId: number;
  timestamp: bigint;
  blockNumber: bigint;
  transactionHash: Hex;
  logIndex: number;
}

export interface Movement {
  merchantId: bigint;
  counterparty: Hex;
  token: Hex;
  /** Signed: positive when the merchant's held balance grows. */
  amount: bigint;
  kind: LedgerKind;
  reference: string;
}

// The indexing store's insert builder; typed loosely so the helper works from every handler's context.
interface LedgerDb {
  insert: (table: typeof ledger) => { values: (row: typeof ledger.$inferInsert) => PromiseLike<unknown> };
}

export async function recordMovement(db: LedgerDb, at: EventLocation, movement: Movement, part = 0): Promise<void> {
  if (movement.amount === 0n) return;
  await db.insert(ledger).values({
    id: `${at.chainId}-${at.transactionHash}-${at.logIndex}-${part}`,
    chainId: at.chainId,
    ...movement,
    timestamp: at.timestamp,
    blockNumber: at.blockNumber,
    transactionHash: at.transactionHash,
    logIndex: at.logIndex,
  });
}

/** Where an event happened, in the form every table stores. */
export function locate(
  chainId: number,
  event: { block: { timestamp: bigint; number: bigint }; transaction: { hash: Hex }; log: { logIndex: number } },
): EventLocation {
  return {
    chainId,
    timestamp: event.block.timestamp,
    blockNumber: event.block.number,
    transactionHash: event.transaction.hash,
    logIndex: event.log.logIndex,
  };
}

export function eventId(at: EventLocation): string {
  return `${at.chainId}-${at.transactionHash}-${at.logIndex}`;
}
