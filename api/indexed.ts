/**
 * Reads the indexer's tables (Ponder's schema) for the API. Every query names its chain and merchant, so one
 * merchant never sees another's rows. Hex columns are stored lowercase by Ponder.
 */
import { and, asc, count, desc, eq, gt, gte, inArray, lt, lte, or, sql, sum } from "drizzle-orm";
import type { ReadonlyDrizzle } from "ponder";
import type { Address, Hex } from "viem";
import * as tables from "../indexer/ponder.schema";

/** Ponder's API database: a read-only drizzle client over the indexed tables. */
export type IndexedDb = ReadonlyDrizzle<typeof tables>;

export type IndexedInvoice = typeof tables.invoice.$inferSelect;
export type IndexedMerchant = typeof tables.merchant.$inferSelect;
export type IndexedPlan = typeof tables.plan.$inferSelect;
export type IndexedSubscription = typeof tables.subscription.$inferSelect;
export type IndexedCharge = typeof tables.charge.$inferSelect;
export type IndexedRefund = typeof tables.refund.$inferSelect;
export type LedgerEntry = typeof tables.ledger.$inferSelect;
export type ActivityRow = typeof tables.activity.$inferSelect;

/** One on-chain identity of a merchant (its registry record on one chain). */
export interface OnchainMerchant {
  chainId: number;
  merchantId: bigint;
}

export interface LedgerCursor {
  timestamp: bigint;
  id: string;
}

export interface SubscriptionFilter {
  chainId?: number;
  planId?: number;
  status?: string;
  subscriber?: Address;
}

export interface SubscriptionCursor {
  chainId: number;
  subscriptionId: bigint;
}

export type IndexedPayment = typeof tables.payment.$inferSelect;
export type IndexedDepositAccount = typeof tables.depositAccount.$inferSelect;

/** Money that left the contracts for a merchant: a release, a withdrawal, a deferral to a claimable balance, a claim. */
export interface PayoutRow {
  id: string;
  chainId: number;
  kind: "release" | "withdrawal" | "deferred" | "claimed";
  token: Hex;
  /** Where it went: the payout address (release, withdrawal), the claim's destination; the account for a deferral. */
  to: Hex;
  amount: bigint;
  /** Protocol fee kept by the escrow (releases only). */
  fee: bigint;
  /** Invoice key of a release; null otherwise. */
  invoiceKey: Hex | null;
  timestamp: bigint;
  blockNumber: bigint;
  transactionHash: Hex;
}

export interface PayoutScope extends OnchainMerchant {
  /** Payout addresses of the merchant's record on this chain (deferrals and claims are theirs). */
  payouts: Hex[];
}

export interface PayoutCursor {
  timestamp: bigint;
  id: string;
}

/** Sum and count of one kind of ledger movement over a period. */
export interface LedgerKindTotal {
  kind: string;
  total: bigint;
  count: number;
}

const REGISTRATION_CACHE_MS = 2_000;

export function createIndexedReader(db: IndexedDb) {
  const lower = (value: string) => value.toLowerCase() as Hex;
  const invoicesInFlight = new Map<string, Promise<IndexedInvoice | undefined>>();
  const registrations = new Map<string, { row: IndexedMerchant; expires: number }>();

  /** Rows strictly before `cursor` in (timestamp, id) descending order. */
  const before = (table: { timestamp: Parameters<typeof lt>[0]; id: Parameters<typeof lt>[0] }, cursor?: PayoutCursor) =>
    cursor ? and(lte(table.timestamp, cursor.timestamp), or(lt(table.timestamp, cursor.timestamp), lt(table.id, cursor.id))) : sql`true`;

  return {
    /**
     * Every payout of a merchant's identities, newest first, `limit` after `cursor` (keyset pagination over the
     * releases, the withdrawals and the claim events, merged).
     */
    async payoutsPage(scopes: PayoutScope[], limit: number, cursor?: PayoutCursor): Promise<PayoutRow[]> {
      const rows: PayoutRow[] = [];
      for (const scope of scopes) {
        const releases = await db
          .select()
          .from(tables.release)
          .where(and(eq(tables.release.chainId, scope.chainId), eq(tables.release.merchantId, scope.merchantId), before(tables.release, cursor)))
          .orderBy(desc(tables.release.timestamp), desc(tables.release.id))
          .limit(limit);
        for (const row of releases) {
          rows.push({ id: row.id, chainId: row.chainId, kind: "release", token: row.token, to: row.payout, amount: row.amount, fee: row.fee, invoiceKey: row.key, timestamp: row.timestamp, blockNumber: row.blockNumber, transactionHash: row.transactionHash });
        }
        const withdrawals = await db
          .select()
          .from(tables.ledger)
          .where(and(eq(tables.ledger.chainId, scope.chainId), eq(tables.ledger.merchantId, scope.merchantId), eq(tables.ledger.kind, "withdrawal"), before(tables.ledger, cursor)))
          .orderBy(desc(tables.ledger.timestamp), desc(tables.ledger.id))
          .limit(limit);
        for (const row of withdrawals) {
          rows.push({ id: row.id, chainId: row.chainId, kind: "withdrawal", token: row.token, to: row.counterparty, amount: -row.amount, fee: 0n, invoiceKey: null, timestamp: row.timestamp, blockNumber: row.blockNumber, transactionHash: row.transactionHash });
        }
        if (scope.payouts.length > 0) {
          const claims = await db
            .select()
            .from(tables.claimEvent)
            .where(and(eq(tables.claimEvent.chainId, scope.chainId), inArray(tables.claimEvent.account, scope.payouts.map(lower)), before(tables.claimEvent, cursor)))
            .orderBy(desc(tables.claimEvent.timestamp), desc(tables.claimEvent.id))
            .limit(limit);
          for (const row of claims) {
            rows.push({ id: row.id, chainId: row.chainId, kind: row.kind as "deferred" | "claimed", token: row.token, to: row.to ?? row.account, amount: row.amount, fee: 0n, invoiceKey: null, timestamp: row.timestamp, blockNumber: row.blockNumber, transactionHash: row.transactionHash });
          }
        }
      }
      rows.sort((a, b) => (a.timestamp !== b.timestamp ? (a.timestamp > b.timestamp ? -1 : 1) : a.id > b.id ? -1 : a.id < b.id ? 1 : 0));
      return rows.slice(0, limit);
    },

    /** Payout addresses the merchant's releases and withdrawals went to on a chain (its record's may have changed). */
    async payoutAddresses(owner: OnchainMerchant): Promise<Hex[]> {
      const released = await db
        .selectDistinct({ to: tables.release.payout })
        .from(tables.release)
        .where(and(eq(tables.release.chainId, owner.chainId), eq(tables.release.merchantId, owner.merchantId)));
      const withdrawn = await db
        .selectDistinct({ to: tables.ledger.counterparty })
        .from(tables.ledger)
        .where(and(eq(tables.ledger.chainId, owner.chainId), eq(tables.ledger.merchantId, owner.merchantId), eq(tables.ledger.kind, "withdrawal")));
      return [...new Set([...released, ...withdrawn].map((row) => row.to.toLowerCase() as Hex))];
    },

    /** Held payments whose hold is over and that need no (or have their) fulfilment: releasable by anyone. */
    async releasable(chainId: number, now: bigint, limit: number): Promise<IndexedInvoice[]> {
      const table = tables.invoice;
      return db
        .select()
        .from(table)
        .where(and(eq(table.chainId, chainId), eq(table.status, "held"), lte(table.releaseAt, now), or(sql`${table.fulfillBy} is null`, eq(table.fulfilled, true))))
        .orderBy(asc(table.releaseAt))
        .limit(limit);
    },

    /** Held or disputed payments whose `fulfillBy` passed unfulfilled: anyone may refund them in full. */
    async unfulfilledPastDeadline(chainId: number, now: bigint, limit: number): Promise<IndexedInvoice[]> {
      const table = tables.invoice;
      return db
        .select()
        .from(table)
        .where(and(eq(table.chainId, chainId), inArray(table.status, ["held", "disputed"]), eq(table.fulfilled, false), lt(table.fulfillBy, now)))
        .orderBy(asc(table.fulfillBy))
        .limit(limit);
    },

    /** Disputed payments whose dispute deadline passed: anyone may refund them in full. */
    async expiredDisputes(chainId: number, now: bigint, limit: number): Promise<IndexedInvoice[]> {
      const table = tables.invoice;
      return db
        .select()
        .from(table)
        .where(and(eq(table.chainId, chainId), eq(table.status, "disputed"), lte(table.disputeDeadline, now)))
        .orderBy(asc(table.disputeDeadline))
        .limit(limit);
    },

    /**
     * Subscriptions due for a renewal: trialing or active ones whose period ended, and past-due ones not retried
     * for `retryEverySeconds` (or whose grace is over, so that the renewal lapses them).
     */
    async dueSubscriptions(chainId: number, now: bigint, retryEverySeconds: bigint, limit: number): Promise<IndexedSubscription[]> {
      const table = tables.subscription;
      return db
        .select()
        .from(table)
        .where(
          and(
            eq(table.chainId, chainId),
            lte(table.currentPeriodEnd, now),
            or(
              inArray(table.status, ["trialing", "active"]),
              and(eq(table.status, "past_due"), or(lte(table.updatedAt, now - retryEverySeconds), lte(table.retryUntil, now))),
            ),
          ),
        )
        .orderBy(asc(table.currentPeriodEnd))
        .limit(limit);
    },

    /** Per token, the time of a merchant's last withdrawal of subscription income and what the manager holds for it. */
    async subscriptionIncome(owner: OnchainMerchant): Promise<{ token: Hex; held: bigint; lastWithdrawal: bigint | null }[]> {
      const table = tables.ledger;
      const rows = await db
        .select({ token: table.token, held: sum(table.amount), last: sql<string | null>`max(case when ${table.kind} = 'withdrawal' then ${table.timestamp} end)` })
        .from(table)
        .where(and(eq(table.chainId, owner.chainId), eq(table.merchantId, owner.merchantId), inArray(table.kind, ["subscription_charge", "subscription_refund", "withdrawal"])))
        .groupBy(table.token);
      return rows.map((row) => ({ token: row.token, held: BigInt(row.held ?? 0), lastWithdrawal: row.last === null ? null : BigInt(row.last) }));
    },

    /**
     * The oldest registry record on `chainId` owned by `owner` and naming `signer` (see api/merchants/identity.ts).
     * A found record is remembered for `REGISTRATION_CACHE_MS` under the whole (chain, owner, signer) key, since
     * every invoice creation asks; a merchant not yet registered is asked again each time.
     */
    async merchantRecord(chainId: number, owner: Address, signer: Address): Promise<IndexedMerchant | undefined> {
      const key = `${chainId}:${lower(owner)}:${lower(signer)}`;
      const cached = registrations.get(key);
      if (cached && cached.expires > Date.now()) return cached.row;
      const [row] = await db
        .select()
        .from(tables.merchant)
        .where(and(eq(tables.merchant.chainId, chainId), eq(tables.merchant.owner, lower(owner)), eq(tables.merchant.signer, lower(signer))))
        .orderBy(asc(tables.merchant.merchantId))
        .limit(1);
      if (row) {
        if (registrations.size > 10_000) registrations.clear();
        registrations.set(key, { row, expires: Date.now() + REGISTRATION_CACHE_MS });
      }
      return row;
    },

    /**
     * The indexed state of one invoice. Concurrent reads of the same invoice share one query (clients polling
     * for payment ask for the same row many times a second); nothing is cached beyond the query in flight.
     */
    invoice(chainId: number, key: Hex): Promise<IndexedInvoice | undefined> {
      const id = `${chainId}:${lower(key)}`;
      let pending = invoicesInFlight.get(id);
      if (!pending) {
        pending = db
          .select()
          .from(tables.invoice)
          .where(and(eq(tables.invoice.chainId, chainId), eq(tables.invoice.key, lower(key))))
          .limit(1)
          .then((rows) => rows[0])
          .finally(() => invoicesInFlight.delete(id));
        invoicesInFlight.set(id, pending);
      }
      return pending;
    },

    /** Indexed state of many invoices of one chain, by key. */
    async invoices(chainId: number, keys: Hex[]): Promise<Map<string, IndexedInvoice>> {
      if (keys.length === 0) return new Map();
      const rows = await db
        .select()
        .from(tables.invoice)
        .where(and(eq(tables.invoice.chainId, chainId), inArray(tables.invoice.key, keys.map(lower))));
      return new Map(rows.map((row) => [row.key, row]));
    },

    /** Paid invoices with an excess swept from their deposit address still held for the refund address. */
    async depositHeldInvoices(chainId: number, limit: number): Promise<IndexedInvoice[]> {
      return db
        .select()
        .from(tables.invoice)
        .where(and(eq(tables.invoice.chainId, chainId), gt(tables.invoice.depositHeld, 0n)))
        .limit(limit);
    },

    /** Refund addresses set on-chain and deposit returns, by invoice key. */
    async depositAccounts(chainId: number, keys: Hex[]): Promise<Map<string, IndexedDepositAccount>> {
      if (keys.length === 0) return new Map();
      const rows = await db
        .select()
        .from(tables.depositAccount)
        .where(and(eq(tables.depositAccount.chainId, chainId), inArray(tables.depositAccount.key, keys.map(lower))));
      return new Map(rows.map((row) => [row.key, row]));
    },

    async refunds(chainId: number, key: Hex): Promise<IndexedRefund[]> {
      return db
        .select()
        .from(tables.refund)
        .where(and(eq(tables.refund.chainId, chainId), eq(tables.refund.key, lower(key))))
        .orderBy(asc(tables.refund.timestamp));
    },

    async plans(owner: OnchainMerchant): Promise<IndexedPlan[]> {
      return db
        .select()
        .from(tables.plan)
        .where(and(eq(tables.plan.chainId, owner.chainId), eq(tables.plan.merchantId, owner.merchantId)))
        .orderBy(asc(tables.plan.planId));
    },

    async plan(chainId: number, planId: number): Promise<IndexedPlan | undefined> {
      const rows = await db
        .select()
        .from(tables.plan)
        .where(and(eq(tables.plan.chainId, chainId), eq(tables.plan.planId, planId)))
        .limit(1);
      return rows[0];
    },

    async subscriptions(owner: OnchainMerchant): Promise<IndexedSubscription[]> {
      return db
        .select()
        .from(tables.subscription)
        .where(and(eq(tables.subscription.chainId, owner.chainId), eq(tables.subscription.merchantId, owner.merchantId)))
        .orderBy(asc(tables.subscription.subscriptionId));
    },

    async subscription(chainId: number, subscriptionId: bigint): Promise<IndexedSubscription | undefined> {
      const rows = await db
        .select()
        .from(tables.subscription)
        .where(and(eq(tables.subscription.chainId, chainId), eq(tables.subscription.subscriptionId, subscriptionId)))
        .limit(1);
      return rows[0];
    },

    async subscriptionsOf(owner: OnchainMerchant, subscribers: Address[]): Promise<IndexedSubscription[]> {
      if (subscribers.length === 0) return [];
      return db
        .select()
        .from(tables.subscription)
        .where(
          and(
            eq(tables.subscription.chainId, owner.chainId),
            eq(tables.subscription.merchantId, owner.merchantId),
            inArray(tables.subscription.subscriber, subscribers.map(lower)),
          ),
        );
    },

    async charges(chainId: number, subscriptionId: bigint): Promise<IndexedCharge[]> {
      return db
        .select()
        .from(tables.charge)
        .where(and(eq(tables.charge.chainId, chainId), eq(tables.charge.subscriptionId, subscriptionId)))
        .orderBy(asc(tables.charge.timestamp));
    },

    /** Sum of ledger amounts strictly before `before` (the statement's opening balance). */
    async ledgerBalance(owner: OnchainMerchant, token: Address, before: bigint): Promise<bigint> {
      const rows = await db
        .select({ total: sum(tables.ledger.amount) })
        .from(tables.ledger)
        .where(
          and(
            eq(tables.ledger.chainId, owner.chainId),
            eq(tables.ledger.merchantId, owner.merchantId),
            eq(tables.ledger.token, lower(token)),
            lt(tables.ledger.timestamp, before),
          ),
        );
      return BigInt(rows[0]?.total ?? 0);
    },

    /** Ledger entries in [from, to), oldest first, `limit` at a time after `cursor` (keyset pagination). */
    async ledgerPage(
      owner: OnchainMerchant,
      token: Address,
      from: bigint,
      to: bigint,
      limit: number,
      cursor?: LedgerCursor,
    ): Promise<LedgerEntry[]> {
      const table = tables.ledger;
      return db
        .select()
        .from(table)
        .where(
          and(
            eq(table.chainId, owner.chainId),
            eq(table.merchantId, owner.merchantId),
            eq(table.token, lower(token)),
            gte(table.timestamp, from),
            lt(table.timestamp, to),
            // (timestamp, id) > cursor, written so that `timestamp >= cursor` bounds the index scan: each page
            // then reads only its own rows instead of filtering out every earlier one.
            cursor
              ? and(gte(table.timestamp, cursor.timestamp), or(gt(table.timestamp, cursor.timestamp), gt(table.id, cursor.id)))
              : sql`true`,
          ),
        )
        .orderBy(asc(table.timestamp), asc(table.id))
        .limit(limit);
    },

    /**
     * Subscriptions of several on-chain identities of one merchant, ordered by (chain, id), `limit` at a time
     * after `cursor` (keyset pagination).
     */
    async subscriptionPage(
      owners: OnchainMerchant[],
      filter: SubscriptionFilter,
      limit: number,
      cursor?: SubscriptionCursor,
    ): Promise<IndexedSubscription[]> {
      const table = tables.subscription;
      const scoped = owners.filter((owner) => filter.chainId === undefined || owner.chainId === filter.chainId);
      if (scoped.length === 0) return [];
      return db
        .select()
        .from(table)
        .where(
          and(
            or(...scoped.map((owner) => and(eq(table.chainId, owner.chainId), eq(table.merchantId, owner.merchantId)))),
            filter.planId !== undefined ? eq(table.planId, filter.planId) : sql`true`,
            filter.status !== undefined ? eq(table.status, filter.status) : sql`true`,
            filter.subscriber !== undefined ? eq(table.subscriber, lower(filter.subscriber)) : sql`true`,
            cursor
              ? and(
                  gte(table.chainId, cursor.chainId),
                  or(gt(table.chainId, cursor.chainId), gt(table.subscriptionId, cursor.subscriptionId)),
                )
              : sql`true`,
          ),
        )
        .orderBy(asc(table.chainId), asc(table.subscriptionId))
        .limit(limit);
    },

    /** Per kind, the sum and number of ledger movements in [from, to) (a statement's totals). */
    async ledgerTotals(owner: OnchainMerchant, token: Address, from: bigint, to: bigint): Promise<LedgerKindTotal[]> {
      const table = tables.ledger;
      const rows = await db
        .select({ kind: table.kind, total: sum(table.amount), count: count() })
        .from(table)
        .where(
          and(
            eq(table.chainId, owner.chainId),
            eq(table.merchantId, owner.merchantId),
            eq(table.token, lower(token)),
            gte(table.timestamp, from),
            lt(table.timestamp, to),
          ),
        )
        .groupBy(table.kind);
      return rows.map((row) => ({ kind: row.kind, total: BigInt(row.total ?? 0), count: Number(row.count) }));
    },

    /** Payments of many invoices of one chain, oldest first. */
    async paymentsOf(chainId: number, keys: Hex[]): Promise<IndexedPayment[]> {
      if (keys.length === 0) return [];
      return db
        .select()
        .from(tables.payment)
        .where(and(eq(tables.payment.chainId, chainId), inArray(tables.payment.key, keys.map(lower))))
        .orderBy(asc(tables.payment.timestamp));
    },

    /** Refunds of many invoices of one chain, oldest first. */
    async refundsOf(chainId: number, keys: Hex[]): Promise<IndexedRefund[]> {
      if (keys.length === 0) return [];
      return db
        .select()
        .from(tables.refund)
        .where(and(eq(tables.refund.chainId, chainId), inArray(tables.refund.key, keys.map(lower))))
        .orderBy(asc(tables.refund.timestamp));
    },

    /** Ids and blocks of one chain's activity rows from block `from` on (the deriver's window). */
    async activityIds(chainId: number, from: bigint): Promise<{ id: string; blockNumber: bigint }[]> {
      return db
        .select({ id: tables.activity.id, blockNumber: tables.activity.blockNumber })
        .from(tables.activity)
        .where(and(eq(tables.activity.chainId, chainId), gte(tables.activity.blockNumber, from)));
    },

    /** Activity rows by id. */
    async activityRows(ids: string[]): Promise<ActivityRow[]> {
      if (ids.length === 0) return [];
      return db.select().from(tables.activity).where(inArray(tables.activity.id, ids));
    },

    /** Which of `ids` are still indexed. */
    async activityPresent(ids: string[]): Promise<Set<string>> {
      if (ids.length === 0) return new Set();
      const rows = await db.select({ id: tables.activity.id }).from(tables.activity).where(inArray(tables.activity.id, ids));
      return new Set(rows.map((row) => row.id));
    },

    /** One registry record by its id. */
    async merchantById(chainId: number, merchantId: bigint): Promise<IndexedMerchant | undefined> {
      const [row] = await db
        .select()
        .from(tables.merchant)
        .where(and(eq(tables.merchant.chainId, chainId), eq(tables.merchant.merchantId, merchantId)))
        .limit(1);
      return row;
    },
  };
}

export type IndexedReader = ReturnType<typeof createIndexedReader>;
