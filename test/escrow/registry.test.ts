/**
 * The merchant registry inside BillingEscrow: registration and signer rotation with the signer's EIP-712 consent,
 * payout changes, two-step merchant ownership, the operator check, and what a stolen signer (hot) key can and
 * cannot do.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, setBalance, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress, type Address } from "viem";
import { billingEscrowDomain, signerConsentDigest } from "../../contracts/invoice";
import { DISPUTE_PERIOD, FEE_BPS, registerMerchant, setMerchantSigner, signConsent } from "../helpers/fixture";
import { PaymentStatus, addressOf, escrowFixture, feeOf, nextBlockAt, signedInvoice, testAccount } from "./helpers";

const UNKNOWN_MERCHANT = 99n;

describe("MerchantRegistry.registerMerchant", () => {
  it("registers the caller as owner of a new merchant with the next sequential id, with the signer's consent", async () => {
    const f = await loadFixture(escrowFixture);
    const signer = testAccount("second merchant signer");
    const { consent, signature } = await signConsent(f.escrow, signer, { owner: f.other.address, payout: f.other.address });

    await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address, consent.deadline, signature))
      .to.emit(f.escrow, "MerchantRegistered")
      .withArgs(2, f.other.address, f.other.address, signer.address);

    expect(await f.escrow.merchantCount()).to.equal(2);
    expect(await f.escrow.merchant(2)).to.deep.equal([f.other.address, f.other.address, signer.address, zeroAddress]);
    expect(await f.escrow.nonces(signer.address)).to.equal(1);
  });

  it("returns the new id", async () => {
    const f = await loadFixture(escrowFixture);

    expect(
      await f.escrow.connect(f.other).registerMerchant.staticCall(f.other.address, f.other.address, 0, "0x"),
    ).to.equal(2);
  });

  it("needs no signature when the caller names itself as signer (sending is its consent), and uses no nonce", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.other).registerMerchant(f.payout.address, f.other.address, 0, "0x"))
      .to.emit(f.escrow, "MerchantRegistered")
      .withArgs(2, f.other.address, f.payout.address, f.other.address);
    expect(await f.escrow.nonces(f.other.address)).to.equal(0);
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
      await expect(f.escrow.connect(f.other).registerMerchant(payout, signer, 0, "0x")).to.be.revertedWithCustomError(
        f.escrow,
        "ZeroAddress",
      );
    }
    expect(await f.escrow.merchantCount()).to.equal(1);
  });
});

describe("MerchantRegistry: a record names a signer only with that signer's consent", () => {
  const HOUR = 3_600n;

  it("refuses a stranger naming another merchant's signer without its consent (InvalidSignerConsent)", async () => {
    const f = await loadFixture(escrowFixture);
    const deadline = BigInt(await time.latest()) + HOUR;
    // The attack: a record of the stranger's naming merchant 1's signer (the API's operator key), so that code
    // looking up "the record with this signer" signs invoices paying the stranger.
    const forged = await f.sign(await f.makeInvoice()); // any signature of that key over something else

    for (const signature of ["0x", forged]) {
      await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, f.signer.address, deadline, signature))
        .to.be.revertedWithCustomError(f.escrow, "InvalidSignerConsent")
        .withArgs(f.signer.address, 0, f.other.address, f.other.address, 1, deadline); // nonce 0 registered merchant 1
    }
    expect(await f.escrow.merchantCount()).to.equal(1);
  });

  it("refuses a registration front-run by a stranger: the consent names the owner (InvalidSignerConsent)", async () => {
    const f = await loadFixture(escrowFixture);
    const signer = testAccount("operator key of a new merchant");
    const { consent, signature } = await signConsent(f.escrow, signer, { owner: f.newOwner.address, payout: f.payout.address });
    const args = [f.payout.address, signer.address, consent.deadline, signature] as const;

    // A mempool watcher copies the owner's pending transaction and sends it first, from its own account.
    await expect(f.escrow.connect(f.other).registerMerchant(...args))
      .to.be.revertedWithCustomError(f.escrow, "InvalidSignerConsent")
      .withArgs(signer.address, 0, f.other.address, f.payout.address, 0, consent.deadline);
    await expect(f.escrow.connect(f.newOwner).registerMerchant(...args))
      .to.emit(f.escrow, "MerchantRegistered")
      .withArgs(2, f.newOwner.address, f.payout.address, signer.address);
  });

  it("refuses a replayed consent: each consent uses the signer's nonce once (InvalidSignerConsent with the next nonce)", async () => {
    const f = await loadFixture(escrowFixture);
    const signer = testAccount("operator key registered once");
    const { consent, signature } = await signConsent(f.escrow, signer, { owner: f.other.address, payout: f.other.address });
    await f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address, consent.deadline, signature);

    await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address, consent.deadline, signature))
      .to.be.revertedWithCustomError(f.escrow, "InvalidSignerConsent")
      .withArgs(signer.address, 0, f.other.address, f.other.address, 1, consent.deadline);
    expect(await f.escrow.merchantCount()).to.equal(2);
    expect(await f.escrow.nonces(signer.address)).to.equal(1);
  });

  it("refuses a consent given for another payout (InvalidSignerConsent)", async () => {
    const f = await loadFixture(escrowFixture);
    const signer = testAccount("operator key with a payout");
    const { consent, signature } = await signConsent(f.escrow, signer, { owner: f.other.address, payout: f.payout.address });

    await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address, consent.deadline, signature))
      .to.be.revertedWithCustomError(f.escrow, "InvalidSignerConsent")
      .withArgs(signer.address, 0, f.other.address, f.other.address, 0, consent.deadline);
  });

  it("accepts a consent at its deadline and refuses it one second later (SignerConsentExpired)", async () => {
    const f = await loadFixture(escrowFixture);
    const signer = testAccount("operator key in a hurry");
    const deadline = BigInt(await time.latest()) + HOUR;
    const inTime = await signConsent(f.escrow, signer, { owner: f.other.address, payout: f.other.address, deadline });

    await nextBlockAt(deadline);
    await expect(
      f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address, deadline, inTime.signature),
    ).to.emit(f.escrow, "MerchantRegistered");
    const late = await signConsent(f.escrow, signer, { owner: f.other.address, payout: f.other.address, deadline });
    await nextBlockAt(deadline + 1n);
    await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address, deadline, late.signature))
      .to.be.revertedWithCustomError(f.escrow, "SignerConsentExpired")
      .withArgs(deadline, deadline + 1n);
  });

  it("refuses a consent signed for another chain or another deployment (InvalidSignerConsent)", async () => {
    const f = await loadFixture(escrowFixture);
    const signer = testAccount("operator key elsewhere");
    const second = await ethers.deployContract("BillingEscrow", [f.owner.address, f.feeRecipient.address, FEE_BPS, DISPUTE_PERIOD]);
    const terms = { owner: f.other.address, payout: f.other.address };
    const domains = [billingEscrowDomain(1n, f.escrowAddress), billingEscrowDomain(f.chainId, await addressOf(second))];

    for (const domain of domains) {
      const { consent, signature } = await signConsent(f.escrow, signer, terms, domain);
      await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address, consent.deadline, signature))
        .to.be.revertedWithCustomError(f.escrow, "InvalidSignerConsent")
        .withArgs(signer.address, 0, f.other.address, f.other.address, 0, consent.deadline);
    }
    // Signed in this deployment's domain, the same consent works.
    const { consent, signature } = await signConsent(f.escrow, signer, terms);
    await expect(
      f.escrow.connect(f.other).registerMerchant(f.other.address, signer.address, consent.deadline, signature),
    ).to.emit(f.escrow, "MerchantRegistered");
  });

  it("accepts the consent of an ERC-1271 contract signer (a smart account), and refuses one it does not approve", async () => {
    const f = await loadFixture(escrowFixture);
    const key = testAccount("smart account key");
    const account = await ethers.deployContract("ContractSigner", [key.address]);
    const accountAddress = await addressOf(account);
    const deadline = BigInt(await time.latest()) + HOUR;
    const consent = { merchantId: 0n, owner: f.other.address as Address, payout: f.other.address as Address, nonce: 0n, deadline };
    const approved = await key.sign({ hash: signerConsentDigest(f.domain, consent) });
    const unapproved = await testAccount("not the key").sign({ hash: signerConsentDigest(f.domain, consent) });

    await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, accountAddress, deadline, unapproved))
      .to.be.revertedWithCustomError(f.escrow, "InvalidSignerConsent")
      .withArgs(accountAddress, 0, f.other.address, f.other.address, 0, deadline);
    await expect(f.escrow.connect(f.other).registerMerchant(f.other.address, accountAddress, deadline, approved))
      .to.emit(f.escrow, "MerchantRegistered")
      .withArgs(2, f.other.address, f.other.address, accountAddress);
    expect(await f.escrow.nonces(accountAddress)).to.equal(1);
  });

  it("lets one key consent to several records, one consent (and nonce) each", async () => {
    const f = await loadFixture(escrowFixture);

    // Merchant 1's signer agrees to sign for a second merchant of another owner too.
    await expect(registerMerchant(f.escrow, f.other, f.other.address, f.signer)).to.emit(f.escrow, "MerchantRegistered");
    await expect(registerMerchant(f.escrow, f.newOwner, f.newOwner.address, f.signer)).to.emit(f.escrow, "MerchantRegistered");
    expect(await f.escrow.nonces(f.signer.address)).to.equal(3); // merchant 1's registration, then these two
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
  it("lets the owner rotate the signer with the new signer's consent (the old key's invoices: see signatures.test.ts)", async () => {
    const f = await loadFixture(escrowFixture);
    const nextSigner = testAccount("rotated signer");

    await expect(setMerchantSigner(f.escrow, f.merchantOwner, f.merchantId, nextSigner))
      .to.emit(f.escrow, "MerchantSignerChanged")
      .withArgs(f.merchantId, nextSigner.address);

    expect((await f.escrow.merchant(f.merchantId)).signer).to.equal(nextSigner.address);
    expect(await f.escrow.isMerchantOperator(f.merchantId, f.signer.address)).to.equal(false);
    expect(await f.escrow.nonces(nextSigner.address)).to.equal(1);
  });

  it("needs no signature when the owner makes itself the signer", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.merchantOwner).setMerchantSigner(f.merchantId, f.merchantOwner.address, 0, "0x"))
      .to.emit(f.escrow, "MerchantSignerChanged")
      .withArgs(f.merchantId, f.merchantOwner.address);
  });

  it("refuses a consent bound to another merchant id, a new registration, or a payout since changed (InvalidSignerConsent)", async () => {
    const f = await loadFixture(escrowFixture);
    const nextSigner = testAccount("rotated signer, wrong record");
    await f.escrow.connect(f.merchantOwner).registerMerchant(f.payout.address, f.merchantOwner.address, 0, "0x"); // merchant 2
    const owner = f.merchantOwner.address;
    const payout = f.payout.address;

    const forMerchant2 = await signConsent(f.escrow, nextSigner, { owner, payout, merchantId: 2n });
    const forRegistration = await signConsent(f.escrow, nextSigner, { owner, payout });
    for (const { consent, signature } of [forMerchant2, forRegistration]) {
      await expect(f.escrow.connect(f.merchantOwner).setMerchantSigner(f.merchantId, nextSigner.address, consent.deadline, signature))
        .to.be.revertedWithCustomError(f.escrow, "InvalidSignerConsent")
        .withArgs(nextSigner.address, f.merchantId, owner, payout, 0, consent.deadline);
    }
    const beforePayoutMove = await signConsent(f.escrow, nextSigner, { owner, payout, merchantId: f.merchantId });
    await f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, f.newOwner.address);
    await expect(
      f.escrow
        .connect(f.merchantOwner)
        .setMerchantSigner(f.merchantId, nextSigner.address, beforePayoutMove.consent.deadline, beforePayoutMove.signature),
    )
      .to.be.revertedWithCustomError(f.escrow, "InvalidSignerConsent")
      .withArgs(nextSigner.address, f.merchantId, owner, f.newOwner.address, 0, beforePayoutMove.consent.deadline);
    expect((await f.escrow.merchant(f.merchantId)).signer).to.equal(f.signer.address);
  });

  it("refuses an expired consent (SignerConsentExpired)", async () => {
    const f = await loadFixture(escrowFixture);
    const nextSigner = testAccount("rotated signer, too late");
    const deadline = BigInt(await time.latest()) + 60n;
    const { signature } = await signConsent(f.escrow, nextSigner, {
      owner: f.merchantOwner.address,
      payout: f.payout.address,
      merchantId: f.merchantId,
      deadline,
    });
    await nextBlockAt(deadline + 1n);

    await expect(f.escrow.connect(f.merchantOwner).setMerchantSigner(f.merchantId, nextSigner.address, deadline, signature))
      .to.be.revertedWithCustomError(f.escrow, "SignerConsentExpired")
      .withArgs(deadline, deadline + 1n);
  });

  it("refuses anyone but the owner (NotMerchantOwner), the zero address and an unknown merchant", async () => {
    const f = await loadFixture(escrowFixture);

    await expect(f.escrow.connect(f.other).setMerchantSigner(f.merchantId, f.other.address, 0, "0x"))
      .to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner")
      .withArgs(f.merchantId, f.other.address);
    await expect(
      f.escrow.connect(f.merchantOwner).setMerchantSigner(f.merchantId, zeroAddress, 0, "0x"),
    ).to.be.revertedWithCustomError(f.escrow, "ZeroAddress");
    await expect(f.escrow.connect(f.merchantOwner).setMerchantSigner(UNKNOWN_MERCHANT, f.other.address, 0, "0x"))
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
      () => f.escrow.connect(thief).setMerchantSigner(f.merchantId, thief.address, 0, "0x"),
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

describe("MerchantRegistry: payouts and fees that would be stranded", () => {
  it("refuses the escrow as payout address or fee recipient, where the money would be stranded (InvalidRecipient)", async () => {
    const f = await loadFixture(escrowFixture);
    const escrowAddress = await f.escrow.getAddress();

    await expect(f.escrow.connect(f.other).registerMerchant(escrowAddress, f.other.address, 0, "0x"))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(escrowAddress);
    await expect(f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, escrowAddress))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(escrowAddress);
    await expect(f.escrow.connect(f.owner).setFeeRecipient(escrowAddress))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(escrowAddress);
  });

  it("refuses the SubscriptionManager built on this escrow as payout or fee recipient (InvalidRecipient)", async () => {
    const f = await loadFixture(escrowFixture);
    const manager = await addressOf(f.subscriptions);
    expect(await f.subscriptions.REGISTRY()).to.equal(f.escrowAddress);

    await expect(f.escrow.connect(f.other).registerMerchant(manager, f.other.address, 0, "0x"))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(manager);
    await expect(f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, manager))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(manager);
    await expect(f.escrow.connect(f.owner).setFeeRecipient(manager))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(manager);
    expect(await f.escrow.merchantCount()).to.equal(1);
    expect((await f.escrow.merchant(f.merchantId)).payout).to.equal(f.payout.address);
    expect((await f.escrow.config()).feeRecipient).to.equal(f.feeRecipient.address);
  });

  it("refuses, at deployment, a fee recipient that reports the escrow being deployed as its registry", async () => {
    const f = await loadFixture(escrowFixture);
    // The stub is deployed first, naming the address the next escrow will get.
    const stubNonce = await ethers.provider.getTransactionCount(f.owner.address);
    const nextEscrow = ethers.getCreateAddress({ from: f.owner.address, nonce: stubNonce + 1 });
    const stub = await ethers.deployContract("RegistryBoundStub", [nextEscrow, 0], f.owner);
    const factory = await ethers.getContractFactory("BillingEscrow", f.owner);

    await expect(factory.deploy(f.owner.address, await addressOf(stub), FEE_BPS, DISPUTE_PERIOD))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(await addressOf(stub));
  });

  it("accepts an EOA and contracts not bound to this escrow: no REGISTRY(), a reverting one, another escrow's manager", async () => {
    const f = await loadFixture(escrowFixture);
    const second = await ethers.deployContract("BillingEscrow", [f.owner.address, f.feeRecipient.address, FEE_BPS, DISPUTE_PERIOD]);
    const othersManager = await ethers.deployContract("SubscriptionManager", [f.owner.address, await addressOf(second)]);
    const reverting = await ethers.deployContract("RegistryBoundStub", [f.escrowAddress, 3]);
    const recipients = [
      f.newOwner.address, // an EOA
      await addressOf(f.revertingReceiver), // a plain contract whose fallback reverts
      await addressOf(reverting), // REGISTRY() reverts
      await addressOf(othersManager), // bound to another registry
    ];

    for (const recipient of recipients) {
      await expect(f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, recipient))
        .to.emit(f.escrow, "MerchantPayoutChanged")
        .withArgs(f.merchantId, recipient);
      await expect(f.escrow.connect(f.owner).setFeeRecipient(recipient))
        .to.emit(f.escrow, "FeeRecipientChanged")
        .withArgs(recipient);
    }
    await expect(f.escrow.connect(f.other).registerMerchant(await addressOf(othersManager), f.other.address, 0, "0x")).to.emit(
      f.escrow,
      "MerchantRegistered",
    );
  });

  it("probes with bounded gas and reads 32 bytes only: a gas burner or an oversized answer cannot block a payout change", async () => {
    const f = await loadFixture(escrowFixture);
    // Both claim this escrow, but neither answers with exactly 32 bytes within the probe's gas: treated as unbound.
    for (const mode of [1, 2]) {
      const stub = await ethers.deployContract("RegistryBoundStub", [f.escrowAddress, mode]);
      const tx = await f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, await addressOf(stub));
      const receipt = await tx.wait();
      expect(receipt!.gasUsed, `mode ${mode}`).to.be.lessThan(60_000n);
    }
    // The honest answer is refused.
    const honest = await ethers.deployContract("RegistryBoundStub", [f.escrowAddress, 0]);
    await expect(f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, await addressOf(honest)))
      .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
      .withArgs(await addressOf(honest));
  });
});
