/**
 * The Bitcoin watcher: follows one network through a chain source (api/bitcoin/source.ts) and records what
 * reaches the addresses of BTC invoices, then derives each touched invoice's status and its webhooks.
 *
 * - **Cost per block does not depend on how many addresses are watched**: a block is read raw in one request,
 *   and each output's script is looked up in an in-memory map of watched scripts (one hash lookup per output).
 * - **Mempool**: new transaction ids are fetched once each; an unconfirmed payment whose inputs another
 *   transaction spends (an RBF replacement in the mempool, a double spend in a block) is removed, and so is
 *   one that left the mempool without being mined when the source no longer knows it.
 * - **Reorgs**: the processed blocks are kept (a window of 288); when the source's block at the cursor differs,
 *   the watcher walks back to the fork, turns the payments of the disconnected blocks back into unconfirmed ones
 *   (they count again when re-mined; they are removed if they vanish), and goes forward on the new branch.
 * - **Restartable and idempotent**: each block is applied in one store transaction with its cursor row, every
 *   write is an upsert keyed by the chain's own ids (txid:vout), and every webhook has a deterministic id, so a
 *   crash mid-block, a restart or a second replica neither loses nor repeats anything.
 */
import { and, eq, gt, inArray, isNull, lt, sql } from "drizzle-orm";
import type { Logger } from "pino";
import type { StoreDb } from "../store";
import { btcAddresses, btcBlocks, btcInvoices, btcPayments, btcRefunds, btcWallets, webhookEvents } from "../store/schema";
import { eventId, recordEvent, rowsOf, type NewEvent } from "../webhooks/events";
import { evaluateEventAlerts } from "../alerts";
import { formatAmount } from "../money";
import type { BitcoinNetwork } from "./keys";
import type { ChainSource, SourceBlock, SourceTx } from "./source";
import { btcRecords, stateOf, BTC_DECIMALS, type BtcInvoiceRow } from "./invoices";
import { PAID_STATUSES, type BtcInvoiceState } from "./state";
import { CAIP2 } from "./wallets";

type Tx = Parameters<Parameters<StoreDb["transaction"]>[0]>[0];

const REORG_WINDOW = 288;

export interface WatcherOptions {
  db: StoreDb;
  source: ChainSource;
  network: BitcoinNetwork;
  logger: Logger;
  /** Blocks applied per tick at most (a long catch-up proceeds over several ticks). */
  maxBlocksPerTick?: number;
  /** New mempool transactions fetched per tick at most. */
  maxMempoolPerTick?: number;
  /** Test hook: runs inside a block's store transaction before it commits (throwing aborts the block). */
  beforeBlockCommit?: (height: number) => Promise<void>;
}

interface Watched {
  invoiceId: string;
  merchantId: string;
  expiresAt: bigint;
}

interface SeenPayment {
  txid: string;
  vout: number;
  amountSats: bigint;
  inputs: string[];
  rbf: boolean;
  watched: Watched;
  script: string;
}

interface Sighting {
  payments: SeenPayment[];
  /** Unconfirmed payment transactions a transaction conflicts with (spends one of their inputs). */
  conflicts: { victim: string; by: string }[];
  refunds: { refundId: string; txid: string; paidSats: bigint }[];
}

const outpoint = (txid: string, index: number) => `${txid}:${index}`;

export function createBitcoinWatcher(options: WatcherOptions) {
  const { db, source, network, logger } = options;
  const maxBlocks = options.maxBlocksPerTick ?? 50;
  const maxMempool = options.maxMempoolPerTick ?? 2_000;
  const watched = new Map<string, Watched>();
  let lastSequence = 0;
  /** Inputs of unconfirmed live payments' transactions → that transaction. */
  let pendingInputs = new Map<string, string>();
  /** Inputs of refunds not yet mined → the refund (and the script it pays). */
  let refundInputs = new Map<string, { id: string; script: string }>();
  let mempoolSeen = new Set<string>();
  let dirty = true;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let lastError: string | undefined;
  let lastTickAt: Date | undefined;

  /** Invoices created since the last look (an address given again maps to its newest invoice). */
  async function refreshWatched(): Promise<void> {
    const rows = await db
      .select({ id: btcInvoices.id, merchantId: btcInvoices.merchantId, script: btcInvoices.script, expiresAt: btcInvoices.expiresAt, sequence: btcInvoices.sequence })
      .from(btcInvoices)
      .where(and(eq(btcInvoices.network, network), gt(btcInvoices.sequence, lastSequence)))
      .orderBy(btcInvoices.sequence);
    for (const row of rows) {
      watched.set(row.script, { invoiceId: row.id, merchantId: row.merchantId, expiresAt: row.expiresAt });
      lastSequence = Math.max(lastSequence, row.sequence);
    }
  }

  async function reloadPending(): Promise<void> {
    const payments = await db
      .select({ txid: btcPayments.txid, inputs: btcPayments.inputs })
      .from(btcPayments)
      .innerJoin(btcInvoices, eq(btcInvoices.id, btcPayments.invoiceId))
      .where(and(eq(btcInvoices.network, network), isNull(btcPayments.blockHash), isNull(btcPayments.removedAt)));
    pendingInputs = new Map(payments.flatMap((payment) => payment.inputs.map((input) => [input, payment.txid] as const)));
    const refunds = await db
      .select({ id: btcRefunds.id, inputs: btcRefunds.inputs, script: btcRefunds.destinationScript })
      .from(btcRefunds)
      .innerJoin(btcInvoices, eq(btcInvoices.id, btcRefunds.invoiceId))
      .where(and(eq(btcInvoices.network, network), isNull(btcRefunds.blockHash)));
    refundInputs = new Map(refunds.flatMap((refund) => refund.inputs.map((input) => [input, { id: refund.id, script: refund.script }] as const)));
    dirty = false;
  }

  /** What one transaction does to the watched invoices: one map lookup per output and per input. */
  function examine(tx: SourceTx, sighting: Sighting): void {
    const inputs = tx.inputs.map((input) => outpoint(input.txid, input.index));
    tx.outputs.forEach((output, vout) => {
      const target = watched.get(output.script);
      if (target) sighting.payments.push({ txid: tx.txid, vout, amountSats: output.amount, inputs, rbf: tx.rbf, watched: target, script: output.script });
    });
    const refundsSeen = new Set<string>();
    for (const input of inputs) {
      const victim = pendingInputs.get(input);
      if (victim !== undefined && victim !== tx.txid) sighting.conflicts.push({ victim, by: tx.txid });
      const refund = refundInputs.get(input);
      if (refund && !refundsSeen.has(refund.id)) {
        refundsSeen.add(refund.id);
        const paidSats = tx.outputs.filter((output) => output.script === refund.script).reduce((sum, output) => sum + output.amount, 0n);
        if (paidSats > 0n) sighting.refunds.push({ refundId: refund.id, txid: tx.txid, paidSats });
      }
    }
  }

  const emptySighting = (): Sighting => ({ payments: [], conflicts: [], refunds: [] });

  /** Chain time: the later of the wall clock and the block's (or tip's) time. */
  const chainTime = (blockTime: number | undefined) => Math.max(Math.floor(Date.now() / 1000), blockTime ?? 0);

  /** Writes a sighting; returns the invoices it touched. */
  async function record(tx: Tx, sighting: Sighting, block: { hash: string; height: number; time: number } | null, now: number, events: [string, NewEvent][]): Promise<Set<string>> {
    const touched = new Set<string>();
    for (const payment of sighting.payments) {
      touched.add(payment.watched.invoiceId);
      const [existing] = await tx
        .select({ txid: btcPayments.txid })
        .from(btcPayments)
        .where(and(eq(btcPayments.txid, payment.txid), eq(btcPayments.vout, payment.vout)))
        .limit(1);
      const confirmation = block ? { blockHash: block.hash, blockHeight: block.height, blockTime: block.time } : {};
      await tx
        .insert(btcPayments)
        .values({
          txid: payment.txid,
          vout: payment.vout,
          invoiceId: payment.watched.invoiceId,
          merchantId: payment.watched.merchantId,
          amountSats: payment.amountSats,
          inputs: payment.inputs,
          rbf: payment.rbf,
          firstSeen: now,
          late: BigInt(now) > payment.watched.expiresAt,
          ...confirmation,
        })
        .onConflictDoUpdate({
          target: [btcPayments.txid, btcPayments.vout],
          set: { ...(block ? confirmation : {}), removedAt: null, removedReason: null },
        });
      await tx.update(btcAddresses).set({ receivedAt: sql`coalesce(${btcAddresses.receivedAt}, now())` }).where(eq(btcAddresses.script, payment.script));
      if (!existing) {
        const [invoice] = await tx.select().from(btcInvoices).where(eq(btcInvoices.id, payment.watched.invoiceId));
        events.push([
          eventId("btc", payment.txid, payment.vout, "detected"),
          {
            merchantId: invoice.merchantId,
            type: "invoice.payment_detected",
            orderKey: invoice.id,
            occurredAt: new Date(now * 1000),
            data: { ...invoiceData(invoice), payment: { txid: payment.txid, vout: payment.vout, amountSats: payment.amountSats.toString(), amount: formatAmount(payment.amountSats, BTC_DECIMALS), rbf: payment.rbf, late: BigInt(now) > invoice.expiresAt, blockHeight: block?.height ?? null } },
          },
        ]);
      }
    }
    for (const conflict of sighting.conflicts) {
      const removed = await tx
        .update(btcPayments)
        .set({ removedAt: new Date(), removedReason: block ? "double_spent" : "replaced" })
        .where(and(eq(btcPayments.txid, conflict.victim), isNull(btcPayments.blockHash), isNull(btcPayments.removedAt)))
        .returning({ invoiceId: btcPayments.invoiceId });
      for (const row of removed) touched.add(row.invoiceId);
    }
    for (const refund of sighting.refunds) {
      const [row] = await tx
        .update(btcRefunds)
        .set({ seenTxid: refund.txid, paidSats: refund.paidSats, ...(block ? { blockHash: block.hash, blockHeight: block.height, blockTime: block.time } : {}) })
        .where(eq(btcRefunds.id, refund.refundId))
        .returning({ invoiceId: btcRefunds.invoiceId });
      if (row) touched.add(row.invoiceId);
    }
    if (sighting.payments.length + sighting.conflicts.length + sighting.refunds.length > 0) dirty = true;
    return touched;
  }

  function invoiceData(invoice: BtcInvoiceRow) {
    return {
      object: "invoice",
      invoiceId: invoice.id,
      chainId: null,
      network: CAIP2[invoice.network as BitcoinNetwork],
      currency: "BTC",
      token: null,
      invoiceAmount: formatAmount(invoice.amountSats, BTC_DECIMALS),
      invoiceAmountBaseUnits: invoice.amountSats.toString(),
      address: invoice.address,
      customerId: invoice.customerId,
      metadata: invoice.metadata ?? {},
    };
  }

  /** Recomputes invoices' statuses and queues the webhooks of what changed since they were last announced. */
  async function settle(tx: Tx, touched: Set<string>, tipHeight: number, now: number, events: [string, NewEvent][]): Promise<void> {
    // Besides the touched ones: paid invoices not yet confirmed (a block deepens them) and open ones past expiry,
    // each found through its partial index (api/store/schema.ts), so a pass costs the same with 100 or 100,000.
    const due = await tx.execute(sql`
      SELECT id FROM chainbill_api.btc_invoices
        WHERE network = ${network} AND (notified ->> 'status') IN ('paid', 'partially_refunded', 'refunded') AND (notified ->> 'confirmed') IS DISTINCT FROM 'true'
      UNION
      SELECT id FROM chainbill_api.btc_invoices
        WHERE network = ${network} AND coalesce(notified ->> 'status', 'open') = 'open' AND expires_at <= ${now}`);
    const ids = [...new Set([...touched, ...rowsOf<{ id: string }>(due).map((row) => row.id)])];
    if (ids.length === 0) return;
    const rows = await tx.select().from(btcInvoices).where(inArray(btcInvoices.id, ids));
    const records = await btcRecords(tx, ids);
    const policies = new Map(
      (await tx.select({ id: btcWallets.id, confirmations: btcWallets.confirmations }).from(btcWallets).where(inArray(btcWallets.id, [...new Set(rows.map((row) => row.walletId))]))).map((wallet) => [wallet.id, wallet.confirmations]),
    );
    for (const row of rows) {
      const policy = policies.get(row.walletId) ?? 1;
      const state = stateOf(row, records.get(row.id)!, { tipHeight, now: BigInt(now), policy });
      const next = announce(row, state, policy, now, events);
      if (JSON.stringify(next) === JSON.stringify(row.notified)) continue;
      await tx.update(btcInvoices).set({ notified: next }).where(eq(btcInvoices.id, row.id));
      if ((next.generation ?? 0) > (row.notified?.generation ?? 0)) {
        // The reverted payment's invoice.paid (and .confirmed) no longer hold: flagged like an EVM reorg's.
        const generation = row.notified?.generation ?? 0;
        await tx
          .update(webhookEvents)
          .set({ revertedAt: new Date() })
          .where(and(inArray(webhookEvents.id, [eventId("btc", row.id, "paid", generation), eventId("btc", row.id, "confirmed", generation)]), isNull(webhookEvents.revertedAt)));
      }
    }
  }

  /** The webhooks for the change from what was last announced to `state`, and what is announced after them. */
  function announce(row: BtcInvoiceRow, state: BtcInvoiceState, policy: number, now: number, events: [string, NewEvent][]): BtcInvoiceRow["notified"] {
    const previous = row.notified ?? {};
    const generation = previous.generation ?? 0;
    const wasPaid = PAID_STATUSES.has((previous.status ?? "open") as never);
    const isPaid = PAID_STATUSES.has(state.status);
    const completedBy = state.completedBy;
    const transaction = completedBy
      ? { hash: completedBy.txid, vout: completedBy.vout, blockNumber: completedBy.blockHeight?.toString() ?? null, timestamp: new Date((completedBy.blockTime ?? completedBy.firstSeen) * 1000).toISOString() }
      : null;
    const data = {
      ...invoiceData(row),
      status: state.status,
      receivedSats: state.receivedSats.toString(),
      dueSats: state.dueSats.toString(),
      overpaidSats: state.overpaidSats.toString(),
      paidLate: state.paidLate,
      confirmations: state.confirmations,
    };
    const occurredAt = new Date(now * 1000);
    const push = (id: string, type: NewEvent["type"], extra: Record<string, unknown> = {}) =>
      events.push([id, { merchantId: row.merchantId, type, orderKey: row.id, occurredAt, data: { ...data, ...extra } }]);
    let nextGeneration = generation;
    let confirmed = previous.confirmed ?? false;
    if (isPaid && !wasPaid) {
      push(eventId("btc", row.id, "paid", generation), "invoice.paid", { amount: formatAmount(state.receivedSats, BTC_DECIMALS), amountBaseUnits: state.receivedSats.toString(), transaction });
    }
    if (!isPaid && wasPaid) {
      push(eventId("btc", row.id, "reverted", generation), "invoice.payment_reverted", { revertedEventId: eventId("btc", row.id, "paid", generation) });
      nextGeneration = generation + 1;
      confirmed = false;
    }
    if (isPaid && state.confirmed && !confirmed) {
      push(eventId("btc", row.id, "confirmed", nextGeneration), "invoice.confirmed", { confirmationsRequired: policy, paidEventId: eventId("btc", row.id, "paid", nextGeneration), transaction });
      confirmed = true;
    }
    if (state.status === "underpaid" && previous.status !== "underpaid") {
      push(eventId("btc", row.id, "underpaid", state.receivedSats), "invoice.underpaid");
    }
    if (state.status === "expired" && (previous.status ?? "open") === "open") push(eventId("btc", row.id, "expired"), "invoice.expired");
    const refundedBefore = BigInt(previous.refundedSats ?? "0");
    if (state.refundedSats > refundedBefore) {
      push(eventId("btc", row.id, "refunded", state.refundedSats), "invoice.refunded", {
        refunded: formatAmount(state.refundedSats - refundedBefore, BTC_DECIMALS),
        refundedBaseUnits: (state.refundedSats - refundedBefore).toString(),
        totalRefunded: formatAmount(state.refundedSats, BTC_DECIMALS),
        totalRefundedBaseUnits: state.refundedSats.toString(),
      });
    }
    return { status: state.status, confirmed, refundedSats: state.refundedSats.toString(), generation: nextGeneration };
  }

  /** Stores events after their transaction committed (alert rules read committed events). */
  async function evaluate(events: [string, NewEvent][]): Promise<void> {
    for (const [id, event] of events) {
      const payload = { id, type: event.type, timestamp: event.occurredAt.toISOString(), data: event.data };
      await evaluateEventAlerts(db, { id, merchantId: event.merchantId, type: event.type, payload }).catch((error: unknown) => logger.error({ err: error, eventId: id }, "evaluating alert rules failed"));
    }
  }

  async function writeEvents(tx: Tx, events: [string, NewEvent][]): Promise<void> {
    for (const [id, event] of events) await recordEvent(tx, id, event);
  }

  async function cursor(): Promise<{ height: number; hash: string; time: number } | undefined> {
    const [row] = await db.select().from(btcBlocks).where(eq(btcBlocks.network, network)).orderBy(sql`${btcBlocks.height} DESC`).limit(1);
    return row ? { height: row.height, hash: row.hash, time: row.time } : undefined;
  }

  async function applyBlock(height: number, block: SourceBlock): Promise<boolean> {
    const sighting = emptySighting();
    for (const tx of block.txs) examine(tx, sighting);
    const events: [string, NewEvent][] = [];
    const applied = await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`btc-watcher:${network}`}))`);
      const [previous] = await tx.select().from(btcBlocks).where(and(eq(btcBlocks.network, network), eq(btcBlocks.height, height - 1)));
      if (previous && previous.hash !== block.previous) return false; // another replica moved on, or a reorg: next tick
      const [same] = await tx.select().from(btcBlocks).where(and(eq(btcBlocks.network, network), eq(btcBlocks.height, height)));
      if (same?.hash === block.hash) return true;
      const now = chainTime(block.time);
      const touched = await record(tx, sighting, { hash: block.hash, height, time: block.time }, now, events);
      await tx.insert(btcBlocks).values({ network, height, hash: block.hash, time: block.time }).onConflictDoUpdate({ target: [btcBlocks.network, btcBlocks.height], set: { hash: block.hash, time: block.time } });
      await tx.delete(btcBlocks).where(and(eq(btcBlocks.network, network), lt(btcBlocks.height, height - REORG_WINDOW)));
      await settle(tx, touched, height, now, events);
      await writeEvents(tx, events);
      await options.beforeBlockCommit?.(height);
      return true;
    });
    if (applied) await evaluate(events);
    else events.length = 0;
    return applied;
  }

  /** The highest processed block the source still has (walking back through the stored window). */
  async function forkPoint(from: number, tip: number): Promise<number> {
    const stored = await db.select().from(btcBlocks).where(and(eq(btcBlocks.network, network), sql`${btcBlocks.height} <= ${from}`)).orderBy(sql`${btcBlocks.height} DESC`);
    for (const block of stored) {
      if (block.height > tip) continue;
      if ((await source.blockHash(block.height)) === block.hash) return block.height;
    }
    return stored.length > 0 ? stored[stored.length - 1].height - 1 : tip;
  }

  async function disconnectAbove(fork: number, tipHeight: number): Promise<void> {
    const events: [string, NewEvent][] = [];
    await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`btc-watcher:${network}`}))`);
      const invoiceIds = (await tx.select({ id: btcInvoices.id }).from(btcInvoices).where(eq(btcInvoices.network, network))).map((row) => row.id);
      const touched = new Set<string>();
      if (invoiceIds.length > 0) {
        const payments = await tx
          .update(btcPayments)
          .set({ blockHash: null, blockHeight: null, blockTime: null })
          .where(and(inArray(btcPayments.invoiceId, invoiceIds), gt(btcPayments.blockHeight, fork)))
          .returning({ invoiceId: btcPayments.invoiceId });
        const refunds = await tx
          .update(btcRefunds)
          .set({ blockHash: null, blockHeight: null, blockTime: null })
          .where(and(inArray(btcRefunds.invoiceId, invoiceIds), gt(btcRefunds.blockHeight, fork)))
          .returning({ invoiceId: btcRefunds.invoiceId });
        for (const row of [...payments, ...refunds]) touched.add(row.invoiceId);
      }
      await tx.delete(btcBlocks).where(and(eq(btcBlocks.network, network), gt(btcBlocks.height, fork)));
      await settle(tx, touched, Math.min(fork, tipHeight), chainTime(undefined), events);
      await writeEvents(tx, events);
    });
    await evaluate(events);
    dirty = true;
    logger.warn({ network, fork }, "bitcoin reorg: blocks above the fork disconnected");
  }

  async function scanMempool(processedHeight: number): Promise<void> {
    const ids = await source.mempoolTxids();
    // A transaction in this list was sent after its invoice was stored (the customer needed the address):
    // looking for new invoices now means each is matched against every transaction, seen once only.
    await refreshWatched();
    const current = new Set(ids);
    const sighting = emptySighting();
    let fetched = 0;
    for (const txid of ids) {
      if (mempoolSeen.has(txid)) continue;
      if (fetched >= maxMempool) break;
      fetched += 1;
      const tx = await source.transaction(txid);
      if (tx) examine(tx, sighting);
      mempoolSeen.add(txid);
    }
    for (const txid of mempoolSeen) if (!current.has(txid)) mempoolSeen.delete(txid);
    // Unconfirmed payments that left the mempool unmined: gone once the source no longer knows them — judged
    // only while no block beyond ours exists (a transaction mined in a block not processed yet is not gone).
    const vanished: string[] = [];
    const replaced = new Set(sighting.conflicts.map((conflict) => conflict.victim));
    if ((await source.tipHeight()) === processedHeight) {
      for (const txid of new Set(pendingInputs.values())) {
        if (current.has(txid) || replaced.has(txid)) continue;
        if ((await source.transaction(txid)) === undefined) vanished.push(txid);
      }
    }
    if (sighting.payments.length + sighting.conflicts.length + sighting.refunds.length + vanished.length === 0) return;
    const events: [string, NewEvent][] = [];
    await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`btc-watcher:${network}`}))`);
      const [tip] = await tx.select().from(btcBlocks).where(and(eq(btcBlocks.network, network), eq(btcBlocks.height, processedHeight)));
      const now = chainTime(tip?.time);
      const touched = await record(tx, sighting, null, now, events);
      if (vanished.length > 0) {
        const removed = await tx
          .update(btcPayments)
          .set({ removedAt: new Date(), removedReason: "dropped" })
          .where(and(inArray(btcPayments.txid, vanished), isNull(btcPayments.blockHash), isNull(btcPayments.removedAt)))
          .returning({ invoiceId: btcPayments.invoiceId });
        for (const row of removed) touched.add(row.invoiceId);
        dirty = true;
      }
      await settle(tx, touched, processedHeight, now, events);
      await writeEvents(tx, events);
    });
    await evaluate(events);
  }

  /** Expiries happen with time alone: settled on every tick even without a new block. */
  async function settleClock(height: number, time: number): Promise<void> {
    const events: [string, NewEvent][] = [];
    await db.transaction(async (tx) => {
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`btc-watcher:${network}`}))`);
      await settle(tx, new Set(), height, chainTime(time), events);
      await writeEvents(tx, events);
    });
    await evaluate(events);
  }

  async function tickOnce(): Promise<void> {
    await refreshWatched();
    if (dirty) await reloadPending();
    const tip = await source.tipHeight();
    let at = await cursor();
    if (!at) {
      // A new deployment starts at the chain's tip: its invoices are all newer.
      const hash = await source.blockHash(tip);
      const block = await source.block(hash);
      await db.insert(btcBlocks).values({ network, height: tip, hash, time: block.time }).onConflictDoNothing();
      at = { height: tip, hash, time: block.time };
    }
    if (at.height > tip || (await source.blockHash(at.height)) !== at.hash) {
      await disconnectAbove(await forkPoint(at.height, tip), tip);
      await reloadPending();
      at = (await cursor()) ?? at;
    }
    for (let height = at.height + 1; height <= Math.min(tip, at.height + maxBlocks); height += 1) {
      const block = await source.block(await source.blockHash(height));
      if (block.previous !== at.hash) break; // the chain moved under us: the next tick finds the fork
      await refreshWatched(); // invoices stored before this block's transactions were sent
      if (!(await applyBlock(height, block))) break;
      if (dirty) await reloadPending();
      at = { height, hash: block.hash, time: block.time };
    }
    await scanMempool(at.height);
    await settleClock(at.height, at.time);
  }

  /** One pass: new invoices, reorg check, new blocks, the mempool, expiries. Never two at once. */
  async function tick(): Promise<void> {
    if (running) return running;
    running = tickOnce()
      .then(() => {
        lastError = undefined;
        lastTickAt = new Date();
      })
      .catch((error: unknown) => {
        lastError = error instanceof Error ? error.message : String(error);
        dirty = true;
        throw error;
      })
      .finally(() => (running = undefined));
    return running;
  }

  return {
    tick,
    start(intervalMs: number) {
      const loop = () => {
        if (stopped) return;
        tick()
          .catch((error: unknown) => logger.warn({ err: error, source: source.name }, "bitcoin watcher pass failed; retrying"))
          .finally(() => {
            if (!stopped) timer = setTimeout(loop, intervalMs);
          });
      };
      loop();
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => undefined);
    },
    /** Something outside the watcher changed what it matches (a refund was prepared): reload before the next pass. */
    refresh() {
      dirty = true;
    },
    status: () => ({ source: source.name, network, lastTickAt: lastTickAt?.toISOString() ?? null, lastError: lastError ?? null }),
  };
}

export type BitcoinWatcher = ReturnType<typeof createBitcoinWatcher>;
