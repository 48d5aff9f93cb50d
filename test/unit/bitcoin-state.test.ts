import { expect } from "chai";
import { btcInvoiceState, confirmationsOf, type PaymentRecord } from "../../api/bitcoin/state";

/** The BTC invoice status machine (api/bitcoin/state.ts) at its edges: one satoshi, one second, one block. */
describe("unit: api/bitcoin/state btcInvoiceState", () => {
  const invoice = { amountSats: 100_000n, expiresAt: 1_000n };
  let sequence = 0;
  const payment = (amountSats: bigint, blockHeight: number | null, extra: Partial<PaymentRecord> = {}): PaymentRecord => ({
    txid: `${++sequence}`.padStart(64, "0"),
    vout: 0,
    amountSats,
    blockHeight,
    blockTime: blockHeight === null ? null : 900,
    firstSeen: 900,
    late: false,
    removed: false,
    ...extra,
  });
  const at = (payments: PaymentRecord[], chain: Partial<{ tipHeight: number; now: bigint; policy: number }> = {}, refunds: Parameters<typeof btcInvoiceState>[1]["refunds"] = []) =>
    btcInvoiceState(invoice, { payments, refunds }, { tipHeight: 10, now: 999n, policy: 1, ...chain });

  it("one satoshi short is underpaid with 1 sat due; the exact amount is paid; one more is overpaid by 1", () => {
    expect(at([payment(99_999n, 10)])).to.include({ status: "underpaid", dueSats: 1n, overpaidSats: 0n });
    expect(at([payment(100_000n, 10)])).to.include({ status: "paid", dueSats: 0n, overpaidSats: 0n, confirmations: 1, confirmed: true });
    expect(at([payment(100_001n, 10)])).to.include({ status: "paid", overpaidSats: 1n });
  });

  it("expires at exactly expiresAt, not a second before; a payment keeps it from expiring", () => {
    expect(at([], { now: 999n }).status).to.equal("open");
    expect(at([], { now: 1_000n }).status).to.equal("expired");
    expect(at([payment(1n, null)], { now: 5_000n }).status).to.equal("underpaid");
  });

  it("enough in the mempool is pending under a policy of 1 and paid (and confirmed) under 0", () => {
    expect(at([payment(100_000n, null)])).to.include({ status: "pending", confirmations: 0, confirmed: false });
    expect(at([payment(100_000n, null)], { policy: 0 })).to.include({ status: "paid", confirmations: 0, confirmed: true });
  });

  it("sums payments; the one completing the amount gives the confirmations, mined ones counted first", () => {
    const early = payment(60_000n, 5);
    const late = payment(40_000n, 9);
    const state = at([late, early], { policy: 2 });
    expect(state.completedBy).to.equal(late);
    expect(state).to.include({ status: "paid", receivedSats: 100_000n, confirmations: 2, confirmed: true });
    expect(at([early, payment(40_000n, null)]).status, "the completing part is unconfirmed").to.equal("pending");
  });

  it("removed payments do not count; late ones do, flagged", () => {
    expect(at([payment(100_000n, 10, { removed: true })]).status).to.equal("open");
    expect(at([payment(100_000n, 10, { late: true })], { now: 5_000n })).to.include({ status: "paid", paidLate: true });
  });

  it("a mined refund of part is partially_refunded; refund + fee covering everything received is refunded; an unmined one counts nothing", () => {
    const paid = [payment(100_000n, 8)];
    expect(at(paid, {}, [{ amountSats: 40_000n, feeSats: 200n, paidSats: 40_000n, blockHeight: 9 }])).to.include({ status: "partially_refunded", refundedSats: 40_000n });
    expect(at(paid, {}, [{ amountSats: 99_800n, feeSats: 200n, paidSats: 99_800n, blockHeight: 9 }])).to.include({ status: "refunded", refundedSats: 99_800n });
    expect(at(paid, {}, [{ amountSats: 99_800n, feeSats: 200n, paidSats: 99_800n, blockHeight: null }])).to.include({ status: "paid", refundedSats: 0n });
  });

  it("confirmations count the payment's block and every block on top; 0 unmined or above the tip (a reorg not yet processed)", () => {
    expect(confirmationsOf(10, 10)).to.equal(1);
    expect(confirmationsOf(5, 10)).to.equal(6);
    expect(confirmationsOf(null, 10)).to.equal(0);
    expect(confirmationsOf(11, 10)).to.equal(0);
  });
});
