/**
 * BillingEscrow.pay and payWithPermit: what a payment records and moves, and every refusal of a bad payment
 * (expiry, wrong payer, wrong msg.value, a second payment, hold limits, zero amounts). Paused payments are in
 * admin.test.ts; bad signatures and replays across chains and deployments in signatures.test.ts; unusual tokens
 * in tokens.test.ts; voided invoices in merchant.test.ts.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { anyValue } from "@nomicfoundation/hardhat-chai-matchers/withArgs";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress, type Address } from "viem";
import { DISPUTE_PERIOD, FEE_BPS, HOLD, USDC } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  PaymentStatus,
  escrowFixture,
  expectEscrowSolvent,
  nextBlockAt,
  pinNextBlockTimestamp,
  releaseAtOf,
  signPermit,
  signedInvoice,
} from "./helpers";

const MAX_HOLD_DURATION = 365 * 86_400;
const MAX_FEE_BPS = 1_000;
const MAX_UINT32 = 2 ** 32 - 1;
const MAX_UINT64 = 2n ** 64n - 1n;

describe("BillingEscrow.pay", () => {
  it("pulls the exact amount, holds it and records the payment", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);
    const paidAt = await pinNextBlockTimestamp();

    const payment = f.escrow.connect(f.payer).pay(invoice, signature);

    const releaseAt = paidAt + BigInt(HOLD);
    await expect(payment)
      .to.emit(f.escrow, "InvoicePaid")
      .withArgs(
        key,
        f.merchantId,
        f.payer.address,
        invoice.invoiceId,
        invoice.token,
        invoice.amount,
        releaseAt,
        0,
        FEE_BPS,
      );
    await expect(payment).to.changeTokenBalances(f.usdc, [f.payer, f.escrow], [-invoice.amount, invoice.amount]);
    const record = await f.escrow.payment(key);
    expect(record.payer).to.equal(f.payer.address);
    expect(record.releaseAt).to.equal(releaseAt);
    expect(record.status).to.equal(PaymentStatus.Held);
    expect(record.feeBps).to.equal(FEE_BPS);
    expect(record.fulfilled).to.equal(false);
    expect(record.partiallyRefunded).to.equal(false);
    expect(record.disputeOpened).to.equal(false);
    expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
    expect(await f.escrow.refundedAmount(invoice)).to.equal(0);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("returns the invoice key, the EIP-712 digest wallets and the API compute", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);

    expect(await f.escrow.connect(f.payer).pay.staticCall(invoice, signature)).to.equal(key);
  });

  it("lets anyone pay an open invoice (payer = 0), and refunds go to whoever paid", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f, { payer: zeroAddress });

    await f.escrow.connect(f.other).pay(invoice, signature);
    expect((await f.escrow.payment(key)).payer).to.equal(f.other.address);

    await expect(f.escrow.connect(f.merchantOwner).refund(invoice, invoice.amount)).to.changeTokenBalances(
      f.usdc,
      [f.other, f.escrow],
      [invoice.amount, -invoice.amount],
    );
  });

  it("holds ETH sent with an ETH invoice (token = zero address)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });
    const paidAt = await pinNextBlockTimestamp();

    const payment = f.escrow.connect(f.payer).pay(invoice, signature, { value: ETH_AMOUNT });

    await expect(payment)
      .to.emit(f.escrow, "InvoicePaid")
      .withArgs(
        key,
        f.merchantId,
        f.payer.address,
        invoice.invoiceId,
        zeroAddress,
        ETH_AMOUNT,
        paidAt + BigInt(HOLD),
        0,
        FEE_BPS,
      );
    await expect(payment).to.changeEtherBalances([f.payer, f.escrow], [-ETH_AMOUNT, ETH_AMOUNT]);
    expect(await f.escrow.heldAmount(invoice)).to.equal(ETH_AMOUNT);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("accepts payment exactly at fulfillBy and reports the deadline in InvoicePaid", async () => {
    const f = await loadFixture(escrowFixture);
    const fulfillBy = BigInt(await time.latest()) + 100n;
    const { invoice, signature, key } = await signedInvoice(f, { fulfillBy });
    await nextBlockAt(fulfillBy);

    await expect(f.escrow.connect(f.payer).pay(invoice, signature))
      .to.emit(f.escrow, "InvoicePaid")
      .withArgs(
        key,
        f.merchantId,
        f.payer.address,
        invoice.invoiceId,
        invoice.token,
        invoice.amount,
        fulfillBy + BigInt(HOLD),
        fulfillBy,
        FEE_BPS,
      );
  });

  it("refuses an invoice whose fulfilment deadline has passed (FulfillByPassed)", async () => {
    const f = await loadFixture(escrowFixture);
    const fulfillBy = BigInt(await time.latest()) + 100n;
    const { invoice, signature } = await signedInvoice(f, { fulfillBy });
    await nextBlockAt(fulfillBy + 1n);

    await expect(f.escrow.connect(f.payer).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "FulfillByPassed")
      .withArgs(fulfillBy);
  });

  it("refuses an unknown merchant (UnknownMerchant)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { merchantId: 99n });

    await expect(f.escrow.connect(f.payer).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "UnknownMerchant")
      .withArgs(99);
  });

  it("refuses a token address without code (TokenNotContract)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { token: f.other.address as Address });

    await expect(f.escrow.connect(f.payer).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "TokenNotContract")
      .withArgs(f.other.address);
  });

  it("refuses a payer without enough allowance with the token's own error, recording nothing", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);

    await expect(f.escrow.connect(f.permitPayer).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.usdc, "ERC20InsufficientAllowance")
      .withArgs(f.escrowAddress, 0, invoice.amount);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
  });

  it("refuses to pay the same signed invoice twice (InvoiceNotPayable), before or after release", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await f.payInvoice();

    await expect(f.escrow.connect(f.other).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable")
      .withArgs(PaymentStatus.Held);
    await f.escrow.connect(f.payer).release(invoice);
    await expect(f.escrow.connect(f.payer).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable")
      .withArgs(PaymentStatus.Released);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("pays at expiresAt - 1 and refuses at exactly expiresAt (InvoiceExpired)", async () => {
    const f = await loadFixture(escrowFixture);
    const expiresAt = BigInt(await time.latest()) + 600n;
    const lastSecond = await signedInvoice(f, { expiresAt });
    const tooLate = await signedInvoice(f, { expiresAt });

    await nextBlockAt(expiresAt - 1n);
    await expect(f.escrow.connect(f.payer).pay(lastSecond.invoice, lastSecond.signature)).to.emit(
      f.escrow,
      "InvoicePaid",
    );
    await nextBlockAt(expiresAt);
    await expect(f.escrow.connect(f.payer).pay(tooLate.invoice, tooLate.signature))
      .to.be.revertedWithCustomError(f.escrow, "InvoiceExpired")
      .withArgs(expiresAt, expiresAt);
  });

  it("refuses an invoice naming another payer to anyone else (WrongPayer)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { payer: f.payer.address as Address });

    await expect(f.escrow.connect(f.other).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "WrongPayer")
      .withArgs(f.payer.address, f.other.address);
  });

  it("refuses too little ETH for an ETH invoice (WrongNativeAmount) and keeps nothing", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });

    await expect(f.escrow.connect(f.payer).pay(invoice, signature, { value: ETH_AMOUNT - 1n }))
      .to.be.revertedWithCustomError(f.escrow, "WrongNativeAmount")
      .withArgs(ETH_AMOUNT, ETH_AMOUNT - 1n);
    expect(await ethers.provider.getBalance(f.escrowAddress)).to.equal(0);
  });

  it("refuses too much ETH for an ETH invoice (WrongNativeAmount)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });

    await expect(f.escrow.connect(f.payer).pay(invoice, signature, { value: ETH_AMOUNT + 1n }))
      .to.be.revertedWithCustomError(f.escrow, "WrongNativeAmount")
      .withArgs(ETH_AMOUNT, ETH_AMOUNT + 1n);
  });

  it("refuses ETH sent with an ERC-20 invoice (WrongNativeAmount(0, sent))", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);

    await expect(f.escrow.connect(f.payer).pay(invoice, signature, { value: 1n }))
      .to.be.revertedWithCustomError(f.escrow, "WrongNativeAmount")
      .withArgs(0, 1n);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
  });

  it("refuses an invoice for 0 (ZeroAmount)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { amount: 0n });

    await expect(f.escrow.connect(f.payer).pay(invoice, signature)).to.be.revertedWithCustomError(
      f.escrow,
      "ZeroAmount",
    );
  });

  it("refuses a hold above MAX_HOLD_DURATION (HoldTooLong), up to max uint32", async () => {
    const f = await loadFixture(escrowFixture);

    for (const holdDuration of [MAX_HOLD_DURATION + 1, MAX_UINT32]) {
      const { invoice, signature } = await signedInvoice(f, { holdDuration });
      await expect(f.escrow.connect(f.payer).pay(invoice, signature))
        .to.be.revertedWithCustomError(f.escrow, "HoldTooLong")
        .withArgs(holdDuration, MAX_HOLD_DURATION);
    }
  });

  it("accepts a hold of exactly MAX_HOLD_DURATION and computes its dispute deadline without overflow", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f, { holdDuration: MAX_HOLD_DURATION });
    const paidAt = await pinNextBlockTimestamp();
    await f.escrow.connect(f.payer).pay(invoice, signature);
    const releaseAt = paidAt + BigInt(MAX_HOLD_DURATION);

    expect(await releaseAtOf(f.escrow, key)).to.equal(releaseAt);
    await expect(f.escrow.connect(f.payer).dispute(invoice))
      .to.emit(f.escrow, "InvoiceDisputed")
      .withArgs(key, f.merchantId, f.payer.address, releaseAt + BigInt(DISPUTE_PERIOD));
  });

  it("accepts max uint64 expiresAt and fulfillBy, which never open an early refund", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice({ expiresAt: MAX_UINT64, fulfillBy: MAX_UINT64 });

    await expect(f.escrow.connect(f.keeper).refundUnfulfilled(invoice))
      .to.be.revertedWithCustomError(f.escrow, "FulfillmentDeadlineNotPassed")
      .withArgs(MAX_UINT64);
    await f.escrow.connect(f.merchantOwner).markFulfilled(invoice);
    await time.increaseTo(await releaseAtOf(f.escrow, key));
    await expect(f.escrow.connect(f.keeper).release(invoice)).to.emit(f.escrow, "InvoiceReleased");
  });
});

describe("BillingEscrow.pay: the protocol fee is capped by the signed terms", () => {
  it("refuses a payment once the owner raised the fee above the invoice's maxFeeBps (FeeAboveMaximum)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f, { maxFeeBps: FEE_BPS });
    // The owner raises the fee to the 10 % cap just before the payment lands.
    await f.escrow.connect(f.owner).setFee(MAX_FEE_BPS);

    await expect(f.escrow.connect(f.payer).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "FeeAboveMaximum")
      .withArgs(MAX_FEE_BPS, FEE_BPS);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);

    // Back at (or under) the signed rate, the same signed invoice pays, and that rate is snapshotted.
    await f.escrow.connect(f.owner).setFee(FEE_BPS);
    await expect(f.escrow.connect(f.payer).pay(invoice, signature))
      .to.emit(f.escrow, "InvoicePaid")
      .withArgs(key, f.merchantId, f.payer.address, invoice.invoiceId, invoice.token, invoice.amount, anyValue, 0, FEE_BPS);
  });

  it("accepts a fee rate equal to or below the signed maximum, and a zero maximum only while the fee is zero", async () => {
    const f = await loadFixture(escrowFixture);
    const atCap = await signedInvoice(f, { maxFeeBps: FEE_BPS });
    await expect(f.escrow.connect(f.payer).pay(atCap.invoice, atCap.signature)).to.emit(f.escrow, "InvoicePaid");
    expect((await f.escrow.payment(atCap.key)).feeBps).to.equal(FEE_BPS);

    const noFee = await signedInvoice(f, { maxFeeBps: 0 });
    await expect(f.escrow.connect(f.payer).pay(noFee.invoice, noFee.signature))
      .to.be.revertedWithCustomError(f.escrow, "FeeAboveMaximum")
      .withArgs(FEE_BPS, 0);
    await f.escrow.connect(f.owner).setFee(0);
    await f.escrow.connect(f.payer).pay(noFee.invoice, noFee.signature);
    expect((await f.escrow.payment(noFee.key)).feeBps).to.equal(0);
    await expectEscrowSolvent(f.escrow, [atCap.invoice, noFee.invoice]);
  });

  it("applies the same cap to payWithPermit (FeeAboveMaximum)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { maxFeeBps: FEE_BPS });
    const deadline = BigInt(await time.latest()) + 3_600n;
    const permit = await signPermit(f.usdc, f.permitPayer, f.escrowAddress, invoice.amount, deadline);
    await f.escrow.connect(f.owner).setFee(FEE_BPS + 1);

    await expect(
      f.escrow.connect(f.permitPayer).payWithPermit(invoice, signature, deadline, permit.v, permit.r, permit.s),
    )
      .to.be.revertedWithCustomError(f.escrow, "FeeAboveMaximum")
      .withArgs(FEE_BPS + 1, FEE_BPS);
  });
});

describe("BillingEscrow.payWithPermit", () => {
  const PERMIT_LIFETIME = 3_600n;

  it("pays in one transaction with a wallet-signed EIP-2612 permit and no prior allowance", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);
    const deadline = BigInt(await time.latest()) + PERMIT_LIFETIME;
    const permit = await signPermit(f.usdc, f.permitPayer, f.escrowAddress, invoice.amount, deadline);
    expect(await f.usdc.allowance(f.permitPayer.address, f.escrowAddress)).to.equal(0);

    const payment = f.escrow
      .connect(f.permitPayer)
      .payWithPermit(invoice, signature, deadline, permit.v, permit.r, permit.s);

    await expect(payment).to.emit(f.escrow, "InvoicePaid");
    await expect(payment).to.changeTokenBalances(f.usdc, [f.permitPayer, f.escrow], [-invoice.amount, invoice.amount]);
    expect((await f.escrow.payment(key)).payer).to.equal(f.permitPayer.address);
    expect(await f.usdc.nonces(f.permitPayer.address)).to.equal(1);
    expect(await f.usdc.allowance(f.permitPayer.address, f.escrowAddress)).to.equal(0);
  });

  it("still pays when someone front-ran the permit: the allowance it already set is spent", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);
    const deadline = BigInt(await time.latest()) + PERMIT_LIFETIME;
    const permit = await signPermit(f.usdc, f.permitPayer, f.escrowAddress, invoice.amount, deadline);
    // A mempool watcher submits the permit first, so the one inside payWithPermit fails (nonce used).
    await f.usdc
      .connect(f.other)
      .permit(f.permitPayer.address, f.escrowAddress, invoice.amount, deadline, permit.v, permit.r, permit.s);

    await expect(
      f.escrow.connect(f.permitPayer).payWithPermit(invoice, signature, deadline, permit.v, permit.r, permit.s),
    ).to.changeTokenBalances(f.usdc, [f.permitPayer, f.escrow], [-invoice.amount, invoice.amount]);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Held);
  });

  it("with an unusable permit and no allowance, fails with the token's allowance error", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);
    const deadline = BigInt(await time.latest()) + PERMIT_LIFETIME;
    const permit = await signPermit(f.usdc, f.permitPayer, f.escrowAddress, invoice.amount, deadline);

    // A different deadline than the one signed makes the permit invalid.
    await expect(
      f.escrow.connect(f.permitPayer).payWithPermit(invoice, signature, deadline + 1n, permit.v, permit.r, permit.s),
    )
      .to.be.revertedWithCustomError(f.usdc, "ERC20InsufficientAllowance")
      .withArgs(f.escrowAddress, 0, invoice.amount);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
  });

  it("refuses an ETH invoice (TokenNotContract(0)): ETH has no permit", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });

    await expect(f.escrow.connect(f.payer).payWithPermit(invoice, signature, 0, 0, ethers.ZeroHash, ethers.ZeroHash))
      .to.be.revertedWithCustomError(f.escrow, "TokenNotContract")
      .withArgs(zeroAddress);
  });

  it("checks the invoice like pay does (an invoice already paid is refused)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { amount: USDC(10) });
    await f.escrow.connect(f.payer).pay(invoice, signature);
    const deadline = BigInt(await time.latest()) + PERMIT_LIFETIME;
    const permit = await signPermit(f.usdc, f.permitPayer, f.escrowAddress, invoice.amount, deadline);

    await expect(
      f.escrow.connect(f.permitPayer).payWithPermit(invoice, signature, deadline, permit.v, permit.r, permit.s),
    )
      .to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable")
      .withArgs(PaymentStatus.Held);
  });
});
