/**
 * Protocol administration: the constructor's checks, fee rate and recipient, pause, fee withdrawal, and the
 * two-step protocol ownership (OpenZeppelin Ownable2Step).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress, type Address } from "viem";
import { DISPUTE_PERIOD, FEE_BPS, USDC } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  escrowFixture,
  expectEscrowSolvent,
  feeOf,
  signPermit,
  signedInvoice,
  type EscrowFixture,
} from "./helpers";

const DAY = 86_400;
const MAX_FEE_BPS = 1_000;
const MAX_DISPUTE_PERIOD = 180 * DAY;

/** Pays and releases one invoice so that its fee accrues; returns the fee. */
async function accrueFee(f: EscrowFixture, overrides = {}) {
  const { invoice } = await f.payInvoice(overrides);
  await f.escrow.connect(f.payer).release(invoice);
  return { invoice, fee: feeOf(invoice.amount, FEE_BPS) };
}

describe("BillingEscrow constructor", () => {
  it("starts with the given owner, fee recipient, fee rate and dispute period, unpaused", async () => {
    const f = await loadFixture(escrowFixture);

    expect(await f.escrow.owner()).to.equal(f.owner.address);
    expect(await f.escrow.config()).to.deep.equal([f.feeRecipient.address, BigInt(FEE_BPS), false]);
    expect(await f.escrow.DISPUTE_PERIOD()).to.equal(DISPUTE_PERIOD);
    expect(await f.escrow.merchantCount()).to.equal(1);
  });

  it("exposes its limits: fee 10%, hold 365 days, dispute period 180 days, 50k gas per ETH payout", async () => {
    const f = await loadFixture(escrowFixture);

    expect(await f.escrow.MAX_FEE_BPS()).to.equal(MAX_FEE_BPS);
    expect(await f.escrow.MAX_HOLD_DURATION()).to.equal(365 * DAY);
    expect(await f.escrow.MAX_DISPUTE_PERIOD()).to.equal(MAX_DISPUTE_PERIOD);
    expect(await f.escrow.NATIVE_PAYOUT_GAS()).to.equal(50_000);
  });

  it("accepts the maximum fee rate and dispute period", async () => {
    const [owner] = await ethers.getSigners();
    const escrow = await ethers.deployContract("BillingEscrow", [
      owner.address,
      owner.address,
      MAX_FEE_BPS,
      MAX_DISPUTE_PERIOD,
    ]);

    expect((await escrow.config()).feeBps).to.equal(MAX_FEE_BPS);
    expect(await escrow.DISPUTE_PERIOD()).to.equal(MAX_DISPUTE_PERIOD);
  });

  it("refuses a zero fee recipient (ZeroAddress) and a zero owner (OwnableInvalidOwner)", async () => {
    const [owner] = await ethers.getSigners();
    const factory = await ethers.getContractFactory("BillingEscrow");

    await expect(factory.deploy(owner.address, zeroAddress, FEE_BPS, DISPUTE_PERIOD)).to.be.revertedWithCustomError(
      factory,
      "ZeroAddress",
    );
    await expect(factory.deploy(zeroAddress, owner.address, FEE_BPS, DISPUTE_PERIOD))
      .to.be.revertedWithCustomError(factory, "OwnableInvalidOwner")
      .withArgs(zeroAddress);
  });

  it("refuses a fee rate above 10% (FeeTooHigh)", async () => {
    const [owner] = await ethers.getSigners();
    const factory = await ethers.getContractFactory("BillingEscrow");

    await expect(factory.deploy(owner.address, owner.address, MAX_FEE_BPS + 1, DISPUTE_PERIOD))
      .to.be.revertedWithCustomError(factory, "FeeTooHigh")
      .withArgs(MAX_FEE_BPS + 1, MAX_FEE_BPS);
  });

  it("refuses a zero or longer-than-180-days dispute period (InvalidDisputePeriod)", async () => {
    const [owner] = await ethers.getSigners();
    const factory = await ethers.getContractFactory("BillingEscrow");

    for (const disputePeriod of [0, MAX_DISPUTE_PERIOD + 1]) {
      await expect(factory.deploy(owner.address, owner.address, FEE_BPS, disputePeriod))
        .to.be.revertedWithCustomError(factory, "InvalidDisputePeriod")
        .withArgs(disputePeriod);
    }
  });
});

describe("BillingEscrow.setFee", () => {
  it("sets the rate new payments snapshot, up to the 10% cap", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.owner).setFee(MAX_FEE_BPS)).to.emit(f.escrow, "FeeChanged").withArgs(MAX_FEE_BPS);

    expect((await f.escrow.config()).feeBps).to.equal(MAX_FEE_BPS);
    const { key } = await f.payInvoice();
    expect((await f.escrow.payment(key)).feeBps).to.equal(MAX_FEE_BPS);
  });

  it("at zero, the merchant receives everything and no fee accrues", async () => {
    const f = await loadFixture(escrowFixture);
    await f.escrow.connect(f.owner).setFee(0);
    const { invoice } = await f.payInvoice();

    await expect(f.escrow.connect(f.payer).release(invoice)).to.changeTokenBalance(f.usdc, f.payout, invoice.amount);
    expect(await f.escrow.accruedFees(invoice.token)).to.equal(0);
  });

  it("refuses a rate above the cap (FeeTooHigh) and anyone but the owner", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.owner).setFee(MAX_FEE_BPS + 1))
      .to.be.revertedWithCustomError(f.escrow, "FeeTooHigh")
      .withArgs(MAX_FEE_BPS + 1, MAX_FEE_BPS);
    await expect(f.escrow.connect(f.other).setFee(0))
      .to.be.revertedWithCustomError(f.escrow, "OwnableUnauthorizedAccount")
      .withArgs(f.other.address);
  });
});

describe("BillingEscrow.setFeeRecipient", () => {
  it("changes where fee withdrawals go", async () => {
    const f = await loadFixture(escrowFixture);
    const { fee, invoice } = await accrueFee(f);

    await expect(f.escrow.connect(f.owner).setFeeRecipient(f.newOwner.address))
      .to.emit(f.escrow, "FeeRecipientChanged")
      .withArgs(f.newOwner.address);

    await expect(f.escrow.connect(f.keeper).withdrawFees(invoice.token)).to.changeTokenBalances(
      f.usdc,
      [f.newOwner, f.feeRecipient],
      [fee, 0],
    );
  });

  it("refuses the zero address (ZeroAddress) and anyone but the owner", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.owner).setFeeRecipient(zeroAddress)).to.be.revertedWithCustomError(
      f.escrow,
      "ZeroAddress",
    );
    await expect(f.escrow.connect(f.other).setFeeRecipient(f.other.address))
      .to.be.revertedWithCustomError(f.escrow, "OwnableUnauthorizedAccount")
      .withArgs(f.other.address);
  });
});

describe("BillingEscrow.setPaused", () => {
  it("stops pay and payWithPermit (PaymentsPaused) until resumed", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f);
    const deadline = BigInt(await time.latest()) + 3_600n;
    const permit = await signPermit(f.usdc, f.permitPayer, f.escrowAddress, invoice.amount, deadline);

    await expect(f.escrow.connect(f.owner).setPaused(true)).to.emit(f.escrow, "PausedSet").withArgs(true);

    expect((await f.escrow.config()).paused).to.equal(true);
    await expect(f.escrow.connect(f.payer).pay(invoice, signature)).to.be.revertedWithCustomError(
      f.escrow,
      "PaymentsPaused",
    );
    await expect(
      f.escrow.connect(f.permitPayer).payWithPermit(invoice, signature, deadline, permit.v, permit.r, permit.s),
    ).to.be.revertedWithCustomError(f.escrow, "PaymentsPaused");

    await expect(f.escrow.connect(f.owner).setPaused(false)).to.emit(f.escrow, "PausedSet").withArgs(false);
    await expect(f.escrow.connect(f.payer).pay(invoice, signature)).to.emit(f.escrow, "InvoicePaid");
  });

  it("never blocks money already in the escrow: release, refund, disputes, claims and fee withdrawal", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice: toRelease } = await f.payInvoice();
    const { invoice: toRefund } = await f.payInvoice();
    const { invoice: toDispute } = await f.payInvoice();
    await f.blocklistToken.setBlocklisted(f.payout.address, true);
    const { invoice: deferred } = await f.payInvoice({ token: (await f.blocklistToken.getAddress()) as Address });
    await f.escrow.connect(f.payer).release(deferred);

    await f.escrow.connect(f.owner).setPaused(true);

    await expect(f.escrow.connect(f.payer).release(toRelease)).to.emit(f.escrow, "InvoiceReleased");
    await expect(f.escrow.connect(f.merchantOwner).refund(toRefund, toRefund.amount)).to.emit(
      f.escrow,
      "InvoiceRefunded",
    );
    await expect(f.escrow.connect(f.payer).dispute(toDispute)).to.emit(f.escrow, "InvoiceDisputed");
    await expect(f.escrow.connect(f.payout).claim(deferred.token, f.newOwner.address)).to.emit(f.escrow, "Claimed");
    await expect(f.escrow.connect(f.keeper).withdrawFees(toRelease.token)).to.emit(f.escrow, "FeesWithdrawn");
    await expectEscrowSolvent(f.escrow, [toRelease, toRefund, toDispute, deferred]);
  });

  it("refuses anyone but the owner", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.merchantOwner).setPaused(true))
      .to.be.revertedWithCustomError(f.escrow, "OwnableUnauthorizedAccount")
      .withArgs(f.merchantOwner.address);
  });
});

describe("BillingEscrow.withdrawFees", () => {
  it("lets anyone send the accrued fees of a token to the fee recipient", async () => {
    const f = await loadFixture(escrowFixture);
    const first = await accrueFee(f);
    const second = await accrueFee(f, { amount: USDC(250) });
    const total = first.fee + second.fee;
    const token = first.invoice.token;
    expect(await f.escrow.connect(f.keeper).withdrawFees.staticCall(token)).to.equal(total);

    const withdrawal = f.escrow.connect(f.keeper).withdrawFees(token);

    await expect(withdrawal).to.emit(f.escrow, "FeesWithdrawn").withArgs(token, f.feeRecipient.address, total);
    await expect(withdrawal).to.changeTokenBalances(f.usdc, [f.escrow, f.feeRecipient], [-total, total]);
    expect(await f.escrow.accruedFees(token)).to.equal(0);
    await expectEscrowSolvent(f.escrow, [first.invoice, second.invoice]);
  });

  it("withdraws ETH fees", async () => {
    const f = await loadFixture(escrowFixture);
    const { fee, invoice } = await accrueFee(f, { token: zeroAddress, amount: ETH_AMOUNT });

    await expect(f.escrow.connect(f.keeper).withdrawFees(zeroAddress)).to.changeEtherBalances(
      [f.escrow, f.feeRecipient],
      [-fee, fee],
    );
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("refuses when nothing has accrued (NoFees), including right after a withdrawal", async () => {
    const f = await loadFixture(escrowFixture);
    const usdc = (await f.usdc.getAddress()) as Address;
    await expect(f.escrow.withdrawFees(usdc)).to.be.revertedWithCustomError(f.escrow, "NoFees").withArgs(usdc);

    await accrueFee(f);
    await f.escrow.withdrawFees(usdc);
    await expect(f.escrow.withdrawFees(usdc)).to.be.revertedWithCustomError(f.escrow, "NoFees").withArgs(usdc);
  });

  it("reverts when the fee recipient refuses ETH (NativeTransferFailed) and keeps the fees", async () => {
    const f = await loadFixture(escrowFixture);
    const { fee } = await accrueFee(f, { token: zeroAddress, amount: ETH_AMOUNT });
    const refuser = await f.revertingReceiver.getAddress();
    await f.escrow.connect(f.owner).setFeeRecipient(refuser);

    await expect(f.escrow.withdrawFees(zeroAddress))
      .to.be.revertedWithCustomError(f.escrow, "NativeTransferFailed")
      .withArgs(refuser, fee);
    expect(await f.escrow.accruedFees(zeroAddress)).to.equal(fee);
  });
});

describe("BillingEscrow protocol ownership (two-step)", () => {
  it("moves only when the proposed owner accepts", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.owner).transferOwnership(f.newOwner.address))
      .to.emit(f.escrow, "OwnershipTransferStarted")
      .withArgs(f.owner.address, f.newOwner.address);
    expect(await f.escrow.pendingOwner()).to.equal(f.newOwner.address);
    expect(await f.escrow.owner()).to.equal(f.owner.address);

    await expect(f.escrow.connect(f.other).acceptOwnership())
      .to.be.revertedWithCustomError(f.escrow, "OwnableUnauthorizedAccount")
      .withArgs(f.other.address);
    await expect(f.escrow.connect(f.newOwner).acceptOwnership())
      .to.emit(f.escrow, "OwnershipTransferred")
      .withArgs(f.owner.address, f.newOwner.address);

    await expect(f.escrow.connect(f.owner).setFee(0))
      .to.be.revertedWithCustomError(f.escrow, "OwnableUnauthorizedAccount")
      .withArgs(f.owner.address);
    await expect(f.escrow.connect(f.newOwner).setFee(0)).to.emit(f.escrow, "FeeChanged");
  });

  it("refuses a transfer proposed by anyone but the owner", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.other).transferOwnership(f.other.address))
      .to.be.revertedWithCustomError(f.escrow, "OwnableUnauthorizedAccount")
      .withArgs(f.other.address);
  });

  it("cannot be renounced (RenounceOwnershipDisabled): an ownerless escrow could stay paused forever", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.owner).renounceOwnership()).to.be.revertedWithCustomError(
      f.escrow,
      "RenounceOwnershipDisabled",
    );
    await expect(f.escrow.connect(f.other).renounceOwnership())
      .to.be.revertedWithCustomError(f.escrow, "OwnableUnauthorizedAccount")
      .withArgs(f.other.address);
    expect(await f.escrow.owner()).to.equal(f.owner.address);
  });
});
