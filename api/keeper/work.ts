/**
 * What a keeper should do now on a chain, from the indexed state and the stored invoice terms: release held
 * payments whose hold is over, refund those whose `fulfillBy` passed unfulfilled or whose dispute expired, renew
 * due subscriptions, and pay out subscription income on each merchant's schedule. Every item is a call anyone may
 * make; the keeper simulates each before sending, so work that another keeper (or anyone) already did is
 * skipped, never sent twice.
 */
import { and, eq, sql } from "drizzle-orm";
import type { Address } from "viem";
import { invoiceToJson, type InvoiceJson } from "../../contracts/invoice";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { ApiDeps } from "../env";
import type { IndexedInvoice } from "../indexed";
import { termsOf } from "../invoices/instructions";
import { onchainIdentity } from "../merchants/identity";
import { invoices, merchants } from "../store/schema";

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

export interface KeeperWork {
  chainId: number;
  now: string;
  releases: InvoiceWork[];
  unfulfilledRefunds: InvoiceWork[];
  expiredDisputeRefunds: InvoiceWork[];
  renewals: { contract: Address; subscriptionIds: string[] };
  withdrawals: { contract: Address; merchantId: string; token: Address; subscriptionIds: string[]; reason: string }[];
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
  };
}

