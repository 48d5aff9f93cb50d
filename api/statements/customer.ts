/**
 * A customer's billing status: the merchant's invoices for that customer id (from the API store) with their
 * status from the indexed chain, the payments and refunds of those invoices, and the subscriptions of the
 * wallets that paid them, each with its next charge. BTC invoices (api/bitcoin) are included with `chainId`
 * null and `token` null: their open amounts, their mined payments (no payer address: a Bitcoin payment has
 * none) and their mined refunds.
 */
import { z } from "@hono/zod-openapi";
import { and, asc, eq } from "drizzle-orm";
import { getAddress, type Address, type Hex } from "viem";
import type { ApiDeps, MerchantRecord } from "../env";
import type { IndexedInvoice, IndexedPayment, IndexedRefund } from "../indexed";
import { chainNow } from "../clock";
import { formatAmount } from "../money";
import { problem } from "../problems";
import { INVOICE_STATUSES, invoiceStatus, type InvoiceStatus } from "../status";
import { btcInvoices, invoices } from "../store/schema";
import { btcRecords, BTC_DECIMALS, viewBtcInvoices } from "../bitcoin/invoices";
import { isoFromSeconds } from "../subscriptions/ids";
import { onchainIdentities } from "../merchants/identity";
import { tokenAt } from "../tokens";
import { SubscriptionSchema, isRunning, planFromIndexed, subscriptionView, type SubscriptionView } from "../subscriptions/views";

type InvoiceRow = typeof invoices.$inferSelect;

const MoneySchema = { amount: z.string(), amountBaseUnits: z.string() };

export const CustomerStatementSchema = z
  .object({
    customerId: z.string(),
    generatedAt: z.string(),
    invoiceCounts: z.record(z.enum(INVOICE_STATUSES), z.number().int()).openapi({ description: "Number of the customer's invoices per status" }),
    openInvoices: z.array(
      z.object({
        id: z.string(),
        chainId: z.number().int().nullable().openapi({ description: "null for BTC" }),
        currency: z.string(),
        token: z.string().nullable(),
        ...MoneySchema,
        description: z.string().nullable(),
        createdAt: z.string(),
        expiresAt: z.string(),
      }),
    ),
    amountDue: z
      .array(z.object({ chainId: z.number().int().nullable(), currency: z.string(), token: z.string().nullable(), ...MoneySchema }))
      .openapi({ description: "Sum of the open invoices, per chain and currency" }),
    payments: z.array(
      z.object({
        invoiceId: z.string(),
        invoiceStatus: z.enum(INVOICE_STATUSES),
        chainId: z.number().int().nullable(),
        currency: z.string(),
        ...MoneySchema,
        payer: z.string().nullable().openapi({ description: "The paying wallet (null for BTC: a Bitcoin payment names no payer)" }),
        paidAt: z.string(),
        transactionHash: z.string(),
      }),
    ),
    refunds: z.array(
      z.object({
        invoiceId: z.string(),
        chainId: z.number().int().nullable(),
        currency: z.string(),
        ...MoneySchema,
        reason: z.string().openapi({ description: "merchant | unfulfilled | dispute_expired | arbiter" }),
        refundedAt: z.string(),
        transactionHash: z.string(),
      }),
    ),
    wallets: z.array(z.string()).openapi({ description: "Wallets that paid the customer's invoices: their subscriptions are listed" }),
    subscriptions: z.array(SubscriptionSchema).openapi({ description: "Trialing, active and past-due subscriptions of those wallets" }),
    nextCharge: z
      .object({ subscriptionId: z.string(), at: z.string(), currency: z.string(), ...MoneySchema })
      .nullable()
      .openapi({ description: "The earliest upcoming subscription charge" }),
  })
  .openapi("CustomerStatement");

export type CustomerStatement = z.infer<typeof CustomerStatementSchema>;

/** The customer's invoices' on-chain records, payments and refunds, chain by chain. */
async function indexedRecords(deps: ApiDeps, rows: InvoiceRow[]) {
  const onchain = new Map<string, IndexedInvoice>();
  const payments: IndexedPayment[] = [];
  const refunds: IndexedRefund[] = [];
  for (const chainId of new Set(rows.map((row) => row.chainId))) {
    const keys = rows.filter((row) => row.chainId === chainId).map((row) => row.invoiceKey as Hex);
    const [found, paid, refunded] = await Promise.all([
      deps.indexed.invoices(chainId, keys),
      deps.indexed.paymentsOf(chainId, keys),
      deps.indexed.refundsOf(chainId, keys),
    ]);
    for (const [key, record] of found) onchain.set(`${chainId}:${key}`, record);
    payments.push(...paid);
    refunds.push(...refunded);
  }
  return { onchain, payments, refunds };
}

export async function customerStatement(deps: ApiDeps, merchant: MerchantRecord, customerId: string): Promise<CustomerStatement> {
  const rows = await deps.store.db
    .select()
    .from(invoices)
    .where(and(eq(invoices.merchantId, merchant.id), eq(invoices.customerId, customerId)))
    .orderBy(asc(invoices.sequence));
  const btcRows = await deps.store.db
    .select()
    .from(btcInvoices)
    .where(and(eq(btcInvoices.merchantId, merchant.id), eq(btcInvoices.customerId, customerId)))
    .orderBy(asc(btcInvoices.sequence));
  if (rows.length === 0 && btcRows.length === 0) throw problem.notFound(`Customer ${customerId}`);
  const btc = await bitcoinPart(deps, merchant, btcRows);

  const { onchain, payments, refunds } = await indexedRecords(deps, rows);
  const byKey = new Map(rows.map((row) => [`${row.chainId}:${row.invoiceKey.toLowerCase()}`, row]));
  const now = new Map<number, bigint>();
  for (const chainId of new Set(rows.map((row) => row.chainId))) now.set(chainId, await chainNow(deps.chains.get(chainId)));

  const statuses = new Map<string, InvoiceStatus>();
  const invoiceCounts = Object.fromEntries(INVOICE_STATUSES.map((status) => [status, 0])) as Record<InvoiceStatus, number>;
  for (const row of rows) {
    const record = onchain.get(`${row.chainId}:${row.invoiceKey.toLowerCase()}`);
    const status = invoiceStatus(record, { expiresAt: row.expiresAt }, now.get(row.chainId)!);
    statuses.set(row.id, status);
    invoiceCounts[status] += 1;
  }
  for (const view of btc.views) invoiceCounts[view.status] += 1;

  const open = rows.filter((row) => statuses.get(row.id) === "open");
  const due = new Map<string, { chainId: number | null; currency: string; token: string | null; decimals: number; total: bigint }>();
  for (const row of open) {
    const key = `${row.chainId}:${row.token.toLowerCase()}`;
    const entry = due.get(key) ?? { chainId: row.chainId, currency: row.currency, token: row.token, decimals: row.decimals, total: 0n };
    entry.total += BigInt(row.amount);
    due.set(key, entry);
  }

  const invoiceOf = (chainId: number, key: string) => byKey.get(`${chainId}:${key.toLowerCase()}`)!;
  const wallets = [...new Set(payments.map((payment) => payment.payer.toLowerCase()))] as Address[];

  const subscriptions: SubscriptionView[] = [];
  if (wallets.length > 0) {
    for (const registration of await onchainIdentities(deps, merchant)) {
      for (const row of await deps.indexed.subscriptionsOf(registration.owner, wallets)) {
        if (!isRunning(row.status)) continue;
        const plan = await deps.indexed.plan(row.chainId, row.planId);
        subscriptions.push(subscriptionView(row, plan && planFromIndexed(plan), await tokenAt(registration.chain, row.token)));
      }
    }
  }
  const upcoming = subscriptions
    .filter((subscription) => subscription.nextChargeAt !== null && subscription.nextChargeAmount !== null)
    .sort((a, b) => Date.parse(a.nextChargeAt!) - Date.parse(b.nextChargeAt!))[0];

  return {
    customerId,
    generatedAt: new Date().toISOString(),
    invoiceCounts,
    openInvoices: [...open.map((row) => ({
      id: row.id,
      chainId: row.chainId,
      currency: row.currency,
      token: row.token,
      amount: formatAmount(BigInt(row.amount), row.decimals),
      amountBaseUnits: row.amount,
      description: row.description,
      createdAt: row.createdAt.toISOString(),
      expiresAt: isoFromSeconds(row.expiresAt),
    })), ...btc.open],
    amountDue: [...due.values(), ...btc.due].map((entry) => ({
      chainId: entry.chainId,
      currency: entry.currency,
      token: entry.token,
      amount: formatAmount(entry.total, entry.decimals),
      amountBaseUnits: entry.total.toString(),
    })),
    payments: [...payments.map((payment) => {
      const row = invoiceOf(payment.chainId, payment.key);
      return {
        invoiceId: row.id,
        invoiceStatus: statuses.get(row.id)!,
        chainId: payment.chainId,
        currency: row.currency,
        amount: formatAmount(payment.amount, row.decimals),
        amountBaseUnits: payment.amount.toString(),
        payer: payment.payer,
        paidAt: isoFromSeconds(payment.timestamp),
        transactionHash: payment.transactionHash,
      };
    }), ...btc.payments],
    refunds: [...refunds.map((refund) => {
      const row = invoiceOf(refund.chainId, refund.key);
      return {
        invoiceId: row.id,
        chainId: refund.chainId,
        currency: row.currency,
        amount: formatAmount(refund.amount, row.decimals),
        amountBaseUnits: refund.amount.toString(),
        reason: refund.reason,
        refundedAt: isoFromSeconds(refund.timestamp),
        transactionHash: refund.transactionHash,
      };
    }), ...btc.refunds],
    wallets: wallets.map((wallet) => getAddress(wallet)),
    subscriptions,
    nextCharge: upcoming
      ? {
          subscriptionId: upcoming.id,
          at: upcoming.nextChargeAt!,
          currency: upcoming.currency,
          amount: upcoming.nextChargeAmount!,
          amountBaseUnits: upcoming.nextChargeAmountBaseUnits!,
        }
      : null,
  };
}

/** The customer's BTC invoices: statuses, what is open and due, mined payments and refunds. */
async function bitcoinPart(deps: ApiDeps, merchant: MerchantRecord, rows: (typeof btcInvoices.$inferSelect)[]) {
  const views = [...(await viewBtcInvoices(deps.store.db, merchant, rows)).values()];
  const records = await btcRecords(deps.store.db, rows.map((row) => row.id));
  const statusOf = new Map(views.map((view) => [view.id, view.status]));
  const format = (sats: bigint) => formatAmount(sats, BTC_DECIMALS);
  const openRows = rows.filter((row) => statusOf.get(row.id) === "open");
  const dueTotal = openRows.reduce((total, row) => total + row.amountSats, 0n);
  return {
    views,
    open: openRows.map((row) => ({
      id: row.id,
      chainId: null,
      currency: "BTC",
      token: null,
      amount: format(row.amountSats),
      amountBaseUnits: row.amountSats.toString(),
      description: row.description,
      createdAt: row.createdAt.toISOString(),
      expiresAt: isoFromSeconds(row.expiresAt),
    })),
    due: dueTotal > 0n ? [{ chainId: null, currency: "BTC", token: null, decimals: BTC_DECIMALS, total: dueTotal }] : [],
    payments: rows.flatMap((row) =>
      records.get(row.id)!.payments
        .filter((payment) => payment.removedAt === null && payment.blockTime !== null)
        .map((payment) => ({
          invoiceId: row.id,
          invoiceStatus: statusOf.get(row.id)!,
          chainId: null,
          currency: "BTC",
          amount: format(payment.amountSats),
          amountBaseUnits: payment.amountSats.toString(),
          payer: null,
          paidAt: isoFromSeconds(BigInt(payment.blockTime!)),
          transactionHash: payment.txid,
        })),
    ),
    refunds: rows.flatMap((row) =>
      records.get(row.id)!.refunds
        .filter((refund) => refund.blockTime !== null && refund.paidSats !== null)
        .map((refund) => ({
          invoiceId: row.id,
          chainId: null,
          currency: "BTC",
          amount: format(refund.paidSats!),
          amountBaseUnits: refund.paidSats!.toString(),
          reason: "merchant",
          refundedAt: isoFromSeconds(BigInt(refund.blockTime!)),
          transactionHash: refund.seenTxid!,
        })),
    ),
  };
}

