/**
 * What the API shows of an invoice: the stored terms and details, and everything that needs a transaction —
 * paid, refunded, released, disputed, fulfilled, void — from the indexed chain only (api/status.ts derives the
 * status). A state the service asked for but the chain has not shown yet is never shown.
 */
import { getAddress, zeroAddress, type Hex } from "viem";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { ApiDeps } from "../env";
import type { IndexedInvoice } from "../indexed";
import { formatAmount } from "../money";
import { confirmations, invoiceStatus, type InvoiceStatus } from "../status";
import { paymentInstructions } from "./instructions";
import type { InvoiceRow } from "./rows";
import type { InvoiceView } from "./schemas";
import { defaultConfirmations, requiredConfirmations } from "../webhooks/confirmations";
import type { MerchantRecord } from "../env";
import { merchants } from "../store/schema";
import { eq } from "drizzle-orm";

export interface ChainState {
  /** Chain time (unix seconds). */
  now: bigint;
  /** Head block, or undefined when the node could not be reached. */
  head: bigint | undefined;
  /** The merchant's confirmations for `invoice.confirmed` on this chain (default: the chain's). */
  confirmationsRequired?: number;
}

const iso = (seconds: bigint | null | undefined) => (seconds === null || seconds === undefined ? null : new Date(Number(seconds) * 1000).toISOString());
const checksum = (address: string | null | undefined) => (address ? getAddress(address) : null);
const noneIfZero = (address: string) => (address.toLowerCase() === zeroAddress ? null : getAddress(address));

/** Whether the status of `row` depends on the clock (unpaid: it may expire). */
export function needsClock(onchain: IndexedInvoice | undefined): boolean {
  return !onchain;
}

export function statusOf(row: InvoiceRow, onchain: IndexedInvoice | undefined, now: bigint): InvoiceStatus {
  return invoiceStatus(onchain, { expiresAt: row.expiresAt }, now);
}

export function invoiceView(row: InvoiceRow, onchain: IndexedInvoice | undefined, state: ChainState): InvoiceView {
  const amount = BigInt(row.amount);
  const format = (value: bigint) => formatAmount(value, row.decimals);
  const amountText = format(amount);
  const paid = onchain !== undefined && onchain.status !== "voided";
  const refunded = paid ? onchain.refundedAmount : 0n;
  const released = paid ? onchain.releasedAmount : 0n;
  const fee = paid ? onchain.feeAmount : 0n;
  const held = paid && (onchain.status === "held" || onchain.status === "disputed") ? onchain.amount - refunded : 0n;
  return {
    id: row.id,
    status: statusOf(row, onchain, state.now),
    amount: amountText,
    amountBaseUnits: row.amount,
    currency: row.currency,
    token: getAddress(row.token),
    decimals: row.decimals,
    chainId: row.chainId,
    network: `eip155:${row.chainId}`,
    createdAt: row.createdAt.toISOString(),
    expiresAt: iso(row.expiresAt)!,
    description: row.description ?? null,
    lineItems: row.lineItems ?? [],
    customer: row.customerId === null ? null : { id: row.customerId, ...(row.customerEmail ? { email: row.customerEmail } : {}) },
    metadata: row.metadata ?? {},
    allowedPayer: noneIfZero(row.payer),
    arbiter: noneIfZero(row.arbiter),
    holdSeconds: row.holdDuration,
    fulfillBy: row.fulfillBy === 0n ? null : iso(row.fulfillBy),
    maxFeeBps: row.maxFeeBps,
    fulfilled: paid ? onchain.fulfilled : false,
    voidedAt: onchain?.status === "voided" ? iso(onchain.updatedAt) : null,
    payer: paid ? checksum(onchain.payer) : null,
    paidAt: paid ? iso(onchain.paidAt) : null,
    paidTransaction: paid ? (onchain.paidTransaction ?? null) : null,
    confirmations: state.head === undefined ? (paid ? null : 0) : confirmations(paid ? onchain : undefined, state.head),
    confirmationsRequired: state.confirmationsRequired ?? defaultConfirmations(row.chainId),
    releaseAt: paid ? iso(onchain.releaseAt) : null,
    heldAmount: format(held),
    refundedAmount: format(refunded),
    releasedAmount: format(released),
    feeAmount: format(fee),
    disputeDeadline: paid ? iso(onchain.disputeDeadline) : null,
    invoiceKey: row.invoiceKey,
    detailsHash: row.detailsHash,
    payment: { evm: paymentInstructions(row, amountText, row.currency) },
    bitcoin: null,
  };
}

/** Chain time and head of `chain` (wall clock and no head when the API does not serve it any more). */
export async function chainState(chain: ChainRuntime | undefined, wantClock: boolean): Promise<ChainState> {
  const wall = BigInt(Math.floor(Date.now() / 1000));
  if (!chain) return { now: wall, head: undefined };
  const head = await chain.headBlock().catch(() => undefined);
  return { now: wantClock ? await chainNow(chain) : wall, head };
}

/** The view of one stored invoice: one indexed read, the cached head block, and the chain clock if unpaid. */
export async function viewInvoice(deps: ApiDeps, row: InvoiceRow, merchant?: Pick<MerchantRecord, "confirmationPolicy">): Promise<InvoiceView> {
  const chain = deps.chains.get(row.chainId);
  const [onchain, head, owner] = await Promise.all([
    deps.indexed.invoice(row.chainId, row.invoiceKey as Hex),
    chain ? chain.headBlock().catch(() => undefined) : Promise.resolve(undefined),
    merchant ??
      deps.store.db
        .select({ confirmationPolicy: merchants.confirmationPolicy })
        .from(merchants)
        .where(eq(merchants.id, row.merchantId))
        .then((rows) => rows[0]),
  ]);
  const now = needsClock(onchain) ? await chainNow(chain) : BigInt(Math.floor(Date.now() / 1000));
  return invoiceView(row, onchain, { now, head, confirmationsRequired: owner ? requiredConfirmations(owner, row.chainId) : undefined });
}
