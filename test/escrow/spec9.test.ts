/**
 * SPEC section 9, "Bad input and failure: a clear error, nothing lost": every contract case for BillingEscrow,
 * one named test each. Where money moved, the test ends with the solvency invariant.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress, type Address } from "viem";
import { billingEscrowDomain, invoiceKey } from "../../contracts/invoice";
import { DISPUTE_PERIOD, FEE_BPS, USDC } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  PaymentStatus,
  addressOf,
  disputeDeadlineOf,
  errorSelector,
  escrowFixture,
  expectEscrowSolvent,
  feeOf,
  nextBlockAt,
  pinNextBlockTimestamp,
  releaseAtOf,
  signedInvoice,
  type EscrowFixture,
} from "./helpers";

const MAX_HOLD_DURATION = 365 * 86_400;
const MAX_UINT32 = 2 ** 32 - 1;
const MAX_UINT64 = 2n ** 64n - 1n;

describe("SPEC 9: bad input and failure in BillingEscrow", () => {
  describe("replayed signatures", () => {
    it("SPEC9: a signature for one deployment is refused by a second BillingEscrow on the same chain", async () => {
      const f = await loadFixture(escrowFixture);
      const second = await ethers.deployContract("BillingEscrow", [
        f.owner.address,
        f.feeRecipient.address,
        FEE_BPS,
        DISPUTE_PERIOD,
      ]);
      // The same merchant (id 1, same signer) on the second deployment: only the domain differs.
      await second.connect(f.merchantOwner).registerMerchant(f.payout.address, f.signer.address);
      await f.usdc.connect(f.payer).approve(second, ethers.MaxUint256);
      const { invoice, signature } = await signedInvoice(f);

      await expect(second.connect(f.payer).pay(invoice, signature)).to.be.revertedWithCustomError(
        second,
        "InvalidSignature",
      );
      const secondDomain = billingEscrowDomain(f.chainId, await addressOf(second));
      await expect(second.connect(f.payer).pay(invoice, await f.sign(invoice, f.signer, secondDomain))).to.emit(
        second,
        "InvoicePaid",
      );
    });

    it("SPEC9: a signature made for another chain id (1) is refused", async () => {
      const f = await loadFixture(escrowFixture);
      const invoice = await f.makeInvoice();
      const mainnetDomain = billingEscrowDomain(1n, f.escrowAddress);
      const mainnetSignature = await f.sign(invoice, f.signer, mainnetDomain);

      await expect(f.escrow.connect(f.payer).pay(invoice, mainnetSignature)).to.be.revertedWithCustomError(
        f.escrow,
        "InvalidSignature",
      );
      expect(invoiceKey(mainnetDomain, invoice)).not.to.equal(await f.escrow.invoiceKey(invoice));
    });

    it("SPEC9: a signature cannot pay the same invoice twice (InvoiceNotPayable), before or after release", async () => {
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
  });

  it("SPEC9: an invoice pays at expiresAt - 1 and is refused at exactly expiresAt (InvoiceExpired)", async () => {
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

  it("SPEC9: an invoice naming a payer is refused to anyone else (WrongPayer)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f, { payer: f.payer.address as Address });

    await expect(f.escrow.connect(f.other).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "WrongPayer")
      .withArgs(f.payer.address, f.other.address);
  });

  describe("wrong msg.value", () => {
    async function ethInvoice(f: EscrowFixture) {
      return signedInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });
    }

    it("SPEC9: too little ETH for an ETH invoice is refused (WrongNativeAmount) and nothing is kept", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature } = await ethInvoice(f);

      await expect(f.escrow.connect(f.payer).pay(invoice, signature, { value: ETH_AMOUNT - 1n }))
        .to.be.revertedWithCustomError(f.escrow, "WrongNativeAmount")
        .withArgs(ETH_AMOUNT, ETH_AMOUNT - 1n);
      expect(await ethers.provider.getBalance(f.escrowAddress)).to.equal(0);
    });

    it("SPEC9: too much ETH for an ETH invoice is refused (WrongNativeAmount)", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature } = await ethInvoice(f);

      await expect(f.escrow.connect(f.payer).pay(invoice, signature, { value: ETH_AMOUNT + 1n }))
        .to.be.revertedWithCustomError(f.escrow, "WrongNativeAmount")
        .withArgs(ETH_AMOUNT, ETH_AMOUNT + 1n);
    });

    it("SPEC9: ETH sent with an ERC-20 invoice is refused (WrongNativeAmount(0, sent))", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key } = await signedInvoice(f);

      await expect(f.escrow.connect(f.payer).pay(invoice, signature, { value: 1n }))
        .to.be.revertedWithCustomError(f.escrow, "WrongNativeAmount")
        .withArgs(0, 1n);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
    });
  });

  describe("unusual tokens", () => {
    it("SPEC9: a fee-on-transfer token is refused (InexactTransfer) and the payer keeps the money", async () => {
      const f = await loadFixture(escrowFixture);
      await f.feeOnTransferToken.setFeeBps(100);
      const { invoice, signature, key } = await signedInvoice(f, {
        token: await addressOf(f.feeOnTransferToken),
        amount: USDC(100),
      });

      await expect(f.escrow.connect(f.payer).pay(invoice, signature))
        .to.be.revertedWithCustomError(f.escrow, "InexactTransfer")
        .withArgs(USDC(100), USDC(99));
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
      expect(await f.feeOnTransferToken.balanceOf(f.payer.address)).to.equal(USDC(1_000_000));
    });

    it("SPEC9: a no-return token (USDT-like) can be paid, released and refunded", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.noReturnToken);
      const { invoice: toRelease, signature } = await signedInvoice(f, { token });

      await expect(f.escrow.connect(f.payer).pay(toRelease, signature)).to.changeTokenBalances(
        f.noReturnToken,
        [f.payer, f.escrow],
        [-toRelease.amount, toRelease.amount],
      );
      const fee = feeOf(toRelease.amount, FEE_BPS);
      await expect(f.escrow.connect(f.payer).release(toRelease)).to.changeTokenBalances(
        f.noReturnToken,
        [f.escrow, f.payout],
        [-(toRelease.amount - fee), toRelease.amount - fee],
      );
      const { invoice: toRefund } = await f.payInvoice({ token });
      await expect(f.escrow.connect(f.merchantOwner).refund(toRefund, toRefund.amount)).to.changeTokenBalances(
        f.noReturnToken,
        [f.escrow, f.payer],
        [-toRefund.amount, toRefund.amount],
      );
      await expect(f.escrow.withdrawFees(token)).to.changeTokenBalance(f.noReturnToken, f.feeRecipient, fee);
      await expectEscrowSolvent(f.escrow, [toRelease, toRefund]);
    });

    it("SPEC9: a returns-false token reporting a failed pull is refused (SafeERC20FailedOperation)", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.returnsFalseToken);
      // `other` never approved this token: its transferFrom returns false instead of reverting.
      const { invoice, signature, key } = await signedInvoice(f, { token });

      await expect(f.escrow.connect(f.other).pay(invoice, signature))
        .to.be.revertedWithCustomError(f.escrow, "SafeERC20FailedOperation")
        .withArgs(token);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
    });

    describe("a reentrant token", () => {
      /** A reentrant-token payment whose hold has ended: a real target for a re-entered release or refund. */
      async function releasableReentrantPayment(f: EscrowFixture) {
        const paid = await f.payInvoice({ token: await addressOf(f.reentrantToken) });
        await time.increaseTo(await releaseAtOf(f.escrow, paid.key));
        return paid;
      }

      type ReentryTarget = Awaited<ReturnType<typeof releasableReentrantPayment>>;
      /** Calldata a hostile token sends back into the escrow: one per function behind the reentrancy guard. */
      const reentryPayloads: Record<string, (f: EscrowFixture, target: ReentryTarget) => string> = {
        // The three SPEC 9 names: a second release, a refund and a claim from inside the token transfer.
        release: (f, { invoice }) => f.escrow.interface.encodeFunctionData("release", [invoice]),
        refund: (f, { invoice }) => f.escrow.interface.encodeFunctionData("refund", [invoice, invoice.amount]),
        claim: (f, { invoice }) => f.escrow.interface.encodeFunctionData("claim", [invoice.token, f.other.address]),
        // The other guarded functions, so every guard is shown to hold.
        pay: (f, { invoice, signature }) => f.escrow.interface.encodeFunctionData("pay", [invoice, signature]),
        payWithPermit: (f, { invoice, signature }) =>
          f.escrow.interface.encodeFunctionData("payWithPermit", [
            invoice,
            signature,
            0,
            0,
            ethers.ZeroHash,
            ethers.ZeroHash,
          ]),
        refundUnfulfilled: (f, { invoice }) => f.escrow.interface.encodeFunctionData("refundUnfulfilled", [invoice]),
        refundExpiredDispute: (f, { invoice }) =>
          f.escrow.interface.encodeFunctionData("refundExpiredDispute", [invoice]),
        resolveDispute: (f, { invoice }) => f.escrow.interface.encodeFunctionData("resolveDispute", [invoice, 0]),
        withdrawFees: (f, { invoice }) => f.escrow.interface.encodeFunctionData("withdrawFees", [invoice.token]),
      };

      for (const [entryPoint, payloadFor] of Object.entries(reentryPayloads)) {
        it(`SPEC9: a reentrant token calling escrow.${entryPoint} from transferFrom is stopped by the reentrancy guard`, async () => {
          const f = await loadFixture(escrowFixture);
          const target = await releasableReentrantPayment(f);
          await f.reentrantToken.arm(f.escrowAddress, payloadFor(f, target));

          const { invoice, signature, key } = await signedInvoice(f, { token: target.invoice.token });
          await expect(f.escrow.connect(f.payer).pay(invoice, signature)).to.emit(f.escrow, "InvoicePaid");

          expect(await f.reentrantToken.attackSucceeded()).to.equal(false);
          expect(await f.reentrantToken.attackRevertData()).to.equal(
            errorSelector(f.escrow, "ReentrancyGuardReentrantCall"),
          );
          expect((await f.escrow.payment(target.key)).status).to.equal(PaymentStatus.Held);
          expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Held);
          await expectEscrowSolvent(f.escrow, [target.invoice, invoice]);
        });
      }

      it("SPEC9: a reentrant token re-entering during a release payout is stopped, and the release completes", async () => {
        const f = await loadFixture(escrowFixture);
        const target = await releasableReentrantPayment(f);
        const { invoice, key } = await f.payInvoice({ token: target.invoice.token });
        await f.reentrantToken.arm(f.escrowAddress, reentryPayloads.release(f, target));

        await expect(f.escrow.connect(f.payer).release(invoice)).to.changeTokenBalance(
          f.reentrantToken,
          f.payout,
          invoice.amount - feeOf(invoice.amount, FEE_BPS),
        );

        expect(await f.reentrantToken.attackSucceeded()).to.equal(false);
        expect(await f.reentrantToken.attackRevertData()).to.equal(
          errorSelector(f.escrow, "ReentrancyGuardReentrantCall"),
        );
        expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Released);
        expect((await f.escrow.payment(target.key)).status).to.equal(PaymentStatus.Held);
        await expectEscrowSolvent(f.escrow, [target.invoice, invoice]);
      });
    });
  });

  describe("receivers that refuse or re-enter", () => {
    it("SPEC9: a payout contract re-entering on ETH receipt: release succeeds and the amount becomes claimable", async () => {
      const f = await loadFixture(escrowFixture);
      const receiver = await addressOf(f.reentrantReceiver);
      await f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, receiver);
      const { invoice: unarmedRelease } = await f.payInvoice({ token: zeroAddress, amount: ETH_AMOUNT });
      const { invoice, key } = await f.payInvoice({ token: zeroAddress, amount: ETH_AMOUNT });
      const owed = ETH_AMOUNT - feeOf(ETH_AMOUNT, FEE_BPS);
      // Unarmed, the contract takes ETH payouts directly: the deferral below comes from the refused re-entry.
      await expect(f.escrow.connect(f.payer).release(unarmedRelease)).to.changeEtherBalance(receiver, owed);
      await f.reentrantReceiver.arm(f.escrowAddress, f.escrow.interface.encodeFunctionData("release", [invoice]));

      const release = f.escrow.connect(f.payer).release(invoice);

      await expect(release).to.emit(f.escrow, "PayoutDeferred").withArgs(receiver, zeroAddress, owed);
      await expect(release).to.changeEtherBalances([f.escrow, receiver], [0, 0]);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Released);
      expect(await f.escrow.claimable(receiver, zeroAddress)).to.equal(owed);
      expect(await f.reentrantReceiver.attackSucceeded()).to.equal(false);
      await expectEscrowSolvent(f.escrow, [unarmedRelease, invoice]);

      const claim = f.reentrantReceiver.execute(
        f.escrowAddress,
        f.escrow.interface.encodeFunctionData("claim", [zeroAddress, f.other.address]),
      );
      await expect(claim).to.emit(f.escrow, "Claimed").withArgs(receiver, zeroAddress, f.other.address, owed);
      await expect(claim).to.changeEtherBalances([f.escrow, f.other], [-owed, owed]);
      expect(await f.escrow.claimable(receiver, zeroAddress)).to.equal(0);
      await expectEscrowSolvent(f.escrow, [unarmedRelease, invoice]);
    });

    it("SPEC9: contracts refusing ETH: release and refund are credited, a claim to themselves fails, elsewhere works", async () => {
      const f = await loadFixture(escrowFixture);
      const payoutContract = await addressOf(f.revertingReceiver);
      const payerContract = await ethers.deployContract("RevertingReceiver");
      await f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, payoutContract);
      const { invoice: released } = await f.payInvoice({ token: zeroAddress, amount: ETH_AMOUNT });
      const { invoice: refunded, signature } = await signedInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });
      await payerContract.execute(
        f.escrowAddress,
        f.escrow.interface.encodeFunctionData("pay", [refunded, signature]),
        {
          value: ETH_AMOUNT,
        },
      );
      const owedToMerchant = ETH_AMOUNT - feeOf(ETH_AMOUNT, FEE_BPS);

      await expect(f.escrow.connect(f.payer).release(released))
        .to.emit(f.escrow, "PayoutDeferred")
        .withArgs(payoutContract, zeroAddress, owedToMerchant);
      await expect(f.escrow.connect(f.merchantOwner).refund(refunded, ETH_AMOUNT))
        .to.emit(f.escrow, "PayoutDeferred")
        .withArgs(await addressOf(payerContract), zeroAddress, ETH_AMOUNT);
      expect(await f.escrow.claimable(payoutContract, zeroAddress)).to.equal(owedToMerchant);
      expect(await f.escrow.claimable(await addressOf(payerContract), zeroAddress)).to.equal(ETH_AMOUNT);
      await expectEscrowSolvent(f.escrow, [released, refunded]);

      const claimToSelf = f.escrow.interface.encodeFunctionData("claim", [zeroAddress, payoutContract]);
      await expect(f.revertingReceiver.execute(f.escrowAddress, claimToSelf))
        .to.be.revertedWithCustomError(f.escrow, "NativeTransferFailed")
        .withArgs(payoutContract, owedToMerchant);
      expect(await f.escrow.claimable(payoutContract, zeroAddress)).to.equal(owedToMerchant);

      const claimElsewhere = (to: string) => f.escrow.interface.encodeFunctionData("claim", [zeroAddress, to]);
      await expect(
        f.revertingReceiver.execute(f.escrowAddress, claimElsewhere(f.newOwner.address)),
      ).to.changeEtherBalance(f.newOwner, owedToMerchant);
      await expect(payerContract.execute(f.escrowAddress, claimElsewhere(f.other.address))).to.changeEtherBalance(
        f.other,
        ETH_AMOUNT,
      );
      await expectEscrowSolvent(f.escrow, [released, refunded]);
    });

    it("SPEC9: blocklisted USDC-like holders: release and refund are credited, then claimed to another address", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.blocklistToken);
      const { invoice: released } = await f.payInvoice({ token });
      const { invoice: refunded } = await f.payInvoice({ token });
      await f.blocklistToken.setBlocklisted(f.payout.address, true);
      await f.blocklistToken.setBlocklisted(f.payer.address, true);
      const owedToMerchant = released.amount - feeOf(released.amount, FEE_BPS);

      await expect(f.escrow.connect(f.payer).release(released))
        .to.emit(f.escrow, "PayoutDeferred")
        .withArgs(f.payout.address, token, owedToMerchant);
      expect(await f.escrow.heldAmount(released)).to.equal(0);
      await expect(f.escrow.connect(f.merchantOwner).refund(refunded, refunded.amount))
        .to.emit(f.escrow, "PayoutDeferred")
        .withArgs(f.payer.address, token, refunded.amount);
      await expectEscrowSolvent(f.escrow, [released, refunded]);

      await expect(f.escrow.connect(f.payout).claim(token, f.payout.address))
        .to.be.revertedWithCustomError(f.blocklistToken, "Blocklisted")
        .withArgs(f.payout.address);
      await expect(f.escrow.connect(f.payout).claim(token, f.newOwner.address))
        .to.emit(f.escrow, "Claimed")
        .withArgs(f.payout.address, token, f.newOwner.address, owedToMerchant);
      await expect(f.escrow.connect(f.payer).claim(token, f.other.address)).to.changeTokenBalances(
        f.blocklistToken,
        [f.escrow, f.other],
        [-refunded.amount, refunded.amount],
      );
      await expectEscrowSolvent(f.escrow, [released, refunded]);
    });
  });

  describe("zero amounts and zero addresses", () => {
    it("SPEC9: an invoice for 0 is refused (ZeroAmount)", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature } = await signedInvoice(f, { amount: 0n });

      await expect(f.escrow.connect(f.payer).pay(invoice, signature)).to.be.revertedWithCustomError(
        f.escrow,
        "ZeroAmount",
      );
    });

    it("SPEC9: a refund of 0 is refused (ZeroAmount)", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice } = await f.payInvoice();

      await expect(f.escrow.connect(f.merchantOwner).refund(invoice, 0)).to.be.revertedWithCustomError(
        f.escrow,
        "ZeroAmount",
      );
    });

    it("SPEC9: a merchant with a zero payout or zero signer is refused (ZeroAddress)", async () => {
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

    it("SPEC9: a claim to the zero address is refused (ZeroAddress), and so is a claim of nothing", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.blocklistToken);
      await f.blocklistToken.setBlocklisted(f.payout.address, true);
      const { invoice } = await f.payInvoice({ token });
      await f.escrow.connect(f.payer).release(invoice);
      const owed = await f.escrow.claimable(f.payout.address, token);

      await expect(f.escrow.connect(f.payout).claim(token, zeroAddress)).to.be.revertedWithCustomError(
        f.escrow,
        "ZeroAddress",
      );
      expect(await f.escrow.claimable(f.payout.address, token)).to.equal(owed);
      await expect(f.escrow.connect(f.other).claim(token, f.other.address))
        .to.be.revertedWithCustomError(f.escrow, "NothingToClaim")
        .withArgs(f.other.address, token);
    });
  });

  describe("timestamp boundaries", () => {
    it("SPEC9: a keeper's release is refused at releaseAt - 1 (HoldNotEnded) and works at releaseAt", async () => {
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

    it("SPEC9: a dispute works at releaseAt - 1 and is refused at releaseAt (HoldEnded)", async () => {
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

    it("SPEC9: refundUnfulfilled is refused at fulfillBy (FulfillmentDeadlineNotPassed) and works at fulfillBy + 1", async () => {
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

    it("SPEC9: markFulfilled works at fulfillBy and is refused at fulfillBy + 1 (FulfillmentDeadlinePassed)", async () => {
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

    it("SPEC9: the arbiter resolves at deadline - 1 but no longer at the deadline (DisputeDeadlinePassed)", async () => {
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

    it("SPEC9: refundExpiredDispute is refused at deadline - 1 (DisputeDeadlineNotPassed) and works at the deadline", async () => {
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

  describe("overflowing durations", () => {
    it("SPEC9: a hold above MAX_HOLD_DURATION is refused (HoldTooLong), up to max uint32", async () => {
      const f = await loadFixture(escrowFixture);

      for (const holdDuration of [MAX_HOLD_DURATION + 1, MAX_UINT32]) {
        const { invoice, signature } = await signedInvoice(f, { holdDuration });
        await expect(f.escrow.connect(f.payer).pay(invoice, signature))
          .to.be.revertedWithCustomError(f.escrow, "HoldTooLong")
          .withArgs(holdDuration, MAX_HOLD_DURATION);
      }
    });

    it("SPEC9: a hold of exactly MAX_HOLD_DURATION is accepted and its dispute deadline computed without overflow", async () => {
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

    it("SPEC9: max uint64 expiresAt and fulfillBy are accepted and never open an early refund", async () => {
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

  describe("refund limits and rounding", () => {
    it("SPEC9: a refund larger than what was paid is refused (RefundExceedsHeld)", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice } = await f.payInvoice();

      await expect(f.escrow.connect(f.merchantOwner).refund(invoice, invoice.amount + 1n))
        .to.be.revertedWithCustomError(f.escrow, "RefundExceedsHeld")
        .withArgs(invoice.amount + 1n, invoice.amount);
    });

    it("SPEC9: partial refunds add up to exactly the amount paid; one unit more is refused", async () => {
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

    it("SPEC9: an arbiter's split of odd units pays out exactly what was held (the fee rounds down)", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice } = await f.payInvoice({ amount: 1_001n, arbiter: f.arbiter.address as Address });
      await f.escrow.connect(f.payer).dispute(invoice);
      const refunded = 333n;
      const fee = feeOf(1_001n - refunded, FEE_BPS); // 6.68 -> 6

      await expect(f.escrow.connect(f.arbiter).resolveDispute(invoice, refunded)).to.changeTokenBalances(
        f.usdc,
        [f.escrow, f.payer, f.payout],
        [-(1_001n - fee), refunded, 1_001n - refunded - fee],
      );
      expect(fee).to.equal(6n);
      expect(await f.escrow.accruedFees(invoice.token)).to.equal(fee);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });
  });

  it("SPEC9: release during a dispute is refused to everyone, the payer included (PaymentDisputed)", async () => {
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
