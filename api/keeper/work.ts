/**
 * What a keeper should do now on a chain, from the indexed state and the stored invoice terms: release held
 * payments whose hold is over, refund those whose `fulfillBy` passed unfulfilled or whose dispute expired, renew
 * due subscriptions, and pay out subscription income on each merchant's schedule. Every item is a call anyone may
 * make; the keeper simulates each before sending, so work that another keeper (or anyone) already did is
 * skipped, never sent twice.
 */
import { and, eq, sql } from "drizzle-orm";
import type { Address, Hex } from "viem";
import { invoiceToJson, type InvoiceJson } from "../../contracts/invoice";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { ApiDeps } from "../env";
import type { IndexedInvoice } from "../indexed";
import { termsOf } from "../invoices/instructions";
import { onchainIdentity } from "../merchants/identity";
import { evmDeposits, invoices, merchants } from "../store/schema";

/** Past-due subscriptions are retried at most this often (a failed pull costs the keeper gas). */
export const RETRY_EVERY_SECONDS = 6n * 3600n;
/** Subscriptions listed in one withdrawal (its gas grows with each). */
const WITHDRAW_SUBSCRIPTIONS = 100;

export interface InvoiceWork {
  invoiceId: string;
  contract: Address;
  terms: InvoiceJson;
  reason: string;
}

/** A sweep needs the merchant's signature too (it records the payment as `pay` does). */
export interface SweepWork extends InvoiceWork {
  signature: Hex;
}

export interface KeeperWork {
  chainId: number;
  now: string;
  releases: InvoiceWork[];
  unfulfilledRefunds: InvoiceWork[];
  expiredDisputeRefunds: InvoiceWork[];
  renewals: { contract: Address; subscriptionIds: string[] };
  withdrawals: { contract: Address; merchantId: string; token: Address; subscriptionIds: string[]; reason: string }[];
  depositSweeps: SweepWork[];
  depositReturns: InvoiceWork[];
}

const iso = (seconds: bigint | null) => (seconds === null ? "?" : new Date(Number(seconds) * 1000).toISOString());

/** Stored terms for indexed invoices (invoices created through this API); others cannot be acted on here. */
async function withTerms(deps: ApiDeps, chain: ChainRuntime, rows: IndexedInvoice[], reason: (row: IndexedInvoice) => string): Promise<InvoiceWork[]> {
  if (rows.length === 0) return [];
  const keys = rows.map((row) => row.key.toLowerCase());
  const stored = await deps.store.db
    .select()
    .from(invoices)
    .where(and(eq(invoices.chainId, chain.id), sql`lower(${invoices.invoiceKey}) = any(${sql.param(keys)}::text[])`));
  const byKey = new Map(stored.map((row) => [row.invoiceKey.toLowerCase(), row]));
  return rows.flatMap((row) => {
    const invoice = byKey.get(row.key.toLowerCase());
    if (!invoice) return [];
    return [{ invoiceId: invoice.id, contract: invoice.escrowAddress as Address, terms: invoiceToJson(termsOf(invoice)), reason: reason(row) }];
  });
}

/**
 * Deposit addresses that need the keeper: enough waiting to pay a payable invoice (sweep), or money waiting
 * (or an excess held) for an invoice that can no longer take it, with a refund address known (return).
 */
async function depositWork(deps: ApiDeps, chain: ChainRuntime, now: bigint, limit: number): Promise<{ sweeps: SweepWork[]; returns: InvoiceWork[] }> {
  const waiting = await deps.store.db
    .select({ invoice: invoices, balance: evmDeposits.balance })
    .from(evmDeposits)
    .innerJoin(invoices, eq(invoices.id, evmDeposits.invoiceId))
    .where(and(eq(evmDeposits.chainId, chain.id), sql`${evmDeposits.balance} <> '0'`))
    .limit(limit);
  const keys = waiting.map((entry) => entry.invoice.invoiceKey as Hex);
  const [paid, accounts, excess] = await Promise.all([
    deps.indexed.invoices(chain.id, keys),
    deps.indexed.depositAccounts(chain.id, keys),
    deps.indexed.depositHeldInvoices(chain.id, limit),
  ]);
  const sweeps: SweepWork[] = [];
  const returns: InvoiceWork[] = [];
  const returnable = (row: typeof invoices.$inferSelect) =>
    row.payer.toLowerCase() !== "0x0000000000000000000000000000000000000000" || Boolean(accounts.get(row.invoiceKey.toLowerCase())?.refundTo);
  const item = (row: typeof invoices.$inferSelect, reason: string): InvoiceWork => ({ invoiceId: row.id, contract: row.escrowAddress as Address, terms: invoiceToJson(termsOf(row)), reason });
  for (const { invoice: row, balance } of waiting) {
    const record = paid.get(row.invoiceKey.toLowerCase());
    const payable = record === undefined && now < row.expiresAt && (row.fulfillBy === 0n || now <= row.fulfillBy);
    if (payable) {
      if (BigInt(balance) >= BigInt(row.amount)) sweeps.push({ ...item(row, `${balance} base units at ${row.depositAddress}`), signature: row.signature as Hex });
    } else if (returnable(row)) {
      returns.push(item(row, record ? `${balance} base units arrived after the invoice was ${record.status}` : `${balance} base units at the address of an invoice that can no longer be paid`));
    }
  }
  // Excess held by the escrow after a sweep, once the refund address is known.
  const held = excess.filter((record) => !returns.some((work) => work.terms.invoiceId === record.invoiceId));
  if (held.length > 0) {
    const heldAccounts = await deps.indexed.depositAccounts(chain.id, held.map((record) => record.key as Hex));
    const rows = await deps.store.db
      .select()
      .from(invoices)
      .where(and(eq(invoices.chainId, chain.id), sql`lower(${invoices.invoiceKey}) = any(${sql.param(held.map((record) => record.key.toLowerCase()))}::text[])`));
    for (const row of rows) {
      const signed = row.payer.toLowerCase() !== "0x0000000000000000000000000000000000000000";
      if (signed || heldAccounts.get(row.invoiceKey.toLowerCase())?.refundTo) returns.push(item(row, "excess held after the sweep"));
    }
  }
  return { sweeps, returns };
}

export async function keeperWork(deps: ApiDeps, chain: ChainRuntime, limit: number): Promise<KeeperWork> {
  const now = await chainNow(chain);
  const [releasable, unfulfilled, disputes, due] = await Promise.all([
    deps.indexed.releasable(chain.id, now, limit),
    deps.indexed.unfulfilledPastDeadline(chain.id, now, limit),
    deps.indexed.expiredDisputes(chain.id, now, limit),
    deps.indexed.dueSubscriptions(chain.id, now, RETRY_EVERY_SECONDS, limit),
  ]);

  const withdrawals: KeeperWork["withdrawals"] = [];
  for (const merchant of await deps.store.db.select().from(merchants)) {
    const interval = BigInt(merchant.subscriptionPayoutIntervalSeconds);
    if (interval === 0n) continue;
    const identity = await onchainIdentity(deps, merchant, chain.id);
    if (!identity) continue;
    for (const income of await deps.indexed.subscriptionIncome(identity.owner)) {
      if (income.held <= 0n) continue;
      if (income.lastWithdrawal !== null && now - income.lastWithdrawal < interval) continue;
      const subscriptions = (await deps.indexed.subscriptions(identity.owner))
        .filter((row) => row.token.toLowerCase() === income.token.toLowerCase() && ["trialing", "active", "past_due"].includes(row.status))
        .slice(0, WITHDRAW_SUBSCRIPTIONS);
      withdrawals.push({
        contract: chain.subscriptions,
        merchantId: identity.owner.merchantId.toString(),
        token: income.token as Address,
        subscriptionIds: subscriptions.map((row) => row.subscriptionId.toString()),
        reason: income.lastWithdrawal === null ? "first payout of subscription income" : `last payout ${iso(income.lastWithdrawal)}, every ${interval} s`,
      });
    }
  }

  return {
    chainId: chain.id,
    now: iso(now),
    releases: await withTerms(deps, chain, releasable, (row) => `hold ended ${iso(row.releaseAt)}`),
    unfulfilledRefunds: await withTerms(deps, chain, unfulfilled, (row) => `fulfillBy ${iso(row.fulfillBy)} passed unfulfilled`),
    expiredDisputeRefunds: await withTerms(deps, chain, disputes, (row) => `dispute deadline ${iso(row.disputeDeadline)} passed`),
    renewals: { contract: chain.subscriptions, subscriptionIds: due.map((row) => row.subscriptionId.toString()) },
    withdrawals,
    ...(await depositWork(deps, chain, now, limit).then(({ sweeps, returns }) => ({ depositSweeps: sweeps, depositReturns: returns }))),
  };
}

