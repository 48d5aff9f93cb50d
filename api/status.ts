/**
 * The invoice status machine, in one place for every consumer (API responses, statements, tests):
 *
 *   open ──pay──▶ paid ──release──▶ released
 *     │            │ ├──refund (all)──▶ refunded
 *     │            │ ├──refund (part)─▶ partially_refunded ──▶ released | refunded
 *     │            │ └──dispute──▶ disputed ──▶ paid | released | refunded | partially_refunded
 *     ├──expiry──▶ expired
 *     └──void────▶ void
 *
 * Status is derived from the indexed on-chain record only (a void, like a payment, exists once its transaction
 * is indexed), so a reorg that removes a payment or a void moves the invoice back to open (or expired) by
 * itself. A paid invoice stays paid after its `expiresAt`: expiry only stops new payments.
 *
 * BTC invoices (paid by a plain transfer to an address) add `pending` (enough seen, not yet mined) and
 * `underpaid` (less than the amount arrived): api/bitcoin/state.ts derives them. EVM invoices paid through their
 * deposit address add `pending` (enough arrived at the address, not swept yet), `underpaid` (less arrived) and
 * `overpaid` (paid, with an excess held for the refund address): api/invoices/view.ts derives them.
 */
import type { IndexedInvoice } from "./indexed";

export const INVOICE_STATUSES = [
  "open",
  "pending",
  "underpaid",
  "expired",
  "void",
  "paid",
  "overpaid",
  "disputed",
  "partially_refunded",
  "released",
  "refunded",
] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

export function invoiceStatus(
  onchain: Pick<IndexedInvoice, "status" | "refundedAmount"> | undefined,
  terms: { expiresAt: bigint },
  nowSeconds: bigint,
): InvoiceStatus {
  if (onchain && onchain.status !== "voided") {
    switch (onchain.status) {
      case "released":
        return "released";
      case "refunded":
        return "refunded";
      case "disputed":
        return "disputed";
      default:
        return onchain.refundedAmount > 0n ? "partially_refunded" : "paid";
    }
  }
  if (onchain?.status === "voided") return "void";
  return nowSeconds >= terms.expiresAt ? "expired" : "open";
}

/** Blocks on top of (and including) the payment's block; 0 while unpaid. */
export function confirmations(onchain: IndexedInvoice | undefined, headBlock: bigint): number {
  if (!onchain?.paidBlock) return 0;
  // The head number is cached briefly; an indexed payment proves its block exists, so it counts at least once.
  const head = headBlock > onchain.paidBlock ? headBlock : onchain.paidBlock;
  return Number(head - onchain.paidBlock + 1n);
}
