/**
 * BillingEscrow.refund (merchant) and refundUnfulfilled (anyone, after a missed fulfilment deadline): amounts
 * (partial refunds adding up, nothing above what is held, never 0) and the fulfillBy boundary. Refunds during a
 * dispute are in dispute.test.ts.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress } from "viem";
import { USDC } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  PaymentStatus,
  RefundReason,
  escrowFixture,
  expectEscrowSolvent,
  nextBlockAt,
  type EscrowFixture,
} from "./helpers";

/** Pays an invoice whose merchant must mark it fulfilled within `window` seconds. */
async function payWithFulfilmentDeadline(f: EscrowFixture, window = 3_600n) {
  const fulfillBy = BigInt(await time.latest()) + window;
  return { fulfillBy, ...(await f.payInvoice({ fulfillBy })) };
}

describe("BillingEscrow.refund", () => {
  it("refunds the whole amount to the payer and closes the invoice", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();

    const refund = f.escrow.connect(f.merchantOwner).refund(invoice, invoice.amount);

    await expect(refund)
      .to.emit(f.escrow, "InvoiceRefunded")
      .withArgs(
        key,
        f.merchantId,
        f.payer.address,
        invoice.token,
        invoice.amount,
        invoice.amount,
        RefundReason.Merchant,
      );
    await expect(refund).to.changeTokenBalances(f.usdc, [f.escrow, f.payer], [-invoice.amount, invoice.amount]);
    const record = await f.escrow.payment(key);
    expect(record.status).to.equal(PaymentStatus.Refunded);
    expect(record.partiallyRefunded).to.equal(false);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(invoice.amount);
    expect(await f.escrow.heldAmount(invoice)).to.equal(0);
    expect(await f.escrow.accruedFees(invoice.token)).to.equal(0);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("refunds part, keeps the rest held, and reports the running total", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice({ amount: USDC(100) });

    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, USDC(30)))
      .to.emit(f.escrow, "InvoiceRefunded")
      .withArgs(key, f.merchantId, f.payer.address, invoice.token, USDC(30), USDC(30), RefundReason.Merchant);

    const record = await f.escrow.payment(key);
    expect(record.status).to.equal(PaymentStatus.Held);
    expect(record.partiallyRefunded).to.equal(true);
    expect(await f.escrow.heldAmount(invoice)).to.equal(USDC(70));
    expect(await f.escrow.refundedAmount(invoice)).to.equal(USDC(30));
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("refunds ETH to the payer", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice({ token: zeroAddress, amount: ETH_AMOUNT });

    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, ETH_AMOUNT)).to.changeEtherBalances(
      [f.escrow, f.payer],
      [-ETH_AMOUNT, ETH_AMOUNT],
    );
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("works after the hold has ended, as long as the money is still held", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();
    await time.increase(30 * 86_400);

    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, invoice.amount)).to.changeTokenBalance(
      f.usdc,
      f.payer,
      invoice.amount,
    );
  });

  it("refuses anyone but the merchant's owner or signer, the payer included (NotMerchantOperator)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();

    for (const caller of [f.payer, f.payout, f.keeper]) {
      await expect(f.escrow.connect(caller).refund(invoice, invoice.amount))
        .to.be.revertedWithCustomError(f.escrow, "NotMerchantOperator")
        .withArgs(f.merchantId, caller.address);
    }
  });

  it("refuses an unpaid, released or refunded invoice (NotHeld)", async () => {
    const f = await loadFixture(escrowFixture);
    const unpaid = await f.makeInvoice();
    const { invoice: released } = await f.payInvoice();
    await f.escrow.connect(f.payer).release(released);
    const { invoice: refunded } = await f.payInvoice();
    await f.escrow.connect(f.merchantOwner).refund(refunded, refunded.amount);

    const cases = [
      [unpaid, PaymentStatus.None],
      [released, PaymentStatus.Released],
      [refunded, PaymentStatus.Refunded],
    ] as const;
    for (const [invoice, status] of cases) {
      await expect(f.escrow.connect(f.merchantOwner).refund(invoice, 1n))
        .to.be.revertedWithCustomError(f.escrow, "NotHeld")
        .withArgs(status);
    }
  });

  it("refuses a refund of 0 (ZeroAmount)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();

    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, 0)).to.be.revertedWithCustomError(
      f.escrow,
      "ZeroAmount",
    );
  });

  it("refuses a refund larger than what was paid (RefundExceedsHeld)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();

    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, invoice.amount + 1n))
      .to.be.revertedWithCustomError(f.escrow, "RefundExceedsHeld")
      .withArgs(invoice.amount + 1n, invoice.amount);
  });

  it("adds partial refunds up to exactly the amount paid and refuses one unit more", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice({ amount: USDC(100) });
    const payerBefore = await f.usdc.balanceOf(f.payer.address);

    await f.escrow.connect(f.merchantOwner).refund(invoice, USDC(30));
    await f.escrow.connect(f.merchantOwner).refund(invoice, USDC(30));
    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, USDC(40) + 1n))
      .to.be.revertedWithCustomError(f.escrow, "RefundExceedsHeld")
      .withArgs(USDC(40) + 1n, USDC(40));
    await f.escrow.connect(f.merchantOwner).refund(invoice, USDC(40));
    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, 1n))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.Refunded);

    expect(await f.usdc.balanceOf(f.payer.address)).to.equal(payerBefore + invoice.amount);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(invoice.amount);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Refunded);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });
});

describe("BillingEscrow.refundUnfulfilled", () => {
  it("after a missed fulfilment deadline, lets anyone refund everything held", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key, fulfillBy } = await payWithFulfilmentDeadline(f);
    await nextBlockAt(fulfillBy + 1n);

    const refund = f.escrow.connect(f.keeper).refundUnfulfilled(invoice);

    await expect(refund)
      .to.emit(f.escrow, "InvoiceRefunded")
      .withArgs(
        key,
        f.merchantId,
        f.payer.address,
        invoice.token,
        invoice.amount,
        invoice.amount,
        RefundReason.Unfulfilled,
      );
    await expect(refund).to.changeTokenBalances(f.usdc, [f.escrow, f.payer], [-invoice.amount, invoice.amount]);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Refunded);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(invoice.amount);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("after a partial refund, refunds only what is still held", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key, fulfillBy } = await payWithFulfilmentDeadline(f);
    await f.escrow.connect(f.merchantOwner).refund(invoice, USDC(25));
    await nextBlockAt(fulfillBy + 1n);

    await expect(f.escrow.connect(f.payer).refundUnfulfilled(invoice))
      .to.emit(f.escrow, "InvoiceRefunded")
      .withArgs(key, f.merchantId, f.payer.address, invoice.token, USDC(75), USDC(100), RefundReason.Unfulfilled);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(invoice.amount);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("refuses an invoice without a fulfilment deadline (NoFulfillmentDeadline)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice({ fulfillBy: 0n });

    await expect(f.escrow.connect(f.payer).refundUnfulfilled(invoice)).to.be.revertedWithCustomError(
      f.escrow,
      "NoFulfillmentDeadline",
    );
  });

  it("refuses an invoice the merchant marked fulfilled in time (AlreadyFulfilled)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, fulfillBy } = await payWithFulfilmentDeadline(f);
    await f.escrow.connect(f.merchantOwner).markFulfilled(invoice);
    await nextBlockAt(fulfillBy + 1n);

    await expect(f.escrow.connect(f.payer).refundUnfulfilled(invoice)).to.be.revertedWithCustomError(
      f.escrow,
      "AlreadyFulfilled",
    );
  });

  it("refuses a payment the payer already released (NotHeld(Released))", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, fulfillBy } = await payWithFulfilmentDeadline(f);
    await f.escrow.connect(f.payer).release(invoice);
    await nextBlockAt(fulfillBy + 1n);

    await expect(f.escrow.connect(f.keeper).refundUnfulfilled(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.Released);
  });

  it("also refunds a disputed payment whose deadline was missed", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key, fulfillBy } = await payWithFulfilmentDeadline(f);
    await f.escrow.connect(f.payer).dispute(invoice);
    await nextBlockAt(fulfillBy + 1n);

    await expect(f.escrow.connect(f.keeper).refundUnfulfilled(invoice)).to.changeTokenBalance(
      f.usdc,
      f.payer,
      invoice.amount,
    );
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Refunded);
  });

  it("is refused at fulfillBy (FulfillmentDeadlineNotPassed) and refunds at fulfillBy + 1", async () => {
    const f = await loadFixture(escrowFixture);
    const fulfillBy = BigInt(await time.latest()) + 3_600n;
    const { invoice } = await f.payInvoice({ fulfillBy });

    await nextBlockAt(fulfillBy);
    await expect(f.escrow.connect(f.keeper).refundUnfulfilled(invoice))
      .to.be.revertedWithCustomError(f.escrow, "FulfillmentDeadlineNotPassed")
      .withArgs(fulfillBy);
    await nextBlockAt(fulfillBy + 1n);
    await expect(f.escrow.connect(f.keeper).refundUnfulfilled(invoice)).to.changeTokenBalance(
      f.usdc,
      f.payer,
      invoice.amount,
    );
  });
});
