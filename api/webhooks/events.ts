/**
 * The outbox: events for merchants, each stored once under a deterministic id and fanned out to the merchant's
 * endpoints that subscribe to its type, in the same transaction. A delivery worker then sends each delivery
 * (api/webhooks/worker.ts); `GET /v1/events` serves the same rows for merchants who poll.
 */
import { createHash } from "node:crypto";
import { sql } from "drizzle-orm";
import type { StoreDb } from "../store";
import { webhookEvents } from "../store/schema";

export const EVENT_TYPES = [
  "invoice.paid",
  "invoice.confirmed",
  "invoice.released",
  "invoice.refunded",
  "invoice.expired",
  "invoice.voided",
  "invoice.disputed",
  "invoice.dispute_resolved",
  "invoice.payment_reverted",
  "invoice.payment_detected",
  "invoice.underpaid",
  "invoice.overpaid",
  "invoice.deposit_returned",
  "subscription.created",
  "subscription.renewed",
  "subscription.payment_failed",
  "subscription.canceled",
  "subscription.lapsed",
  "payout.sent",
  "alert.raised",
] as const;

export type EventType = (typeof EVENT_TYPES)[number];

export interface NewEvent {
  merchantId: string;
  type: EventType;
  /** What the event is about, delivered in order per endpoint (e.g. the invoice id). */
  orderKey: string;
  /** When it happened (the block's time for chain events). */
  occurredAt: Date;
  data: Record<string, unknown>;
  chainId?: number;
  sourceId?: string;
  blockNumber?: bigint;
  blockHash?: string;
}

/** A deterministic event id: the same facts always give the same id (so deriving again never duplicates). */
export function eventId(...parts: (string | number | bigint)[]): string {
  return `evt_${createHash("sha256").update(parts.map(String).join("\u0000")).digest("hex").slice(0, 32)}`;
}

export type EventWriter = Pick<StoreDb, "execute" | "insert">;

function rowsOf<T>(result: unknown): T[] {
  const rows = (result as { rows?: T[] }).rows;
  return Array.isArray(rows) ? rows : [];
}

/**
 * Stores the event (nothing when its id exists) and queues one delivery per active endpoint of the merchant
 * that takes its type. Returns whether the event is new. Call inside the transaction of the change it reports
 * when there is one.
 */
export async function recordEvent(db: EventWriter, id: string, event: NewEvent): Promise<boolean> {
  const payload = { id, type: event.type, timestamp: event.occurredAt.toISOString(), data: event.data };
  const inserted = await db
    .insert(webhookEvents)
    .values({
      id,
      merchantId: event.merchantId,
      type: event.type,
      payload,
      orderKey: event.orderKey,
      chainId: event.chainId ?? null,
      sourceId: event.sourceId ?? null,
      blockNumber: event.blockNumber ?? null,
      blockHash: event.blockHash ?? null,
    })
    .onConflictDoNothing()
    .returning({ sequence: webhookEvents.sequence });
  if (inserted.length === 0) return false;
  await db.execute(sql`
    INSERT INTO chainbill_api.webhook_deliveries (event_id, endpoint_id, merchant_id, order_key, event_sequence)
    SELECT ${id}, e.id, e.merchant_id, ${event.orderKey}, ${inserted[0].sequence}
    FROM chainbill_api.webhook_endpoints e
    WHERE e.merchant_id = ${event.merchantId}
      AND e.disabled_at IS NULL
      AND (e.expires_at IS NULL OR e.expires_at > now())
      AND (jsonb_array_length(e.event_types) = 0 OR e.event_types ? ${event.type})
    ON CONFLICT DO NOTHING`);
  return true;
}

export { rowsOf };
