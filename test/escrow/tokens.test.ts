/**
 * Money movements with real-world token behaviour: deferred payouts and claim, fee-on-transfer, no-return and
 * returns-false tokens, a reentrant token against every guarded function, receivers that refuse or re-enter, a
 * fee switched on after payment, fee withdrawal to a blocklisted recipient, and the solvency invariant across a
 * mixed lifecycle in several tokens and ETH.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress, type Address } from "viem";
import type { Invoice } from "../../contracts/invoice";
import { FEE_BPS, USDC } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  PaymentStatus,
  addressOf,
  errorSelector,
  escrowFixture,
  expectEscrowSolvent,
  feeOf,
  releaseAtOf,
  signedInvoice,
  testAccount,
  type EscrowFixture,
} from "./helpers";

/** Blocklists the merchant's payout address, so every release to it is deferred. */
async function blockPayout(f: EscrowFixture) {
  await f.blocklistToken.setBlocklisted(f.payout.address, true);
  return addressOf(f.blocklistToken);
}

describe("TokenFlows.claim", () => {
  it("sends the whole claimable balance to the chosen address and returns it", async () => {
    const f = await loadFixture(escrowFixture);
    const token = await blockPayout(f);
    const { invoice } = await f.payInvoice({ token });
    await f.escrow.connect(f.payer).release(invoice);
    const owed = invoice.amount - feeOf(invoice.amount, FEE_BPS);
    expect(await f.escrow.connect(f.payout).claim.staticCall(token, f.newOwner.address)).to.equal(owed);

    const claim = f.escrow.connect(f.payout).claim(token, f.newOwner.address);

    await expect(claim).to.emit(f.escrow, "Claimed").withArgs(f.payout.address, token, f.newOwner.address, owed);
    await expect(claim).to.changeTokenBalances(f.blocklistToken, [f.escrow, f.newOwner], [-owed, owed]);
    expect(await f.escrow.claimable(f.payout.address, token)).to.equal(0);
    await expect(f.escrow.connect(f.payout).claim(token, f.newOwner.address))
      .to.be.revertedWithCustomError(f.escrow, "NothingToClaim")
      .withArgs(f.payout.address, token);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("adds up deferred payouts per account and per token, and only the credited account can claim", async () => {
    const f = await loadFixture(escrowFixture);
    const token = await blockPayout(f);
    const { invoice: first } = await f.payInvoice({ token, amount: USDC(100) });
    const { invoice: second } = await f.payInvoice({ token, amount: USDC(50) });
    await f.escrow.connect(f.payer).release(first);
    await f.escrow.connect(f.payer).release(second);

    const owed = USDC(150) - feeOf(USDC(100), FEE_BPS) - feeOf(USDC(50), FEE_BPS);
    expect(await f.escrow.claimable(f.payout.address, token)).to.equal(owed);
    expect(await f.escrow.claimable(f.payout.address, await addressOf(f.usdc))).to.equal(0);
    await expect(f.escrow.connect(f.merchantOwner).claim(token, f.merchantOwner.address))
      .to.be.revertedWithCustomError(f.escrow, "NothingToClaim")
      .withArgs(f.merchantOwner.address, token);
    await expectEscrowSolvent(f.escrow, [first, second]);
  });

  it("credits an ETH receiver needing more than NATIVE_PAYOUT_GAS, which then claims to itself with full gas", async () => {
    const f = await loadFixture(escrowFixture);
    const receiver = await addressOf(f.reentrantReceiver);
    await f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, receiver);
    // Its receive() makes a call that succeeds but costs far more than 50,000 gas: a first mint to a fresh holder.
    const freshHolder = testAccount("gas-hungry receiver's first mint").address;
    await f.reentrantReceiver.arm(
      await addressOf(f.usdc),
      f.usdc.interface.encodeFunctionData("mint", [freshHolder, 1n]),
    );
    const { invoice } = await f.payInvoice({ token: zeroAddress, amount: ETH_AMOUNT });
    const owed = ETH_AMOUNT - feeOf(ETH_AMOUNT, FEE_BPS);

    await expect(f.escrow.connect(f.payer).release(invoice))
      .to.emit(f.escrow, "PayoutDeferred")
      .withArgs(receiver, zeroAddress, owed);

    const claimToSelf = f.escrow.interface.encodeFunctionData("claim", [zeroAddress, receiver]);
    await expect(f.reentrantReceiver.execute(f.escrowAddress, claimToSelf)).to.changeEtherBalances(
      [f.escrow, receiver],
      [-owed, owed],
    );
    expect(await f.usdc.balanceOf(freshHolder)).to.equal(1n);
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("keeps a deferred credit with the old payout address after the merchant moves its payout", async () => {
    const f = await loadFixture(escrowFixture);
    const token = await blockPayout(f);
    const { invoice: beforeMove } = await f.payInvoice({ token });
    await f.escrow.connect(f.payer).release(beforeMove);
    const owed = beforeMove.amount - feeOf(beforeMove.amount, FEE_BPS);

    await f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, f.newOwner.address);
    const { invoice: afterMove } = await f.payInvoice({ token });

    await expect(f.escrow.connect(f.payer).release(afterMove)).to.changeTokenBalance(
      f.blocklistToken,
      f.newOwner,
      afterMove.amount - feeOf(afterMove.amount, FEE_BPS),
    );
    expect(await f.escrow.claimable(f.payout.address, token)).to.equal(owed);
    expect(await f.escrow.claimable(f.newOwner.address, token)).to.equal(0);
    await expectEscrowSolvent(f.escrow, [beforeMove, afterMove]);
  });

  it("refuses a claim to the zero address (ZeroAddress) and a claim of nothing (NothingToClaim)", async () => {
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

describe("tokens whose behaviour changes after payment", () => {
  it("a transfer fee switched on after payment: release and refund still complete, the escrow stays solvent", async () => {
    const f = await loadFixture(escrowFixture);
    const token = await addressOf(f.feeOnTransferToken);
    const { invoice: toRelease } = await f.payInvoice({ token, amount: USDC(100) });
    const { invoice: toRefund } = await f.payInvoice({ token, amount: USDC(100) });
    await f.feeOnTransferToken.setFeeBps(100);
    const merchantPart = USDC(100) - feeOf(USDC(100), FEE_BPS);

    // The token burns 1% on the way out: the escrow pays the full amount, the receiver gets 99% of it.
    await expect(f.escrow.connect(f.payer).release(toRelease)).to.changeTokenBalances(
      f.feeOnTransferToken,
      [f.escrow, f.payout],
      [-merchantPart, merchantPart - feeOf(merchantPart, 100)],
    );
    await expect(f.escrow.connect(f.merchantOwner).refund(toRefund, USDC(100))).to.changeTokenBalances(
      f.feeOnTransferToken,
      [f.escrow, f.payer],
      [-USDC(100), USDC(99)],
    );
    await expectEscrowSolvent(f.escrow, [toRelease, toRefund]);
  });

  it("a returns-false token with an allowance pays and releases normally", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice } = await f.payInvoice({ token: await addressOf(f.returnsFalseToken) });

    await expect(f.escrow.connect(f.payer).release(invoice)).to.changeTokenBalance(
      f.returnsFalseToken,
      f.payout,
      invoice.amount - feeOf(invoice.amount, FEE_BPS),
    );
    await expectEscrowSolvent(f.escrow, [invoice]);
  });

  it("fees cannot be withdrawn to a blocklisted fee recipient (the token's error) until the owner moves it", async () => {
    const f = await loadFixture(escrowFixture);
    const token = await addressOf(f.blocklistToken);
    const { invoice } = await f.payInvoice({ token });
    await f.escrow.connect(f.payer).release(invoice);
    const fee = feeOf(invoice.amount, FEE_BPS);
    await f.blocklistToken.setBlocklisted(f.feeRecipient.address, true);

    await expect(f.escrow.withdrawFees(token))
      .to.be.revertedWithCustomError(f.blocklistToken, "Blocklisted")
      .withArgs(f.feeRecipient.address);
    expect(await f.escrow.accruedFees(token)).to.equal(fee);

    await f.escrow.connect(f.owner).setFeeRecipient(f.newOwner.address);
    await expect(f.escrow.withdrawFees(token)).to.changeTokenBalance(f.blocklistToken, f.newOwner, fee);
  });
});

describe("escrow solvency across a mixed lifecycle", () => {
  it("keeps balance == held + claimable + fees in every token after every step", async () => {
    const f = await loadFixture(escrowFixture);
    const usdc = await addressOf(f.usdc);
    const blocklisted = await addressOf(f.blocklistToken);
    const noReturn = await addressOf(f.noReturnToken);
    const invoices: Invoice[] = [];
    const pay = async (overrides: Partial<Invoice>) => {
      const paid = await f.payInvoice({ arbiter: f.arbiter.address as Address, ...overrides });
      invoices.push(paid.invoice);
      await expectEscrowSolvent(f.escrow, invoices);
      return paid;
    };
    const step = async (transaction: Promise<{ wait(): Promise<unknown> }>) => {
      await (await transaction).wait();
      await expectEscrowSolvent(f.escrow, invoices);
    };

    const released = await pay({ token: usdc, amount: 1_234_567n });
    const partlyRefunded = await pay({ token: usdc, amount: USDC(80) });
    const split = await pay({ token: noReturn, amount: 999n });
    const deferred = await pay({ token: blocklisted, amount: USDC(10) });
    const inEth = await pay({ token: zeroAddress, amount: ETH_AMOUNT });
    const expiredDispute = await pay({ token: zeroAddress, amount: ETH_AMOUNT / 3n });

    await step(f.escrow.connect(f.merchantOwner).refund(partlyRefunded.invoice, USDC(15)));
    await step(f.escrow.connect(f.payer).dispute(split.invoice));
    await step(f.escrow.connect(f.payer).dispute(expiredDispute.invoice));
    await step(f.escrow.connect(f.arbiter).resolveDispute(split.invoice, 3_333));
    await step(f.blocklistToken.setBlocklisted(f.payout.address, true));
    await step(f.escrow.connect(f.payer).release(deferred.invoice));
    await time.increaseTo(await releaseAtOf(f.escrow, inEth.key));
    await step(f.escrow.connect(f.keeper).release(released.invoice));
    await step(f.escrow.connect(f.keeper).release(partlyRefunded.invoice));
    await step(f.escrow.connect(f.keeper).release(inEth.invoice));
    await time.increase(14 * 86_400);
    await step(f.escrow.connect(f.keeper).refundExpiredDispute(expiredDispute.invoice));
    for (const token of [usdc, noReturn, zeroAddress]) await step(f.escrow.withdrawFees(token));
    await step(f.escrow.connect(f.payout).claim(blocklisted, f.newOwner.address));

    for (const { key } of [released, partlyRefunded, split, deferred, inEth]) {
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Released);
    }
    expect((await f.escrow.payment(expiredDispute.key)).status).to.equal(PaymentStatus.Refunded);
    // Everything is paid out: nothing is left behind in the escrow.
    expect(await f.usdc.balanceOf(f.escrowAddress)).to.equal(0);
    expect(await f.noReturnToken.balanceOf(f.escrowAddress)).to.equal(0);
    expect(await f.blocklistToken.balanceOf(f.escrowAddress)).to.equal(feeOf(USDC(10), FEE_BPS));
  });
});

describe("BillingEscrow with unusual tokens", () => {
  it("refuses a fee-on-transfer token (InexactTransfer): the payer keeps the money", async () => {
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

  it("pays, releases and refunds a token whose transfers return nothing (USDT-like)", async () => {
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

  it("refuses a returns-false token reporting a failed pull (SafeERC20FailedOperation)", async () => {
    const f = await loadFixture(escrowFixture);
    const token = await addressOf(f.returnsFalseToken);
    // `other` never approved this token: its transferFrom returns false instead of reverting.
    const { invoice, signature, key } = await signedInvoice(f, { token });

    await expect(f.escrow.connect(f.other).pay(invoice, signature))
      .to.be.revertedWithCustomError(f.escrow, "SafeERC20FailedOperation")
      .withArgs(token);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
  });
});

describe("BillingEscrow reentrancy guard against a reentrant token", () => {
  /** A reentrant-token payment whose hold has ended: a real target for a re-entered release or refund. */
  async function releasableReentrantPayment(f: EscrowFixture) {
    const paid = await f.payInvoice({ token: await addressOf(f.reentrantToken) });
    await time.increaseTo(await releaseAtOf(f.escrow, paid.key));
    return paid;
  }

  type ReentryTarget = Awaited<ReturnType<typeof releasableReentrantPayment>>;
  /** Calldata a hostile token sends back into the escrow: one per function behind the reentrancy guard. */
  const reentryPayloads: Record<string, (f: EscrowFixture, target: ReentryTarget) => string> = {
    // A second release, a refund and a claim from inside the token transfer.
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
    it(`stops a reentrant token calling escrow.${entryPoint} from transferFrom (ReentrancyGuardReentrantCall)`, async () => {
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

  it("stops a reentrant token re-entering during a release payout, and the release completes", async () => {
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

describe("payouts to receivers that refuse or re-enter", () => {
  it("credits a payout contract that re-enters on ETH receipt: the release succeeds and the amount becomes claimable", async () => {
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

  it("credits contracts refusing ETH on release and refund; a claim to themselves fails, to another address works", async () => {
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

  it("credits blocklisted USDC-like holders on release and refund; they claim to another address", async () => {
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
