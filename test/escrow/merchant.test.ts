/**
 * Merchant operations on invoices: markFulfilled (up to and including fulfillBy) and voidInvoice (merchant owner
 * or signer).
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import type { Address } from "viem";
import { PaymentStatus, escrowFixture, nextBlockAt, signedInvoice } from "./helpers";

describe("BillingEscrow.markFulfilled", () => {
  it("records fulfilment, after which anyone may release once the hold ends", async () => {
    const f = await loadFixture(escrowFixture);
    const fulfillBy = BigInt(await time.latest()) + 86_400n;
    const { invoice, key } = await f.payInvoice({ fulfillBy });

    await expect(f.escrow.connect(f.merchantOwner).markFulfilled(invoice))
      .to.emit(f.escrow, "InvoiceFulfilled")
      .withArgs(key, f.merchantId);

    expect((await f.escrow.payment(key)).fulfilled).to.equal(true);
    await time.increaseTo((await f.escrow.payment(key)).releaseAt);
    await expect(f.escrow.connect(f.keeper).release(invoice)).to.emit(f.escrow, "InvoiceReleased");
  });

  it("is allowed while the payment is disputed (delivery can still happen)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice({ fulfillBy: BigInt(await time.latest()) + 86_400n });
    await f.escrow.connect(f.payer).dispute(invoice);

    await expect(f.escrow.connect(f.merchantOwner).markFulfilled(invoice)).to.emit(f.escrow, "InvoiceFulfilled");
    const record = await f.escrow.payment(key);
    expect(record.fulfilled).to.equal(true);
    expect(record.status).to.equal(PaymentStatus.Disputed);
  });

  it("refuses anyone but the merchant's owner or signer (NotMerchantOperator)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();

    for (const caller of [f.payer, f.payout, f.keeper]) {
      await expect(f.escrow.connect(caller).markFulfilled(invoice))
        .to.be.revertedWithCustomError(f.escrow, "NotMerchantOperator")
        .withArgs(f.merchantId, caller.address);
    }
  });

  it("refuses an invoice marked twice (AlreadyFulfilled)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice();
    await f.escrow.connect(f.merchantOwner).markFulfilled(invoice);

    await expect(f.escrow.connect(f.merchantOwner).markFulfilled(invoice)).to.be.revertedWithCustomError(
      f.escrow,
      "AlreadyFulfilled",
    );
  });

  it("refuses an unpaid or already released invoice (NotHeld)", async () => {
    const f = await loadFixture(escrowFixture);
    const unpaid = await f.makeInvoice();
    await expect(f.escrow.connect(f.merchantOwner).markFulfilled(unpaid))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.None);

    const { invoice } = await f.payInvoice();
    await f.escrow.connect(f.payer).release(invoice);
    await expect(f.escrow.connect(f.merchantOwner).markFulfilled(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.Released);
  });

  it("works at fulfillBy and is refused at fulfillBy + 1 (FulfillmentDeadlinePassed)", async () => {
    const f = await loadFixture(escrowFixture);
    const fulfillBy = BigInt(await time.latest()) + 3_600n;
    const inTime = await f.payInvoice({ fulfillBy });
    const tooLate = await f.payInvoice({ fulfillBy });

    await nextBlockAt(fulfillBy);
    await expect(f.escrow.connect(f.merchantOwner).markFulfilled(inTime.invoice)).to.emit(
      f.escrow,
      "InvoiceFulfilled",
    );
    await nextBlockAt(fulfillBy + 1n);
    await expect(f.escrow.connect(f.merchantOwner).markFulfilled(tooLate.invoice))
      .to.be.revertedWithCustomError(f.escrow, "FulfillmentDeadlinePassed")
      .withArgs(fulfillBy);
  });
});

describe("BillingEscrow.voidInvoice", () => {
  it("voids an unpaid invoice so its signature can no longer pay", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);

    await expect(f.escrow.connect(f.merchantOwner).voidInvoice(invoice))
      .to.emit(f.escrow, "InvoiceVoided")
      .withArgs(key, f.merchantId, invoice.invoiceId);

    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Voided);
    await expect(f.escrow.connect(f.payer).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable")
      .withArgs(PaymentStatus.Voided);
  });

  it("refuses a paid invoice or one already voided (InvoiceNotPayable)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice: paid } = await f.payInvoice();
    await expect(f.escrow.connect(f.merchantOwner).voidInvoice(paid))
      .to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable")
      .withArgs(PaymentStatus.Held);

    const { invoice: voided } = await signedInvoice(f);
    await f.escrow.connect(f.merchantOwner).voidInvoice(voided);
    await expect(f.escrow.connect(f.merchantOwner).voidInvoice(voided))
      .to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable")
      .withArgs(PaymentStatus.Voided);
  });

  it("refuses anyone but the merchant's owner or signer, the intended payer included (NotMerchantOperator)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await signedInvoice(f, { payer: f.payer.address as Address });

    await expect(f.escrow.connect(f.payer).voidInvoice(invoice))
      .to.be.revertedWithCustomError(f.escrow, "NotMerchantOperator")
      .withArgs(f.merchantId, f.payer.address);
  });
});
