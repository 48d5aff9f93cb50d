/**
 * BillingEscrow.release: who may release and when (the releaseAt boundary, never during a dispute), what the
 * payout address and the protocol receive.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress } from "viem";
import { FEE_BPS, USDC } from "../helpers/fixture";
import { ETH_AMOUNT, PaymentStatus, escrowFixture, expectEscrowSolvent, feeOf, nextBlockAt, releaseAtOf } from "./helpers";

describe("BillingEscrow.release", () => {
  it("after the hold, lets anyone release: the payout gets the amount minus the fee, the fee accrues", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();
    await time.increaseTo(await releaseAtOf(f.escrow, key));
    const fee = feeOf(invoice.amount, FEE_BPS);

    const release = f.escrow.connect(f.keeper).release(invoice);

    await expect(release)
      .to.emit(f.escrow, "InvoiceReleased")
      .withArgs(key, f.merchantId, f.payout.address, invoice.token, invoice.amount - fee, fee);
    await expect(release).to.changeTokenBalances(
      f.usdc,
      [f.escrow, f.payout],
      [-(invoice.amount - fee), invoice.amount - fee],
    );
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Released);
    expect(await f.escrow.heldAmount(invoice)).to.equal(0);
    expect(await f.escrow.accruedFees(invoice.token)).to.equal(fee);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("releases an ETH payment to the payout address", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice({ token: zeroAddress, amount: ETH_AMOUNT });
    await time.increaseTo(await releaseAtOf(f.escrow, key));
    const fee = feeOf(ETH_AMOUNT, FEE_BPS);

    const release = f.escrow.connect(f.keeper).release(invoice);

    await expect(release)
      .to.emit(f.escrow, "InvoiceReleased")
      .withArgs(key, f.merchantId, f.payout.address, zeroAddress, ETH_AMOUNT - fee, fee);
    await expect(release).to.changeEtherBalances([f.escrow, f.payout], [-(ETH_AMOUNT - fee), ETH_AMOUNT - fee]);
    expect(await f.escrow.accruedFees(zeroAddress)).to.equal(fee);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("lets the payer release at once, as confirmation, even before fulfilment", async () => {
    const f = await loadFixture(escrowFixture);
    const fulfillBy = BigInt(await time.latest()) + 86_400n;
    const { invoice, key } = await f.payInvoice({ fulfillBy });

    await expect(f.escrow.connect(f.payer).release(invoice)).to.changeTokenBalance(
      f.usdc,
      f.payout,
      invoice.amount - feeOf(invoice.amount, FEE_BPS),
    );
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Released);
  });

  it("refuses anyone but the payer during the hold, the merchant included (HoldNotEnded)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();
    const releaseAt = await releaseAtOf(f.escrow, key);

    for (const caller of [f.keeper, f.merchantOwner]) {
      await expect(f.escrow.connect(caller).release(invoice))
        .to.be.revertedWithCustomError(f.escrow, "HoldNotEnded")
        .withArgs(releaseAt);
    }
  });

  it("refuses an invoice with a fulfilment deadline until it is marked fulfilled (NotFulfilled)", async () => {
    const f = await loadFixture(escrowFixture);
    const fulfillBy = BigInt(await time.latest()) + 30n * 86_400n;
    const { invoice, key } = await f.payInvoice({ fulfillBy });
    await time.increaseTo(await releaseAtOf(f.escrow, key));

    await expect(f.escrow.connect(f.keeper).release(invoice)).to.be.revertedWithCustomError(f.escrow, "NotFulfilled");

    await f.escrow.connect(f.merchantOwner).markFulfilled(invoice);
    await expect(f.escrow.connect(f.keeper).release(invoice)).to.emit(f.escrow, "InvoiceReleased");
  });

  it("refuses an unpaid invoice (NotHeld(None)) and a second release (NotHeld(Released))", async () => {
    const f = await loadFixture(escrowFixture);
    const unpaid = await f.makeInvoice();
    await expect(f.escrow.connect(f.payer).release(unpaid))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.None);

    const { invoice } = await f.payInvoice();
    await f.escrow.connect(f.payer).release(invoice);
    await expect(f.escrow.connect(f.payer).release(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.Released);
  });

  it("refuses a refunded invoice (NotHeld(Refunded))", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();
    await f.escrow.connect(f.merchantOwner).refund(invoice, invoice.amount);

    await expect(f.escrow.connect(f.payer).release(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.Refunded);
  });

  it("after a partial refund releases only the rest, with the fee on the rest only", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice({ amount: USDC(100) });
    await f.escrow.connect(f.merchantOwner).refund(invoice, USDC(40));
    const rest = USDC(60);
    const fee = feeOf(rest, FEE_BPS);

    await expect(f.escrow.connect(f.payer).release(invoice))
      .to.emit(f.escrow, "InvoiceReleased")
      .withArgs(key, f.merchantId, f.payout.address, invoice.token, rest - fee, fee);
    expect(await f.usdc.balanceOf(f.payout.address)).to.equal(rest - fee);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(USDC(40));
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("charges the fee rate snapshotted at payment, not the rate set afterwards", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice: paidBefore } = await f.payInvoice();
    await f.escrow.connect(f.owner).setFee(1_000);
    const { invoice: paidAfter, key: keyAfter } = await f.payInvoice();
    expect((await f.escrow.payment(keyAfter)).feeBps).to.equal(1_000);

    await f.escrow.connect(f.payer).release(paidBefore);
    await f.escrow.connect(f.payer).release(paidAfter);

    const oldFee = feeOf(paidBefore.amount, FEE_BPS);
    const newFee = feeOf(paidAfter.amount, 1_000);
    expect(await f.escrow.accruedFees(paidBefore.token)).to.equal(oldFee + newFee);
    expect(await f.usdc.balanceOf(f.payout.address)).to.equal(paidBefore.amount - oldFee + paidAfter.amount - newFee);
  });

  it("rounds the fee down, in the merchant's favour: 199 units at 1% pay a fee of 1, 99 units none", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice: rounded, key: roundedKey } = await f.payInvoice({ amount: 199n });
    const { invoice: tiny, key: tinyKey } = await f.payInvoice({ amount: 99n });

    await expect(f.escrow.connect(f.payer).release(rounded))
      .to.emit(f.escrow, "InvoiceReleased")
      .withArgs(roundedKey, f.merchantId, f.payout.address, rounded.token, 198n, 1n);
    await expect(f.escrow.connect(f.payer).release(tiny))
      .to.emit(f.escrow, "InvoiceReleased")
      .withArgs(tinyKey, f.merchantId, f.payout.address, tiny.token, 99n, 0n);
    expect(await f.escrow.accruedFees(rounded.token)).to.equal(1n);
    await expectEscrowSolvent(f.escrow, [rounded, tiny]);
  });

  it("pays the payout address current at release, so a payout change covers money already held", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();
    await f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, f.newOwner.address);

    await expect(f.escrow.connect(f.payer).release(invoice)).to.changeTokenBalances(
      f.usdc,
      [f.newOwner, f.payout],
      [invoice.amount - feeOf(invoice.amount, FEE_BPS), 0],
    );
  });

  it("refuses a keeper at releaseAt - 1 (HoldNotEnded) and releases at releaseAt", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();
    const releaseAt = await releaseAtOf(f.escrow, key);

    await nextBlockAt(releaseAt - 1n);
    await expect(f.escrow.connect(f.keeper).release(invoice))
      .to.be.revertedWithCustomError(f.escrow, "HoldNotEnded")
      .withArgs(releaseAt);
    await nextBlockAt(releaseAt);
    await expect(f.escrow.connect(f.keeper).release(invoice)).to.emit(f.escrow, "InvoiceReleased");
  });

  it("is refused to everyone during a dispute, the payer included (PaymentDisputed)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();
    await f.escrow.connect(f.payer).dispute(invoice);

    await expect(f.escrow.connect(f.payer).release(invoice)).to.be.revertedWithCustomError(f.escrow, "PaymentDisputed");
    await time.increaseTo(await releaseAtOf(f.escrow, key));
    await expect(f.escrow.connect(f.keeper).release(invoice)).to.be.revertedWithCustomError(
      f.escrow,
      "PaymentDisputed",
    );
    expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
  });
});
