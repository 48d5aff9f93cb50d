/**
 * BTC invoices: created on the merchant's Bitcoin account (an address of its own, a BIP21 URI), shown with the
 * status the watcher's records give (api/bitcoin/state.ts). No escrow: the money goes straight to the
 * merchant's wallet, which the response says in `payment.btc.custody`.
 */
import { and, desc, eq, inArray } from "drizzle-orm";
import { newId } from "../auth";
import type { ApiDeps, MerchantRecord } from "../env";
import type { Remember, RememberedResponse, StoreTx } from "../idempotency";
import { detailsHash, type InvoiceDetails } from "../invoices/details";
import type { CreateInvoiceInput, InvoiceView } from "../invoices/schemas";
import { linkFields } from "../invoices/view";
import { AMOUNT_ERROR_MESSAGES, formatAmount, parseAmount } from "../money";
import { problem, type FieldError } from "../problems";
import type { StoreDb } from "../store";
import { btcBlocks, btcInvoices, btcPayments, btcRefunds, btcWallets, type CheckoutFields, type InvoicePrice } from "../store/schema";
import { bip21Uri } from "./addresses";
import { validateAddress } from "./refund-address";
import { btcInvoiceState, confirmationsOf, type PaymentRecord, type RefundRecord } from "./state";
import { activeWallet, allocateAddress, CAIP2 } from "./wallets";
import type { BitcoinNetwork } from "./keys";

export type BtcInvoiceRow = typeof btcInvoices.$inferSelect;
type PaymentRow = typeof btcPayments.$inferSelect;
type RefundRow = typeof btcRefunds.$inferSelect;

export const BTC_DECIMALS = 8;
/** Below this an output is dust: no wallet would send it, and it could not be refunded. */
const MIN_INVOICE_SATS = 1_000n;

const iso = (seconds: bigint | number | null | undefined) => (seconds === null || seconds === undefined ? null : new Date(Number(seconds) * 1000).toISOString());

export function isBitcoin(currency: string): boolean {
  return currency.trim().toUpperCase() === "BTC";
}

/** The watcher's view of the chain: the last block processed, and "now" (the later of wall clock and block time). */
export async function bitcoinChainState(db: Pick<StoreDb, "select">, network: string): Promise<{ tipHeight: number | null; now: bigint }> {
  const [tip] = await db.select().from(btcBlocks).where(eq(btcBlocks.network, network)).orderBy(desc(btcBlocks.height)).limit(1);
  const wall = BigInt(Math.floor(Date.now() / 1000));
  const tipTime = tip ? BigInt(tip.time) : 0n;
  return { tipHeight: tip?.height ?? null, now: tipTime > wall ? tipTime : wall };
}

/** Fields of the create body that only an escrow gives meaning to. */
const ESCROW_ONLY = ["chainId", "payer", "arbiter", "holdSeconds", "fulfillBy"] as const;

/** What a BTC invoice priced in fiat, or made by a payment link, adds to the request (api/invoices/create.ts, api/payment-links). */
export interface BtcInvoiceOptions {
  /** The amount already converted from fiat (`body.amount` is then not read, and line items are in fiat). */
  amountSats?: bigint;
  /** Absolute expiry (a fiat price's rate lock), instead of `expiresInSeconds`. */
  expiresAt?: bigint;
  price?: InvoicePrice;
  paymentLinkId?: string;
  checkout?: CheckoutFields;
  /** Runs first in the invoice's transaction; a response it returns is the answer and nothing is created. */
  inTransaction?: (tx: StoreTx) => Promise<RememberedResponse | undefined>;
}

export async function createBtcInvoice(
  deps: ApiDeps,
  merchant: MerchantRecord,
  body: CreateInvoiceInput,
  remember: Remember | undefined,
  options: BtcInvoiceOptions = {},
): Promise<RememberedResponse> {
  const config = deps.config.bitcoin;
  if (!config) {
    throw problem.validation([
      { field: "currency", message: "BTC is not enabled on this API (its operator sets BITCOIN_ESPLORA_URL or BITCOIN_RPC_URL to turn it on)" },
    ]);
  }
  const errors: FieldError[] = [];
  for (const field of ESCROW_ONLY) {
    if (body[field] !== undefined) {
      errors.push({ field, message: "is not available for BTC invoices: Bitcoin payments go straight to your wallet, with no escrow to hold, release or arbitrate them" });
    }
  }
  const parsed = options.amountSats !== undefined ? ({ ok: true, value: options.amountSats } as const) : parseAmount(body.amount, BTC_DECIMALS);
  let amountSats: bigint | undefined;
  if (!parsed.ok) errors.push({ field: "amount", message: AMOUNT_ERROR_MESSAGES[parsed.error](BTC_DECIMALS) });
  else if (parsed.value < MIN_INVOICE_SATS) errors.push({ field: "amount", message: `must be at least ${formatAmount(MIN_INVOICE_SATS, BTC_DECIMALS)} BTC (${MIN_INVOICE_SATS} sats): smaller outputs are dust` });
  else amountSats = parsed.value;
  const items = body.lineItems ?? [];
  if (items.length > 0 && amountSats !== undefined && options.price?.fiatAmount === undefined) {
    let total = 0n;
    let readable = true;
    items.forEach((item, index) => {
      const unit = /^0(\.0+)?$/.test(item.unitAmount) ? { ok: true as const, value: 0n } : parseAmount(item.unitAmount, BTC_DECIMALS);
      if (!unit.ok) {
        readable = false;
        errors.push({ field: `lineItems.${index}.unitAmount`, message: AMOUNT_ERROR_MESSAGES[unit.error](BTC_DECIMALS) });
      } else total += unit.value * BigInt(item.quantity);
    });
    if (readable && total !== amountSats) {
      errors.push({ field: "lineItems", message: `add up to ${formatAmount(total, BTC_DECIMALS)} BTC, not the invoice amount ${formatAmount(amountSats, BTC_DECIMALS)} BTC` });
    }
  }
  if (body.refundAddress !== undefined) {
    const refund = validateAddress(body.refundAddress, config.network);
    if (refund.error) errors.push({ field: "refundAddress", message: refund.error });
  }
  if (errors.length > 0 || amountSats === undefined) throw problem.validation(errors);

  const wallet = await activeWallet(deps.store.db, merchant.id);
  if (!wallet) {
    throw problem.conflict("bitcoin-account-missing", "Register your Bitcoin account's public key first: PUT /v1/merchants/me/bitcoin with {\"key\": \"zpub…\"} (tpub/vpub on test networks, or a wpkh()/tr() descriptor).");
  }
  const details: InvoiceDetails = {
    description: body.description ?? null,
    lineItems: items,
    customer: body.customer ? { id: body.customer.id, ...(body.customer.email !== undefined ? { email: body.customer.email } : {}) } : null,
    metadata: body.metadata ?? {},
  };
  const { now, tipHeight } = await bitcoinChainState(deps.store.db, wallet.network);
  const id = newId("inv");
  return deps.store.db.transaction(async (tx) => {
    const answer = await options.inTransaction?.(tx);
    if (answer) return answer;
    const address = await allocateAddress(tx, wallet, id, now, config.addressReuseAfterSeconds);
    const [row] = await tx
      .insert(btcInvoices)
      .values({
        id,
        merchantId: merchant.id,
        walletId: wallet.id,
        network: wallet.network,
        address: address.address,
        addressIndex: address.index,
        script: address.script,
        amountSats: amountSats!,
        expiresAt: options.expiresAt ?? now + BigInt(body.expiresInSeconds ?? deps.config.defaultExpirySeconds),
        detailsHash: detailsHash(details),
        description: body.description ?? null,
        lineItems: body.lineItems ?? null,
        customerId: body.customer?.id ?? null,
        customerEmail: body.customer?.email ?? null,
        metadata: body.metadata ?? null,
        paymentLinkId: options.paymentLinkId ?? null,
        price: options.price ?? null,
        checkout: options.checkout ?? (body.successUrl || body.cancelUrl ? { ...(body.successUrl ? { successUrl: body.successUrl } : {}), ...(body.cancelUrl ? { cancelUrl: body.cancelUrl } : {}) } : null),
        refundAddress: body.refundAddress ?? null,
        createdAt: new Date(),
      })
      .returning();
    const view = btcInvoiceView(row, { payments: [], refunds: [] }, { tipHeight, now, policy: wallet.confirmations, label: merchant.name });
    const response = { status: 201, body: JSON.stringify(view) };
    await remember?.(tx, response);
    return response;
  });
}

export interface BtcRecords {
  payments: PaymentRow[];
  refunds: RefundRow[];
}

/** Payments and refunds of several invoices, in two queries. */
export async function btcRecords(db: Pick<StoreDb, "select">, invoiceIds: string[]): Promise<Map<string, BtcRecords>> {
  const result = new Map<string, BtcRecords>(invoiceIds.map((id) => [id, { payments: [], refunds: [] }]));
  if (invoiceIds.length === 0) return result;
  const [payments, refunds] = await Promise.all([
    db.select().from(btcPayments).where(inArray(btcPayments.invoiceId, invoiceIds)),
    db.select().from(btcRefunds).where(inArray(btcRefunds.invoiceId, invoiceIds)).orderBy(btcRefunds.createdAt),
  ]);
  for (const payment of payments) result.get(payment.invoiceId)?.payments.push(payment);
  for (const refund of refunds) result.get(refund.invoiceId)?.refunds.push(refund);
  return result;
}

export const paymentRecord = (row: PaymentRow): PaymentRecord => ({
  txid: row.txid,
  vout: row.vout,
  amountSats: row.amountSats,
  blockHeight: row.blockHeight,
  blockTime: row.blockTime,
  firstSeen: row.firstSeen,
  late: row.late,
  removed: row.removedAt !== null,
});

export const refundRecord = (row: RefundRow): RefundRecord => ({
  amountSats: row.amountSats,
  feeSats: row.feeSats,
  paidSats: row.paidSats,
  blockHeight: row.blockHeight,
});

export interface BtcViewState {
  tipHeight: number | null;
  now: bigint;
  policy: number;
  label?: string;
}

export function stateOf(row: BtcInvoiceRow, records: BtcRecords, chain: BtcViewState) {
  return btcInvoiceState(row, { payments: records.payments.map(paymentRecord), refunds: records.refunds.map(refundRecord) }, { tipHeight: chain.tipHeight ?? -1, now: chain.now, policy: chain.policy });
}

export function btcInvoiceView(row: BtcInvoiceRow, records: BtcRecords, chain: BtcViewState): InvoiceView {
  const state = stateOf(row, records, chain);
  const format = (sats: bigint) => formatAmount(sats, BTC_DECIMALS);
  const tip = chain.tipHeight ?? -1;
  const paidAt = state.completedBy ? (state.completedBy.blockTime ?? state.completedBy.firstSeen) : null;
  const paid = state.status === "paid" || state.status === "partially_refunded" || state.status === "refunded";
  return {
    id: row.id,
    status: state.status,
    amount: format(row.amountSats),
    amountBaseUnits: row.amountSats.toString(),
    currency: "BTC",
    token: null,
    decimals: BTC_DECIMALS,
    chainId: null,
    network: CAIP2[row.network as BitcoinNetwork],
    createdAt: row.createdAt.toISOString(),
    expiresAt: iso(row.expiresAt)!,
    description: row.description ?? null,
    lineItems: row.lineItems ?? [],
    customer: row.customerId === null ? null : { id: row.customerId, ...(row.customerEmail ? { email: row.customerEmail } : {}) },
    metadata: row.metadata ?? {},
    allowedPayer: null,
    arbiter: null,
    holdSeconds: 0,
    fulfillBy: null,
    maxFeeBps: 0,
    fulfilled: false,
    voidedAt: null,
    payer: null,
    paidAt: paid ? iso(paidAt) : null,
    paidTransaction: paid && state.completedBy ? state.completedBy.txid : null,
    confirmations: state.confirmations,
    confirmationsRequired: chain.policy,
    releaseAt: null,
    heldAmount: format(0n),
    refundedAmount: format(state.refundedSats),
    // No escrow: what arrived is in the merchant's wallet already.
    releasedAmount: format(paid ? state.receivedSats : 0n),
    feeAmount: format(0n),
    disputeDeadline: null,
    invoiceKey: null,
    detailsHash: row.detailsHash,
    payment: {
      btc: {
        network: CAIP2[row.network as BitcoinNetwork],
        address: row.address,
        amountSats: row.amountSats.toString(),
        uri: bip21Uri(row.address, state.dueSats > 0n ? state.dueSats : row.amountSats, { label: chain.label, message: row.description ?? undefined }),
        custody: "merchant_wallet",
      },
    },
    bitcoin: {
      receivedSats: state.receivedSats.toString(),
      confirmedSats: state.confirmedSats.toString(),
      dueSats: state.dueSats.toString(),
      overpaidSats: state.overpaidSats.toString(),
      paidLate: state.paidLate,
      refundedSats: state.refundedSats.toString(),
      refundAddress: row.refundAddress,
      payments: records.payments.map((payment) => ({
        txid: payment.txid,
        vout: payment.vout,
        amountSats: payment.amountSats.toString(),
        confirmations: payment.removedAt ? 0 : confirmationsOf(payment.blockHeight, tip),
        blockHeight: payment.blockHeight,
        late: payment.late,
        status: payment.removedAt ? "removed" : payment.blockHeight === null ? "unconfirmed" : "confirmed",
        removedReason: payment.removedReason,
      })),
      refunds: records.refunds.map((refund) => ({
        id: refund.id,
        destination: refund.destination,
        amountSats: refund.amountSats.toString(),
        feeSats: refund.feeSats.toString(),
        txid: refund.txid,
        status: refund.seenTxid === null ? "awaiting_signature" : refund.blockHeight === null ? "unconfirmed" : "confirmed",
        seenTxid: refund.seenTxid,
        createdAt: refund.createdAt.toISOString(),
      })),
      indexedHeight: chain.tipHeight,
    },
    deposit: null,
    ...linkFields(row),
  };
}

/** One merchant's BTC invoice, or undefined. */
export async function loadBtcInvoice(db: Pick<StoreDb, "select">, merchantId: string, id: string): Promise<BtcInvoiceRow | undefined> {
  const [row] = await db
    .select()
    .from(btcInvoices)
    .where(and(eq(btcInvoices.id, id), eq(btcInvoices.merchantId, merchantId)))
    .limit(1);
  return row;
}

/** A BTC invoice by id alone (the hosted checkout, where the id is the customer's capability). */
export async function loadBtcInvoiceById(db: Pick<StoreDb, "select">, id: string): Promise<BtcInvoiceRow | undefined> {
  const [row] = await db.select().from(btcInvoices).where(eq(btcInvoices.id, id)).limit(1);
  return row;
}

/** Views of several BTC invoices of one merchant (the wallet policy of each invoice's account). */
export async function viewBtcInvoices(db: StoreDb, merchant: Pick<MerchantRecord, "name">, rows: BtcInvoiceRow[]): Promise<Map<string, InvoiceView>> {
  const views = new Map<string, InvoiceView>();
  if (rows.length === 0) return views;
  const walletIds = [...new Set(rows.map((row) => row.walletId))];
  const [records, wallets] = await Promise.all([
    btcRecords(db, rows.map((row) => row.id)),
    db.select({ id: btcWallets.id, confirmations: btcWallets.confirmations }).from(btcWallets).where(inArray(btcWallets.id, walletIds)),
  ]);
  const policy = new Map(wallets.map((wallet) => [wallet.id, wallet.confirmations]));
  const chains = new Map<string, Awaited<ReturnType<typeof bitcoinChainState>>>();
  for (const network of new Set(rows.map((row) => row.network))) chains.set(network, await bitcoinChainState(db, network));
  for (const row of rows) {
    views.set(row.id, btcInvoiceView(row, records.get(row.id)!, { ...chains.get(row.network)!, policy: policy.get(row.walletId) ?? 1, label: merchant.name }));
  }
  return views;
}


