/**
 * The merchant registry inside BillingEscrow: registration, payout and signer changes, two-step merchant
 * ownership, the operator check, and what a stolen signer (hot) key can and cannot do.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, setBalance } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress } from "viem";
import { FEE_BPS } from "../helpers/fixture";
import { PaymentStatus, escrowFixture, feeOf, signedInvoice, testAccount } from "./helpers";

const UNKNOWN_MERCHANT = 99n;

describe("MerchantRegistry.registerMerchant", () => {
  it("registers the caller as owner of a new merchant with the next sequential id", async () => {
    const f = await loadFixture(escrowFixture);
    const signer = testAccount("second merchant signer");

    await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address))
      .to.emit(f.escrow, "MerchantRegistered")
      .withArgs(2, f.other.address, f.other.address, signer.address);

    expect(await f.escrow.merchantCount()).to.equal(2);
    expect(await f.escrow.merchant(2)).to.deep.equal([f.other.address, f.other.address, signer.address, zeroAddress]);
  });

  it("returns the new id", async () => {
    const f = await loadFixture(escrowFixture);

    expect(await f.escrow.connect(f.other).registerMerchant.staticCall(f.other.address, f.other.address)).to.equal(2);
  });

  it("reports an unknown merchant as all zero", async () => {
    const f = await loadFixture(escrowFixture);

    expect(await f.escrow.merchant(UNKNOWN_MERCHANT)).to.deep.equal([
      zeroAddress,
      zeroAddress,
      zeroAddress,
      zeroAddress,
    ]);
  });

  it("refuses a zero payout or a zero signer (ZeroAddress)", async () => {
    const f = await loadFixture(escrowFixture);

    for (const [payout, signer] of [
      [zeroAddress, f.signer.address],
      [f.payout.address, zeroAddress],
    ]) {
      await expect(f.escrow.connect(f.other).registerMerchant(payout, signer)).to.be.revertedWithCustomError(
        f.escrow,
        "ZeroAddress",
      );
    }
    expect(await f.escrow.merchantCount()).to.equal(1);
  });
});

describe("MerchantRegistry.setMerchantPayout", () => {
  it("lets the owner move the payout address", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, f.newOwner.address))
      .to.emit(f.escrow, "MerchantPayoutChanged")
      .withArgs(f.merchantId, f.newOwner.address);

    expect((await f.escrow.merchant(f.merchantId)).payout).to.equal(f.newOwner.address);
  });

  it("refuses anyone but the owner (NotMerchantOwner), the zero address and an unknown merchant", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.payout).setMerchantPayout(f.merchantId, f.payout.address))
      .to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner")
      .withArgs(f.merchantId, f.payout.address);
    await expect(
      f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, zeroAddress),
    ).to.be.revertedWithCustomError(f.escrow, "ZeroAddress");
    await expect(f.escrow.connect(f.merchantOwner).setMerchantPayout(UNKNOWN_MERCHANT, f.payout.address))
      .to.be.revertedWithCustomError(f.escrow, "UnknownMerchant")
      .withArgs(UNKNOWN_MERCHANT);
  });
});

describe("MerchantRegistry.setMerchantSigner", () => {
  it("lets the owner rotate the signer (the old key's invoices: see signatures.test.ts)", async () => {
    const f = await loadFixture(escrowFixture);
    const nextSigner = testAccount("rotated signer");

    await expect(f.escrow.connect(f.merchantOwner).setMerchantSigner(f.merchantId, nextSigner.address))
      .to.emit(f.escrow, "MerchantSignerChanged")
      .withArgs(f.merchantId, nextSigner.address);

    expect((await f.escrow.merchant(f.merchantId)).signer).to.equal(nextSigner.address);
    expect(await f.escrow.isMerchantOperator(f.merchantId, f.signer.address)).to.equal(false);
  });

  it("refuses anyone but the owner (NotMerchantOwner), the zero address and an unknown merchant", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.other).setMerchantSigner(f.merchantId, f.other.address))
      .to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner")
      .withArgs(f.merchantId, f.other.address);
    await expect(
      f.escrow.connect(f.merchantOwner).setMerchantSigner(f.merchantId, zeroAddress),
    ).to.be.revertedWithCustomError(f.escrow, "ZeroAddress");
    await expect(f.escrow.connect(f.merchantOwner).setMerchantSigner(UNKNOWN_MERCHANT, f.other.address))
      .to.be.revertedWithCustomError(f.escrow, "UnknownMerchant")
      .withArgs(UNKNOWN_MERCHANT);
  });
});

describe("MerchantRegistry two-step merchant ownership", () => {
  it("moves ownership only when the proposed owner accepts", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.merchantOwner).transferMerchantOwnership(f.merchantId, f.newOwner.address))
      .to.emit(f.escrow, "MerchantOwnershipTransferStarted")
      .withArgs(f.merchantId, f.newOwner.address);
    const pending = await f.escrow.merchant(f.merchantId);
    expect(pending.owner).to.equal(f.merchantOwner.address);
    expect(pending.pendingOwner).to.equal(f.newOwner.address);

    await expect(f.escrow.connect(f.newOwner).acceptMerchantOwnership(f.merchantId))
      .to.emit(f.escrow, "MerchantOwnershipTransferred")
      .withArgs(f.merchantId, f.newOwner.address);

    const accepted = await f.escrow.merchant(f.merchantId);
    expect(accepted.owner).to.equal(f.newOwner.address);
    expect(accepted.pendingOwner).to.equal(zeroAddress);
    await expect(f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, f.merchantOwner.address))
      .to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner")
      .withArgs(f.merchantId, f.merchantOwner.address);
    await expect(f.escrow.connect(f.newOwner).setMerchantPayout(f.merchantId, f.newOwner.address)).to.emit(
      f.escrow,
      "MerchantPayoutChanged",
    );
  });

  it("lets the owner replace a pending proposal; the replaced candidate cannot accept", async () => {
    const f = await loadFixture(escrowFixture);
    await f.escrow.connect(f.merchantOwner).transferMerchantOwnership(f.merchantId, f.other.address);
    await f.escrow.connect(f.merchantOwner).transferMerchantOwnership(f.merchantId, f.newOwner.address);

    await expect(f.escrow.connect(f.other).acceptMerchantOwnership(f.merchantId))
      .to.be.revertedWithCustomError(f.escrow, "NotPendingMerchantOwner")
      .withArgs(f.merchantId, f.other.address);
    await expect(f.escrow.connect(f.newOwner).acceptMerchantOwnership(f.merchantId)).to.emit(
      f.escrow,
      "MerchantOwnershipTransferred",
    );
  });

  it("refuses a proposal by anyone but the owner, to the zero address, or for an unknown merchant", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.other).transferMerchantOwnership(f.merchantId, f.other.address))
      .to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner")
      .withArgs(f.merchantId, f.other.address);
    await expect(
      f.escrow.connect(f.merchantOwner).transferMerchantOwnership(f.merchantId, zeroAddress),
    ).to.be.revertedWithCustomError(f.escrow, "ZeroAddress");
    await expect(f.escrow.connect(f.merchantOwner).transferMerchantOwnership(UNKNOWN_MERCHANT, f.other.address))
      .to.be.revertedWithCustomError(f.escrow, "UnknownMerchant")
      .withArgs(UNKNOWN_MERCHANT);
  });

  it("refuses an acceptance without a proposal (NotPendingMerchantOwner), also for an unknown merchant", async () => {
    const f = await loadFixture(escrowFixture);

    for (const merchantId of [f.merchantId, UNKNOWN_MERCHANT]) {
      await expect(f.escrow.connect(f.other).acceptMerchantOwnership(merchantId))
        .to.be.revertedWithCustomError(f.escrow, "NotPendingMerchantOwner")
        .withArgs(merchantId, f.other.address);
    }
  });
});

describe("MerchantRegistry.isMerchantOperator", () => {
  it("is true for the owner and the signer only, never for the zero address", async () => {
    const f = await loadFixture(escrowFixture);

    expect(await f.escrow.isMerchantOperator(f.merchantId, f.merchantOwner.address)).to.equal(true);
    expect(await f.escrow.isMerchantOperator(f.merchantId, f.signer.address)).to.equal(true);
    expect(await f.escrow.isMerchantOperator(f.merchantId, f.payout.address)).to.equal(false);
    expect(await f.escrow.isMerchantOperator(f.merchantId, zeroAddress)).to.equal(false);
    // An unknown merchant's signer and owner are zero: the zero address must not pass as its operator.
    expect(await f.escrow.isMerchantOperator(UNKNOWN_MERCHANT, zeroAddress)).to.equal(false);
  });
});

describe("a stolen merchant signer key", () => {
  /** The merchant's hot signer key, funded so it can send transactions as a thief would. */
  async function stolenSignerFixture() {
    const f = await loadFixture(escrowFixture);
    await setBalance(f.signer.address, ethers.parseEther("1"));
    return { f, thief: await ethers.getImpersonatedSigner(f.signer.address) };
  }

  it("cannot redirect money: payout, signer and ownership changes are refused (NotMerchantOwner)", async () => {
    const { f, thief } = await stolenSignerFixture();
    const attempts = [
      () => f.escrow.connect(thief).setMerchantPayout(f.merchantId, thief.address),
      () => f.escrow.connect(thief).setMerchantSigner(f.merchantId, thief.address),
      () => f.escrow.connect(thief).transferMerchantOwnership(f.merchantId, thief.address),
    ];

    for (const attempt of attempts) {
      await expect(attempt())
        .to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner")
        .withArgs(f.merchantId, thief.address);
    }
    expect((await f.escrow.merchant(f.merchantId)).payout).to.equal(f.payout.address);
  });

  it("can still operate: refunds go to the payer, markFulfilled and voidInvoice work", async () => {
    const { f, thief } = await stolenSignerFixture();
    const { invoice: toRefund } = await f.payInvoice();
    const { invoice: toFulfil, key: fulfilKey } = await f.payInvoice();
    const { invoice: toVoid, key: voidKey } = await signedInvoice(f);

    await expect(f.escrow.connect(thief).refund(toRefund, toRefund.amount)).to.changeTokenBalances(
      f.usdc,
      [f.payer, thief],
      [toRefund.amount, 0],
    );
    await f.escrow.connect(thief).markFulfilled(toFulfil);
    await f.escrow.connect(thief).voidInvoice(toVoid);

    expect((await f.escrow.payment(fulfilKey)).fulfilled).to.equal(true);
    expect((await f.escrow.payment(voidKey)).status).to.equal(PaymentStatus.Voided);
    // Invoices the thief signs still pay the owner's payout address, never the thief.
    const { invoice } = await f.payInvoice();
    await expect(f.escrow.connect(f.payer).release(invoice)).to.changeTokenBalances(
      f.usdc,
      [f.payout, thief],
      [invoice.amount - feeOf(invoice.amount, FEE_BPS), 0],
    );
  });
});

describe("MerchantRegistry: payouts to the escrow itself", () => {
  it("refuses the escrow as payout address, where released money would be stranded", async () => {
    const f = await loadFixture(escrowFixture);
    const escrowAddress = await f.escrow.getAddress();
    const signer = testAccount("self payout signer");

    await expect(f.escrow.connect(f.other).registerMerchant(escrowAddress, signer.address))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(escrowAddress);
    await expect(f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, escrowAddress))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(escrowAddress);
    await expect(f.escrow.connect(f.owner).setFeeRecipient(escrowAddress))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(escrowAddress);
  });
});
