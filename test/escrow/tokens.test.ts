/**
 * Money movements with real-world token behaviour beyond SPEC 9's cases: deferred payouts and claim, a fee
 * switched on after payment, fee withdrawal to a blocklisted recipient, and the solvency invariant across a
 * mixed lifecycle in several tokens and ETH.
 */
import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { zeroAddress, type Address } from "viem";
import type { Invoice } from "../../contracts/invoice";
import { FEE_BPS, USDC } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  PaymentStatus,
  addressOf,
  escrowFixture,
  expectEscrowSolvent,
  feeOf,
  releaseAtOf,
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
    await step(f.escrow.connect(f.arbiter).resolveDispute(split.invoice, 333n));
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
