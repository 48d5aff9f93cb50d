/**
 * `activity` rows: the events a merchant is told about (webhooks, GET /v1/events), written by the handler that
 * indexes the chain event, so Ponder rolls them back with everything else on a reorg.
 */
import type { Hex } from "viem";
import { activity } from "ponder:schema";

export type ActivityType =
  | "invoice.paid"
  | "invoice.released"
  | "invoice.refunded"
  | "invoice.voided"
  | "invoice.disputed"
  | "invoice.dispute_resolved"
  | "invoice.overpaid"
  | "invoice.deposit_returned"
  | "subscription.created"
  | "subscription.renewed"
  | "subscription.payment_failed"
  | "subscription.canceled"
  | "subscription.lapsed"
  | "payout.sent";

interface ActivityEvent {
  block: { timestamp: bigint; number: bigint; hash: Hex };
  transaction: { hash: Hex };
  log: { logIndex: number };
}

// The indexing store's insert builder; typed loosely so the helper works from every handler's context.
interface ActivityDb {
  insert: (table: typeof activity) => { values: (row: typeof activity.$inferInsert) => PromiseLike<unknown> };
}

/** Stringifies bigints (JSON has no bigint; amounts stay exact as decimal strings of base units). */
function plain(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).map(([key, value]) => [key, typeof value === "bigint" ? value.toString() : value]));
}

export async function recordActivity(
  context: { chain: { id: number }; db: ActivityDb },
  event: ActivityEvent,
  type: ActivityType,
  merchantId: bigint,
  reference: string,
  data: Record<string, unknown>,
): Promise<void> {
  const chainId = context.chain.id;
  await context.db.insert(activity).values({
    id: `${chainId}-${event.block.hash}-${event.log.logIndex}`,
    chainId,
    merchantId,
    type,
    reference,
    data: plain(data),
    timestamp: event.block.timestamp,
    blockNumber: event.block.number,
    blockHash: event.block.hash,
    transactionHash: event.transaction.hash,
    logIndex: event.log.logIndex,
  });
}
