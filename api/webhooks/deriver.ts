/**
 * Derives merchants' events from the indexed chain, with stored cursors so a restart neither loses nor
 * duplicates one (every event id is a hash of the facts it reports; inserts skip ids that exist):
 *
 * - **activity** (`invoice.paid`, `invoice.released`, …, `subscription.*`, `payout.sent`): the indexer writes
 *   one `activity` row per chain event a merchant is told about; each tick copies new rows of the last
 *   `reorgWindowBlocks` blocks into the outbox.
 * - **reorgs**: an outboxed event whose activity row disappeared is checked against the chain: when the block
 *   that carried it is no longer on the chain, the event is marked reverted, and a reverted `invoice.paid`
 *   produces `invoice.payment_reverted` (a row merely being re-indexed after a restart is not a reorg: its
 *   block is still there).
 * - **confirmations**: `invoice.confirmed` once the indexed chain is `N` blocks past the payment's block (`N`
 *   from the merchant's policy for the chain), while the payment is still indexed.
 * - **expiries**: `invoice.expired` once an unpaid invoice's `expiresAt` passed on the chain's clock and the
 *   index is level with the head (no payment in flight is missed).
 */
import { and, asc, eq, gt, gte, isNull, lte, sql } from "drizzle-orm";
import type { Logger } from "pino";
import { getAddress, type Hex } from "viem";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { Freshness } from "../freshness";
import type { ActivityRow, IndexedReader } from "../indexed";
import { onchainIdentity } from "../merchants/identity";
import { formatAmount } from "../money";
import { tokenAt } from "../tokens";
import type { Store } from "../store";
import { eventCursors, invoices, merchants, webhookEvents } from "../store/schema";
import { subscriptionPublicId } from "../subscriptions/ids";
import type { ApiDeps, MerchantRecord } from "../env";
import { defaultConfirmations } from "./confirmations";
import { evaluateEventAlerts } from "../alerts";
import { priceView } from "../prices/record";
import { eventId, recordEvent as storeEvent, rowsOf, type EventType, type EventWriter, type NewEvent } from "./events";

type InvoiceRow = typeof invoices.$inferSelect;

export interface DeriverOptions {
  store: Store;
  indexed: IndexedReader;
  chains: Map<number, ChainRuntime>;
  freshness: Freshness;
  logger: Logger;
  /** Blocks re-read every tick (a reorg deeper than this is not noticed). */
  reorgWindowBlocks: number;
  /** Called after new events were stored (wakes the local delivery worker). */
  onEvents?: () => void;
  /** For the merchant lookup of subscription and payout events. */
  deps: Pick<ApiDeps, "indexed" | "chains">;
}

/** The fields with every address in its EIP-55 checksum form. */
function checksummed(fields: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(fields).map(([name, value]) => [name, typeof value === "string" && /^0x[0-9a-fA-F]{40}$/.test(value) ? getAddress(value) : value]));
}

/** The hash of block `number` on the chain now: null when there is no such block, undefined when unknown. */
async function blockHashAt(chain: ChainRuntime, number: bigint): Promise<string | null | undefined> {
  try {
    const block = await chain.client.getBlock({ blockNumber: number });
    return block.hash?.toLowerCase() ?? null;
  } catch (error) {
    return (error as Error).name === "BlockNotFoundError" ? null : undefined;
  }
}

const iso = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString();

export function createDeriver(options: DeriverOptions) {
  const { store, indexed, logger } = options;
  const db = store.db;
  const unknownSources = new Set<string>();
  /** Events stored in this pass, for the alert rules once their transaction committed. */
  let stored: { id: string; event: NewEvent }[] = [];

  async function recordEvent(writer: EventWriter, id: string, event: NewEvent): Promise<boolean> {
    const created = await storeEvent(writer, id, event);
    if (created) stored.push({ id, event });
    return created;
  }

  async function evaluateAlerts(): Promise<void> {
    const batch = stored;
    stored = [];
    for (const { id, event } of batch) {
      const payload = { id, type: event.type, timestamp: event.occurredAt.toISOString(), data: event.data };
      await evaluateEventAlerts(db, { id, merchantId: event.merchantId, type: event.type, payload }).catch((error: unknown) =>
        logger.error({ err: error, eventId: id }, "evaluating alert rules failed"),
      );
    }
  }
  const merchantCache = new Map<string, { merchant: MerchantRecord | undefined; expires: number }>();

  async function cursor(name: string): Promise<bigint | undefined> {
    const [row] = await db.select().from(eventCursors).where(eq(eventCursors.name, name)).limit(1);
    return row?.position;
  }

  async function advance(name: string, position: bigint): Promise<void> {
    await db
      .insert(eventCursors)
      .values({ name, position })
      .onConflictDoUpdate({
        target: eventCursors.name,
        set: { position: sql`GREATEST(${eventCursors.position}, ${position})`, updatedAt: sql`now()` },
      });
  }

  /** The store merchant whose on-chain identity (api/merchants/identity.ts) is registry record `merchantId`. */
  async function merchantOfRecord(chainId: number, merchantId: bigint): Promise<MerchantRecord | undefined> {
    const key = `${chainId}:${merchantId}`;
    const cached = merchantCache.get(key);
    if (cached && cached.expires > Date.now()) return cached.merchant;
    const record = await indexed.merchantById(chainId, merchantId);
    let found: MerchantRecord | undefined;
    if (record) {
      const candidates = await db
        .select()
        .from(merchants)
        .where(and(sql`lower(${merchants.ownerAddress}) = ${record.owner.toLowerCase()}`, sql`lower(${merchants.signerAddress}) = ${record.signer.toLowerCase()}`));
      for (const candidate of candidates) {
        const identity = await onchainIdentity(options.deps as ApiDeps, candidate, chainId);
        if (identity?.owner.merchantId === merchantId) found = candidate;
      }
    }
    if (merchantCache.size > 10_000) merchantCache.clear();
    merchantCache.set(key, { merchant: found, expires: Date.now() + 10_000 });
    return found;
  }

  function invoiceData(row: InvoiceRow) {
    return {
      object: "invoice",
      invoiceId: row.id,
      chainId: row.chainId,
      currency: row.currency,
      token: getAddress(row.token),
      invoiceAmount: formatAmount(BigInt(row.amount), row.decimals),
      invoiceAmountBaseUnits: row.amount,
      customerId: row.customerId,
      metadata: row.metadata ?? {},
      paymentLinkId: row.paymentLinkId ?? null,
      /** The fiat price and its locked rate, or the valuation at creation (api/prices). */
      price: priceView(row.price),
    };
  }

  const amountFields = (row: InvoiceRow, fields: Record<string, unknown>, names: string[]) =>
    Object.fromEntries(
      names
        .filter((name) => typeof fields[name] === "string")
        .flatMap((name) => [
          [name, formatAmount(BigInt(fields[name] as string), row.decimals)],
          [`${name}BaseUnits`, fields[name]],
        ]),
    );

  /** Amounts of a subscription or payout event in the token's units beside base units, with its currency. */
  async function tokenAmounts(chainId: number, fields: Record<string, unknown>): Promise<Record<string, unknown>> {
    const chain = options.chains.get(chainId);
    if (!chain || typeof fields.token !== "string") return {};
    const token = await tokenAt(chain, fields.token);
    const result: Record<string, unknown> = { currency: token.symbol };
    for (const name of ["amount", "refunded", "earned", "maxPrice"]) {
      if (typeof fields[name] !== "string") continue;
      result[name] = formatAmount(BigInt(fields[name] as string), token.decimals);
      result[`${name}BaseUnits`] = fields[name];
    }
    return result;
  }

  /** The outbox event an activity row becomes, or undefined when it is not one of the API's merchants'. */
  async function eventOf(row: ActivityRow): Promise<NewEvent | undefined> {
    const fields = row.data as Record<string, unknown>;
    const transaction = {
      hash: row.transactionHash,
      blockNumber: row.blockNumber.toString(),
      blockHash: row.blockHash,
      logIndex: row.logIndex,
      timestamp: iso(row.timestamp),
    };
    const base = { chainId: row.chainId, sourceId: row.id, blockNumber: row.blockNumber, blockHash: row.blockHash, occurredAt: new Date(Number(row.timestamp) * 1000) };
    if (row.type.startsWith("invoice.")) {
      const [invoiceRow] = await db
        .select()
        .from(invoices)
        .where(and(eq(invoices.chainId, row.chainId), eq(invoices.invoiceKey, row.reference.toLowerCase())))
        .limit(1);
      if (!invoiceRow) return undefined;
      const specific: Record<string, unknown> = checksummed(fields);
      const amountNames = ["amount", "fee", "totalRefunded", "refunded", "released", "excess", "excessHeld", "returned"];
      for (const name of amountNames) delete specific[name];
      delete specific.token;
      delete specific.invoiceId;
      const amounts = amountFields(invoiceRow, fields, amountNames);
      const data = { ...specific, ...invoiceData(invoiceRow), ...amounts, transaction };
      return { ...base, merchantId: invoiceRow.merchantId, type: row.type as EventType, orderKey: invoiceRow.id, data };
    }
    const merchant = await merchantOfRecord(row.chainId, row.merchantId);
    if (!merchant) return undefined;
    const plainFields = checksummed(fields);
    Object.assign(plainFields, await tokenAmounts(row.chainId, fields));
    if (row.type.startsWith("subscription.")) {
      const subscriptionId = subscriptionPublicId(row.chainId, BigInt(row.reference));
      return {
        ...base,
        merchantId: merchant.id,
        type: row.type as EventType,
        orderKey: subscriptionId,
        data: { object: "subscription", subscriptionId, chainId: row.chainId, ...plainFields, transaction },
      };
    }
    return {
      ...base,
      merchantId: merchant.id,
      type: row.type as EventType,
      orderKey: `payout:${merchant.id}`,
      data: { object: "payout", chainId: row.chainId, ...plainFields, transaction },
    };
  }

  /** Copies new activity rows of `chainId` into the outbox and notices reorged ones. */
  const genesisChecked = new Set<number>();

  /**
   * A chain whose genesis block is not the one events were derived from was replaced (a local development node
   * started afresh): the old chain's events are marked reverted without a webhook each (they belong to a chain
   * that no longer exists, which is not a reorganisation), and the cursor starts again from the new chain's first
   * block. The genesis hash is remembered as a 60-bit fingerprint in the cursor table; checked once per process.
   */
  async function noticeReplacedChain(chain: ChainRuntime, position: bigint): Promise<bigint> {
    if (genesisChecked.has(chain.id)) return position;
    const genesis = await blockHashAt(chain, 0n);
    if (!genesis) return position;
    const fingerprint = BigInt(`0x${genesis.replace(/^0x/, "").slice(0, 15)}`);
    const name = `genesis:${chain.id}`;
    const known = await cursor(name);
    genesisChecked.add(chain.id);
    if (known === fingerprint) return position;
    await db.insert(eventCursors).values({ name, position: fingerprint }).onConflictDoUpdate({ target: eventCursors.name, set: { position: fingerprint, updatedAt: sql`now()` } });
    if (known === undefined) return position;
    const reverted = await db
      .update(webhookEvents)
      .set({ revertedAt: new Date() })
      .where(and(eq(webhookEvents.chainId, chain.id), isNull(webhookEvents.revertedAt), sql`${webhookEvents.blockNumber} IS NOT NULL`))
      .returning({ id: webhookEvents.id });
    await db.update(eventCursors).set({ position: 0n, updatedAt: new Date() }).where(eq(eventCursors.name, `activity:${chain.id}`));
    unknownSources.clear();
    logger.warn(
      { chainId: chain.id, derivedUpTo: position.toString(), eventsMarkedReverted: reverted.length },
      "the chain's genesis block changed: it was replaced (a new local node?); its old events are marked reverted and deriving starts again from block 0",
    );
    return 0n;
  }

  async function deriveActivity(chain: ChainRuntime, indexedBlock: bigint, full: boolean): Promise<number> {
    const name = `activity:${chain.id}`;
    let position = (await cursor(name)) ?? 0n;
    if (full) position = await noticeReplacedChain(chain, position);
    const window = full ? BigInt(options.reorgWindowBlocks) : 0n;
    const from = position > window ? position - window : 0n;
    const present = await indexed.activityIds(chain.id, from);
    const outboxed = await db
      .select({ id: webhookEvents.id, sourceId: webhookEvents.sourceId, type: webhookEvents.type, blockNumber: webhookEvents.blockNumber, blockHash: webhookEvents.blockHash, revertedAt: webhookEvents.revertedAt })
      .from(webhookEvents)
      .where(and(eq(webhookEvents.chainId, chain.id), gte(webhookEvents.blockNumber, from), sql`${webhookEvents.sourceId} IS NOT NULL`));
    const known = new Set(outboxed.map((row) => row.sourceId));
    const fresh = present.filter((row) => !known.has(row.id) && !unknownSources.has(row.id));
    let created = 0;
    let highest = position;
    for (const row of present) if (row.blockNumber > highest) highest = row.blockNumber;
    for (let start = 0; start < fresh.length; start += 200) {
      const rows = await indexed.activityRows(fresh.slice(start, start + 200).map((row) => row.id));
      rows.sort((a, b) => (a.blockNumber === b.blockNumber ? a.logIndex - b.logIndex : a.blockNumber < b.blockNumber ? -1 : 1));
      for (const row of rows) {
        const event = await eventOf(row);
        if (!event) {
          if (unknownSources.size > 100_000) unknownSources.clear();
          unknownSources.add(row.id);
          continue;
        }
        if (await recordEvent(db, eventId(row.id, row.type), event)) created += 1;
      }
    }
    if (highest > position) await advance(name, highest);
    if (!full) return created;
    // Outboxed events whose row is gone: a reorg, when their block left the chain.
    const presentIds = new Set(present.map((row) => row.id));
    const missing = outboxed.filter((row) => row.revertedAt === null && !presentIds.has(row.sourceId!) && row.blockNumber! <= indexedBlock);
    const blockHashes = new Map<bigint, string | null>();
    for (const candidate of missing) {
      const number = candidate.blockNumber!;
      if (!blockHashes.has(number)) {
        const hash = await blockHashAt(chain, number);
        if (hash === undefined) continue; // node unreachable: decide next time
        blockHashes.set(number, hash);
      }
      if (blockHashes.get(number) === candidate.blockHash?.toLowerCase()) continue; // still on the chain: being re-indexed
      const [row] = await db.select().from(webhookEvents).where(eq(webhookEvents.id, candidate.id)).limit(1);
      await db.transaction(async (tx) => {
        const updated = await tx
          .update(webhookEvents)
          .set({ revertedAt: new Date() })
          .where(and(eq(webhookEvents.id, row.id), isNull(webhookEvents.revertedAt)))
          .returning({ id: webhookEvents.id });
        if (updated.length === 0 || row.type !== "invoice.paid") return;
        const paid = row.payload as { data: Record<string, unknown> };
        const data = { ...paid.data, revertedEventId: row.id };
        await recordEvent(tx, eventId(row.id, "invoice.payment_reverted"), {
          merchantId: row.merchantId,
          type: "invoice.payment_reverted",
          orderKey: row.orderKey,
          occurredAt: new Date(),
          data,
          chainId: chain.id,
        });
        created += 1;
      });
      logger.warn({ chainId: chain.id, eventId: row.id, type: row.type, block: row.blockNumber?.toString() }, "event reverted by a reorg");
    }
    return created;
  }

  /**
   * `invoice.confirmed` for payments the indexed chain is far enough past: exactly the unconfirmed payments whose
   * block plus the merchant's confirmations for this chain is indexed (so a merchant waiting for many blocks never
   * holds back another's), oldest first.
   */
  async function deriveConfirmations(chain: ChainRuntime, indexedBlock: bigint): Promise<number> {
    const chainKey = String(chain.id);
    const required = sql`COALESCE((m.confirmation_policy ->> ${chainKey})::int, ${defaultConfirmations(chain.id)})`;
    const due = rowsOf<{ id: string; merchant_id: string; order_key: string; source_id: string; block_number: string; payload: { data: Record<string, unknown> }; required: number }>(
      await db.execute(sql`
        SELECT e.id, e.merchant_id, e.order_key, e.source_id, e.block_number::text AS block_number, e.payload, ${required} AS required
        FROM chainbill_api.webhook_events e JOIN chainbill_api.merchants m ON m.id = e.merchant_id
        WHERE e.chain_id = ${chain.id} AND e.type = 'invoice.paid' AND e.confirmed_at IS NULL AND e.reverted_at IS NULL
          AND e.block_number + ${required} - 1 <= ${indexedBlock}
        ORDER BY e.block_number
        LIMIT 500`),
    );
    if (due.length === 0) return 0;
    const stillIndexed = await indexed.activityPresent(due.map((row) => row.source_id));
    let created = 0;
    for (const row of due) {
      if (!stillIndexed.has(row.source_id)) continue; // being re-indexed, or reorged (the reorg check decides)
      const confirmations = Number(indexedBlock - BigInt(row.block_number) + 1n);
      const data = { ...row.payload.data, confirmations, confirmationsRequired: Number(row.required), paidEventId: row.id };
      await db.transaction(async (tx) => {
        const marked = await tx
          .update(webhookEvents)
          .set({ confirmedAt: new Date() })
          .where(and(eq(webhookEvents.id, row.id), isNull(webhookEvents.confirmedAt)))
          .returning({ id: webhookEvents.id });
        if (marked.length === 0) return; // another replica confirmed it
        const stored = await recordEvent(tx, eventId(row.id, "invoice.confirmed"), {
          merchantId: row.merchant_id,
          type: "invoice.confirmed",
          orderKey: row.order_key,
          occurredAt: new Date(),
          data,
          chainId: chain.id,
        });
        if (stored) created += 1;
      });
    }
    return created;
  }

  /** `invoice.expired` for unpaid invoices whose expiry passed on the chain's clock. */
  async function deriveExpiries(chain: ChainRuntime): Promise<number> {
    const name = `expiry:${chain.id}`;
    const position = (await cursor(name)) ?? 0n;
    const now = await chainNow(chain);
    const due = await db
      .select()
      .from(invoices)
      .where(and(eq(invoices.chainId, chain.id), gt(invoices.expiresAt, position), lte(invoices.expiresAt, now)))
      .orderBy(asc(invoices.expiresAt))
      .limit(500);
    if (due.length === 0) return 0;
    const onchain = await indexed.invoices(chain.id, due.map((row) => row.invoiceKey as Hex));
    let created = 0;
    for (const row of due) {
      if (onchain.has(row.invoiceKey.toLowerCase())) continue;
      if (await recordEvent(db, eventId("expired", row.id), {
        merchantId: row.merchantId,
        type: "invoice.expired",
        orderKey: row.id,
        occurredAt: new Date(Number(row.expiresAt) * 1000),
        data: { ...invoiceData(row), expiresAt: iso(row.expiresAt) },
        chainId: chain.id,
      })) created += 1;
    }
    // Invoices expiring within the same second as the last one seen are re-read next time (ids dedupe them).
    const last = due[due.length - 1].expiresAt;
    await advance(name, due.length === 500 ? last - 1n : last);
    return created;
  }

  let lastFullPass = 0;

  /**
   * One pass over every chain: returns how many events it created. New activity is read on every pass; the
   * reorg window, confirmations and expiries at most once a second (`full`).
   */
  async function tick(): Promise<number> {
    let created = 0;
    const full = Date.now() - lastFullPass >= 1_000;
    if (full) lastFullPass = Date.now();
    for (const chain of options.chains.values()) {
      const state = options.freshness.snapshot().find((entry) => entry.chainId === chain.id);
      if (!state || state.indexedBlock === null) continue;
      chain.observeBlock(state.indexedBlock);
      created += await deriveActivity(chain, state.indexedBlock, full);
      if (!full) continue;
      created += await deriveConfirmations(chain, state.indexedBlock);
      if (state.state === "current") created += await deriveExpiries(chain);
    }
    if (created > 0) {
      options.onEvents?.();
      await evaluateAlerts();
      options.onEvents?.();
    }
    return created;
  }

  return { tick };
}

export type Deriver = ReturnType<typeof createDeriver>;
