/**
 * BillingEscrow.pay and payWithPermit: what a payment records and moves, and the refusals that are not SPEC 9
 * cases. Expiry, wrong payer, wrong msg.value, replays, hold limits and the token zoo are in spec9.test.ts;
 * paused payments in admin.test.ts; bad signatures in signatures.test.ts; voided invoices in merchant.test.ts.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress, type Address } from "viem";
import { FEE_BPS, HOLD, USDC } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  PaymentStatus,
  escrowFixture,
  expectEscrowSolvent,
  nextBlockAt,
  pinNextBlockTimestamp,
  signPermit,
  signedInvoice,
} from "./helpers";

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
