/**
 * The status of a BTC invoice, derived from what the watcher recorded (payments seen in the mempool or in
 * blocks, refunds seen) — the same statuses as an EVM invoice's, plus the two a plain payment needs:
 *
 *   open ──payment seen, not enough──▶ underpaid ──top-up──▶ paid
 *     ├──enough, all still unconfirmed (policy ≥ 1)──▶ pending ──mined──▶ paid
 *     ├──enough mined (or seen, with a policy of 0)──▶ paid ──refund seen──▶ partially_refunded | refunded
 *     └──nothing arrived by expiresAt──▶ expired (a payment arriving later still counts: flagged late)
 *
 * A replaced, double-spent or reorged-out payment no longer counts, so the status moves back by itself.
 * Amounts are integer satoshis.
 */
import type { InvoiceStatus } from "../status";

export interface PaymentRecord {
  txid: string;
  vout: number;
  amountSats: bigint;
  blockHeight: number | null;
  blockTime: number | null;
  firstSeen: number;
  late: boolean;
  removed: boolean;
}

export interface RefundRecord {
  amountSats: bigint;
  feeSats: bigint;
  /** What the transaction seen actually paid the destination (null: not seen yet). */
  paidSats: bigint | null;
  blockHeight: number | null;
}

export interface BtcInvoiceState {
  status: InvoiceStatus;
  receivedSats: bigint;
  confirmedSats: bigint;
  /** Still missing (0 once enough arrived). */
  dueSats: bigint;
  overpaidSats: bigint;
  paidLate: boolean;
  /** Confirmations of the payment that completed the amount (0 while it is unconfirmed or nothing is paid). */
  confirmations: number;
  /** Paid and at least `policy` confirmations deep. */
  confirmed: boolean;
  /** The payment that completed the amount. */
  completedBy: PaymentRecord | null;
  refundedSats: bigint;
}

export function confirmationsOf(blockHeight: number | null, tipHeight: number): number {
  return blockHeight === null || blockHeight > tipHeight ? 0 : tipHeight - blockHeight + 1;
}

/** The payment after which the payments, oldest block first (unconfirmed last), reach `amount`. */
function completing(payments: PaymentRecord[], amount: bigint): PaymentRecord | null {
  const ordered = [...payments].sort((a, b) => (a.blockHeight ?? Infinity) - (b.blockHeight ?? Infinity) || a.firstSeen - b.firstSeen);
  let sum = 0n;
  for (const payment of ordered) {
    sum += payment.amountSats;
    if (sum >= amount) return payment;
  }
  return null;
}

export function btcInvoiceState(
  invoice: { amountSats: bigint; expiresAt: bigint },
  records: { payments: PaymentRecord[]; refunds: RefundRecord[] },
  chain: { tipHeight: number; now: bigint; policy: number },
): BtcInvoiceState {
  const live = records.payments.filter((payment) => !payment.removed);
  const sum = (list: PaymentRecord[]) => list.reduce((total, payment) => total + payment.amountSats, 0n);
  const receivedSats = sum(live);
  const mined = live.filter((payment) => payment.blockHeight !== null);
  const confirmedSats = sum(mined);
  const counted = chain.policy === 0 ? receivedSats : confirmedSats;
  const refunds = records.refunds.filter((refund) => refund.paidSats !== null && refund.blockHeight !== null);
  const refundedSats = refunds.reduce((total, refund) => total + refund.paidSats!, 0n);
  // A full refund sends everything received minus its fee: what left the invoice's outputs is refund + fee.
  const refundedAll = refunds.reduce((total, refund) => total + refund.paidSats! + refund.feeSats, 0n) >= receivedSats;
  const completedBy = completing(live, invoice.amountSats);
  const confirmations = completedBy ? confirmationsOf(completedBy.blockHeight, chain.tipHeight) : 0;

  let status: InvoiceStatus;
  if (counted >= invoice.amountSats) {
    status = refundedSats === 0n ? "paid" : refundedAll ? "refunded" : "partially_refunded";
  } else if (receivedSats >= invoice.amountSats) status = "pending";
  else if (receivedSats > 0n) status = "underpaid";
  else status = chain.now >= invoice.expiresAt ? "expired" : "open";

  const paid = status === "paid" || status === "partially_refunded" || status === "refunded";
  return {
    status,
    receivedSats,
    confirmedSats,
    dueSats: receivedSats >= invoice.amountSats ? 0n : invoice.amountSats - receivedSats,
    overpaidSats: receivedSats > invoice.amountSats ? receivedSats - invoice.amountSats : 0n,
    paidLate: live.some((payment) => payment.late),
    confirmations,
    confirmed: paid && confirmations >= chain.policy,
    completedBy,
    refundedSats,
  };
}

/** Statuses in which the invoice counts as paid (its `invoice.paid` was sent). */
export const PAID_STATUSES: ReadonlySet<InvoiceStatus> = new Set(["paid", "partially_refunded", "refunded"]);
