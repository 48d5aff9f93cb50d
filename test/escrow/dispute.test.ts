/**
 * Disputes: dispute and withdrawDispute (payer), resolveDispute (arbiter named in the invoice), the merchant's
 * refund during a dispute, and refundExpiredDispute (anyone, once the deadline has passed), with their timestamp
 * boundaries (dispute at releaseAt, the dispute deadline). Release during a dispute is in release.test.ts.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress, type Address } from "viem";
import type { Invoice } from "../../contracts/invoice";
import { DISPUTE_PERIOD, FEE_BPS, USDC } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  PaymentStatus,
  RefundReason,
  disputeDeadlineOf,
  escrowFixture,
  expectEscrowSolvent,
  feeOf,
  nextBlockAt,
  releaseAtOf,
  type EscrowFixture,
} from "./helpers";

/** An arbiter's ruling refunding everything held: 10 000 basis points. */
const ALL = 10_000;

/** Pays an invoice naming the fixture's arbiter, and disputes it. */
async function payAndDispute(f: EscrowFixture, overrides: Partial<Invoice> = {}) {
  const paid = await f.payInvoice({ arbiter: f.arbiter.address as Address, ...overrides });
  await f.escrow.connect(f.payer).dispute(paid.invoice);
  return paid;
}

describe("BillingEscrow.dispute", () => {
  it("lets the payer dispute during the hold, freezing release until the dispute deadline", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();
    const deadline = (await releaseAtOf(f.escrow, key)) + BigInt(DISPUTE_PERIOD);

    await expect(f.escrow.connect(f.payer).dispute(invoice))
      .to.emit(f.escrow, "InvoiceDisputed")
      .withArgs(key, f.merchantId, f.payer.address, deadline);

    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Disputed);
    expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
  });

  it("refuses anyone but the payer (NotPayer)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();

    for (const caller of [f.other, f.merchantOwner]) {
      await expect(f.escrow.connect(caller).dispute(invoice))
        .to.be.revertedWithCustomError(f.escrow, "NotPayer")
        .withArgs(f.payer.address, caller.address);
    }
  });

  it("refuses an unpaid, already disputed or released payment (NotHeld)", async () => {
    const f = await loadFixture(escrowFixture);
    const unpaid = await f.makeInvoice();
    await expect(f.escrow.connect(f.payer).dispute(unpaid))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.None);

    const { invoice: disputed } = await payAndDispute(f);
    await expect(f.escrow.connect(f.payer).dispute(disputed))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.Disputed);

    const { invoice: released } = await f.payInvoice();
    await f.escrow.connect(f.payer).release(released);
    await expect(f.escrow.connect(f.payer).dispute(released))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.Released);
  });

  it("is impossible with a zero hold: the hold ends as the payment is made (HoldEnded)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice({ holdDuration: 0 });

    await expect(f.escrow.connect(f.payer).dispute(invoice))
      .to.be.revertedWithCustomError(f.escrow, "HoldEnded")
      .withArgs(await releaseAtOf(f.escrow, key));
  });

  it("works at releaseAt - 1 and is refused at releaseAt (HoldEnded)", async () => {
    const f = await loadFixture(escrowFixture);
    const early = await f.payInvoice();
    const late = await f.payInvoice();
    const lateReleaseAt = await releaseAtOf(f.escrow, late.key);

    await nextBlockAt((await releaseAtOf(f.escrow, early.key)) - 1n);
    await expect(f.escrow.connect(f.payer).dispute(early.invoice)).to.emit(f.escrow, "InvoiceDisputed");
    await nextBlockAt(lateReleaseAt);
    await expect(f.escrow.connect(f.payer).dispute(late.invoice))
      .to.be.revertedWithCustomError(f.escrow, "HoldEnded")
      .withArgs(lateReleaseAt);
  });
});

describe("BillingEscrow.withdrawDispute", () => {
  it("lets the payer withdraw: the payment is held again and releasable after the hold", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f);

    await expect(f.escrow.connect(f.payer).withdrawDispute(invoice))
      .to.emit(f.escrow, "DisputeWithdrawn")
      .withArgs(key, f.merchantId);

    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Held);
    expect((await f.escrow.payment(key)).disputeOpened).to.equal(true);
    await time.increaseTo(await releaseAtOf(f.escrow, key));
    await expect(f.escrow.connect(f.keeper).release(invoice)).to.emit(f.escrow, "InvoiceReleased");
  });

  it("gives the dispute up for good: the payer cannot re-open it (DisputeAlreadyWithdrawn), even during the hold", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f);
    await f.escrow.connect(f.payer).withdrawDispute(invoice);

    await expect(f.escrow.connect(f.payer).dispute(invoice))
      .to.be.revertedWithCustomError(f.escrow, "DisputeAlreadyWithdrawn")
      .withArgs(key);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Held);
  });

  it("cannot push a ruling to the deadline by withdrawing and re-opening: the payer cannot re-open, the payment releases", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f, { amount: USDC(100) });
    // The arbiter is about to rule for the merchant; the payer front-runs it by withdrawing the dispute.
    await f.escrow.connect(f.payer).withdrawDispute(invoice);
    await expect(f.escrow.connect(f.arbiter).resolveDispute(invoice, 0))
      .to.be.revertedWithCustomError(f.escrow, "NotDisputed")
      .withArgs(PaymentStatus.Held);

    // Re-opening, to make the next ruling miss too and collect the automatic refund at the deadline, is refused.
    await expect(f.escrow.connect(f.payer).dispute(invoice))
      .to.be.revertedWithCustomError(f.escrow, "DisputeAlreadyWithdrawn")
      .withArgs(key);
    await nextBlockAt(await disputeDeadlineOf(f.escrow, key));
    await expect(f.escrow.connect(f.keeper).refundExpiredDispute(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotDisputed")
      .withArgs(PaymentStatus.Held);
    await expect(f.escrow.connect(f.keeper).release(invoice)).to.changeTokenBalance(
      f.usdc,
      f.payout,
      invoice.amount - feeOf(invoice.amount, FEE_BPS),
    );
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("refuses anyone but the payer (NotPayer)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await payAndDispute(f);

    await expect(f.escrow.connect(f.merchantOwner).withdrawDispute(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotPayer")
      .withArgs(f.payer.address, f.merchantOwner.address);
  });

  it("refuses a payment that is not disputed (NotDisputed)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();

    await expect(f.escrow.connect(f.payer).withdrawDispute(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotDisputed")
      .withArgs(PaymentStatus.Held);
  });
});

describe("BillingEscrow.resolveDispute", () => {
  it("splits as the arbiter decides: its share of what is held to the payer, the rest (minus fee) to the merchant", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f, { amount: USDC(100) });
    const refunded = USDC(30);
    const released = USDC(70);
    const fee = feeOf(released, FEE_BPS);

    const resolution = f.escrow.connect(f.arbiter).resolveDispute(invoice, 3_000);

    await expect(resolution)
      .to.emit(f.escrow, "InvoiceRefunded")
      .withArgs(key, f.merchantId, f.payer.address, invoice.token, refunded, refunded, RefundReason.Arbiter);
    await expect(resolution)
      .to.emit(f.escrow, "InvoiceReleased")
      .withArgs(key, f.merchantId, f.payout.address, invoice.token, released - fee, fee);
    await expect(resolution)
      .to.emit(f.escrow, "DisputeResolved")
      .withArgs(key, f.merchantId, f.arbiter.address, 3_000, refunded, released);
    await expect(resolution).to.changeTokenBalances(
      f.usdc,
      [f.escrow, f.payer, f.payout],
      [-(invoice.amount - fee), refunded, released - fee],
    );
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Released);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(refunded);
    expect(await f.escrow.heldAmount(invoice)).to.equal(0);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("refunds everything when the arbiter sides with the payer", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f);

    const resolution = f.escrow.connect(f.arbiter).resolveDispute(invoice, ALL);

    await expect(resolution)
      .to.emit(f.escrow, "DisputeResolved")
      .withArgs(key, f.merchantId, f.arbiter.address, ALL, invoice.amount, 0);
    await expect(resolution).not.to.emit(f.escrow, "InvoiceReleased");
    await expect(resolution).to.changeTokenBalance(f.usdc, f.payer, invoice.amount);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Refunded);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(invoice.amount);
  });

  it("releases everything when the arbiter sides with the merchant", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f);
    const fee = feeOf(invoice.amount, FEE_BPS);

    const resolution = f.escrow.connect(f.arbiter).resolveDispute(invoice, 0);

    await expect(resolution)
      .to.emit(f.escrow, "DisputeResolved")
      .withArgs(key, f.merchantId, f.arbiter.address, 0, 0, invoice.amount);
    await expect(resolution).not.to.emit(f.escrow, "InvoiceRefunded");
    await expect(resolution).to.changeTokenBalance(f.usdc, f.payout, invoice.amount - fee);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Released);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(0);
  });

  it("settles ETH payments too", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await payAndDispute(f, { token: zeroAddress, amount: ETH_AMOUNT });
    const half = ETH_AMOUNT / 2n;
    const fee = feeOf(half, FEE_BPS);

    await expect(f.escrow.connect(f.arbiter).resolveDispute(invoice, ALL / 2)).to.changeEtherBalances(
      [f.escrow, f.payer, f.payout],
      [-(ETH_AMOUNT - fee), half, half - fee],
    );
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("applies its share to what is still held after a merchant's partial refund", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f, { amount: USDC(100) });
    await f.escrow.connect(f.merchantOwner).refund(invoice, USDC(40));

    const resolution = f.escrow.connect(f.arbiter).resolveDispute(invoice, ALL / 2);

    await expect(resolution)
      .to.emit(f.escrow, "DisputeResolved")
      .withArgs(key, f.merchantId, f.arbiter.address, ALL / 2, USDC(30), USDC(30));
    await expect(resolution).to.changeTokenBalances(f.usdc, [f.payer, f.payout], [USDC(30), USDC(30) - feeOf(USDC(30), FEE_BPS)]);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(USDC(70));
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("is not blocked by a merchant's 1-unit refund landing just before it: the share applies to what is then held", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f, { amount: USDC(100) });
    // The arbiter rules for the payer; the merchant front-runs the ruling with a refund of one base unit.
    await f.escrow.connect(f.merchantOwner).refund(invoice, 1n);

    const resolution = f.escrow.connect(f.arbiter).resolveDispute(invoice, ALL);

    await expect(resolution)
      .to.emit(f.escrow, "DisputeResolved")
      .withArgs(key, f.merchantId, f.arbiter.address, ALL, USDC(100) - 1n, 0);
    await expect(resolution).to.changeTokenBalance(f.usdc, f.payer, USDC(100) - 1n);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Refunded);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(USDC(100));
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("refuses a share above 100 % (InvalidRefundShare)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await payAndDispute(f);

    await expect(f.escrow.connect(f.arbiter).resolveDispute(invoice, ALL + 1))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRefundShare")
      .withArgs(ALL + 1);
  });

  it("refuses anyone but the invoice's arbiter, the payer and merchant included (NotArbiter)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await payAndDispute(f);

    for (const caller of [f.payer, f.merchantOwner, f.owner]) {
      await expect(f.escrow.connect(caller).resolveDispute(invoice, 0))
        .to.be.revertedWithCustomError(f.escrow, "NotArbiter")
        .withArgs(f.arbiter.address, caller.address);
    }
  });

  it("refuses everyone when the invoice names no arbiter (NotArbiter(0))", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await payAndDispute(f, { arbiter: zeroAddress });

    await expect(f.escrow.connect(f.arbiter).resolveDispute(invoice, 0))
      .to.be.revertedWithCustomError(f.escrow, "NotArbiter")
      .withArgs(zeroAddress, f.arbiter.address);
  });

  it("refuses a payment that is not disputed (NotDisputed)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice({ arbiter: f.arbiter.address as Address });

    await expect(f.escrow.connect(f.arbiter).resolveDispute(invoice, 0))
      .to.be.revertedWithCustomError(f.escrow, "NotDisputed")
      .withArgs(PaymentStatus.Held);
  });

  it("works at the deadline - 1 and is refused at the deadline (DisputeDeadlinePassed)", async () => {
    const f = await loadFixture(escrowFixture);
    const arbiter = f.arbiter.address as Address;
    const early = await f.payInvoice({ arbiter });
    const late = await f.payInvoice({ arbiter });
    await f.escrow.connect(f.payer).dispute(early.invoice);
    await f.escrow.connect(f.payer).dispute(late.invoice);
    const lateDeadline = await disputeDeadlineOf(f.escrow, late.key);

    await nextBlockAt((await disputeDeadlineOf(f.escrow, early.key)) - 1n);
    await expect(f.escrow.connect(f.arbiter).resolveDispute(early.invoice, 0)).to.emit(f.escrow, "DisputeResolved");
    await nextBlockAt(lateDeadline);
    await expect(f.escrow.connect(f.arbiter).resolveDispute(late.invoice, 0))
      .to.be.revertedWithCustomError(f.escrow, "DisputeDeadlinePassed")
      .withArgs(lateDeadline);
  });

  it("pays out exactly what was held when splitting odd units (the refund rounds up, the fee down)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice({ amount: 1_001n, arbiter: f.arbiter.address as Address });
    await f.escrow.connect(f.payer).dispute(invoice);
    const refunded = 334n; // 1 001 × 33.33 % = 333.63 -> 334, in the payer's favour
    const fee = feeOf(1_001n - refunded, FEE_BPS); // 6.67 -> 6

    await expect(f.escrow.connect(f.arbiter).resolveDispute(invoice, 3_333)).to.changeTokenBalances(
      f.usdc,
      [f.escrow, f.payer, f.payout],
      [-(1_001n - fee), refunded, 1_001n - refunded - fee],
    );
    expect(fee).to.equal(6n);
    expect(await f.escrow.accruedFees(invoice.token)).to.equal(fee);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });
});

describe("BillingEscrow.refund during a dispute", () => {
  it("lets the merchant settle a dispute by refunding in full", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f);

    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, invoice.amount)).to.changeTokenBalance(
      f.usdc,
      f.payer,
      invoice.amount,
    );
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Refunded);
  });

  it("keeps the payment disputed after a partial refund", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f);

    await f.escrow.connect(f.merchantOwner).refund(invoice, USDC(10));

    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Disputed);
    expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount - USDC(10));
  });
});

describe("BillingEscrow.refundExpiredDispute", () => {
  it("once the deadline passes, lets anyone refund everything still held", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await payAndDispute(f);
    await f.escrow.connect(f.merchantOwner).refund(invoice, USDC(10));
    await nextBlockAt(await disputeDeadlineOf(f.escrow, key));

    const refund = f.escrow.connect(f.keeper).refundExpiredDispute(invoice);

    const rest = invoice.amount - USDC(10);
    await expect(refund)
      .to.emit(f.escrow, "InvoiceRefunded")
      .withArgs(key, f.merchantId, f.payer.address, invoice.token, rest, invoice.amount, RefundReason.DisputeExpired);
    await expect(refund).to.changeTokenBalances(f.usdc, [f.escrow, f.payer], [-rest, rest]);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Refunded);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("refuses a payment that is not disputed, even long after the hold (NotDisputed)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();
    await nextBlockAt(await disputeDeadlineOf(f.escrow, key));

    await expect(f.escrow.connect(f.keeper).refundExpiredDispute(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotDisputed")
      .withArgs(PaymentStatus.Held);
  });

  it("is refused at the deadline - 1 (DisputeDeadlineNotPassed) and refunds at the deadline", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();
    await f.escrow.connect(f.payer).dispute(invoice);
    const deadline = await disputeDeadlineOf(f.escrow, key);

    await nextBlockAt(deadline - 1n);
    await expect(f.escrow.connect(f.keeper).refundExpiredDispute(invoice))
      .to.be.revertedWithCustomError(f.escrow, "DisputeDeadlineNotPassed")
      .withArgs(deadline);
    await nextBlockAt(deadline);
    await expect(f.escrow.connect(f.keeper).refundExpiredDispute(invoice)).to.changeTokenBalance(
      f.usdc,
      f.payer,
      invoice.amount,
    );
  });
});
