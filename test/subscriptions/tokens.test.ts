import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  DAY,
  Failure,
  GRACE,
  MONTH,
  PRICE,
  Status,
  TRIAL,
  approve,
  createPlan,
  expectSolvent,
  fundAndApprove,
  subsFixture,
  subscribe,
} from "./helpers";

const UNIT = 10_000n;

describe("SubscriptionManager: awkward tokens", () => {
  describe("fee-on-transfer", () => {
    it("refuses a fee-on-transfer token at subscribe (InexactTransfer), creating nothing", async () => {
      const f = await loadFixture(subsFixture);
      const fot = await f.fot.getAddress();
      await f.fot.setFeeBps(100);
      const planId = await createPlan(f, { token: fot, price: UNIT });
      await fundAndApprove(f.fot, f.alice, f.sm, 10n * UNIT);
      await expect(f.subscriptions.connect(f.alice).subscribe(planId, UNIT))
        .to.be.revertedWithCustomError(f.subscriptions, "InexactTransfer")
        .withArgs(UNIT, UNIT - UNIT / 100n);
      expect(await f.subscriptions.subscriptionCount()).to.equal(0n);
      expect(await f.fot.balanceOf(f.sm)).to.equal(0n);
      expect(await f.fot.balanceOf(f.alice.address)).to.equal(10n * UNIT);
    });

    it("fails a renewal as InexactTransfer when the fee is switched on later: the delivered amount becomes claimable, the batch goes on", async () => {
      const f = await loadFixture(subsFixture);
      const fot = await f.fot.getAddress();
      const planId = await createPlan(f, { token: fot, price: UNIT });
      await fundAndApprove(f.fot, f.alice, f.sm, 10n * UNIT);
      const a = await subscribe(f, f.alice, planId);
      const usdcSub = await subscribe(f, f.payer, f.plans.monthly);
      // A trial on the same token subscribes fine with the fee on: nothing is pulled until it ends.
      await f.fot.setFeeBps(100);
      const trialPlan = await createPlan(f, { token: fot, price: UNIT, trial: TRIAL });
      await fundAndApprove(f.fot, f.bob, f.sm, 10n * UNIT);
      const b = await subscribe(f, f.bob, trialPlan);
      expect((await f.subscriptions.subscription(b.id)).status).to.equal(Status.Trialing);

      const due = a.start + MONTH;
      const delivered = UNIT - UNIT / 100n;
      await time.setNextBlockTimestamp(usdcSub.start + MONTH);
      const tx = f.subscriptions.renew([a.id, usdcSub.id, b.id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(a.id, f.merchantId, Failure.InexactTransfer, due + GRACE);
      // Bob's trial ended more than a grace period ago: his failed first charge lapses at once, and what the
      // token delivered is still credited back to him.
      await expect(tx).to.emit(f.subscriptions, "SubscriptionLapsed").withArgs(b.id, f.merchantId);
      await expect(tx).to.emit(f.subscriptions, "PayoutDeferred").withArgs(f.alice.address, fot, delivered);
      await expect(tx).to.emit(f.subscriptions, "PayoutDeferred").withArgs(f.bob.address, fot, delivered);
      await expect(tx).to.emit(f.subscriptions, "SubscriptionCharged").withArgs(
        usdcSub.id,
        f.merchantId,
        f.payer.address,
        f.usdcAddress,
        PRICE,
        usdcSub.start + MONTH,
        usdcSub.start + 2 * MONTH,
      );
      await expect(tx).to.changeTokenBalances(f.fot, [f.alice, f.bob, f.subscriptions], [-UNIT, -UNIT, 2n * delivered]);

      const sub = await f.subscriptions.subscription(a.id);
      expect(sub.status).to.equal(Status.PastDue);
      expect((await f.subscriptions.subscription(b.id)).status).to.equal(Status.Lapsed);
      expect(await f.subscriptions.claimable(f.bob.address, fot)).to.equal(delivered);
      expect(sub.unearned).to.equal(0n);
      expect(await f.subscriptions.claimable(f.alice.address, fot)).to.equal(delivered);
      expect(await f.subscriptions.merchantBalance(f.merchantId, fot)).to.equal(UNIT); // alice's first period
      await expectSolvent(f, [fot, f.usdcAddress]);

      // Alice claims what was delivered (the token takes its fee again on the way out).
      const claim = f.subscriptions.connect(f.alice).claim(fot, f.alice.address);
      await expect(claim).to.emit(f.subscriptions, "Claimed").withArgs(f.alice.address, fot, f.alice.address, delivered);
      await expect(claim).to.changeTokenBalances(f.fot, [f.alice, f.subscriptions], [delivered - delivered / 100n, -delivered]);
      expect(await f.subscriptions.claimable(f.alice.address, fot)).to.equal(0n);
      await expectSolvent(f, [fot]);

      // Fee switched off again inside grace: the retry succeeds, and (past due) the new period starts at it.
      await f.fot.setFeeBps(0);
      await time.setNextBlockTimestamp(due + DAY);
      await expect(f.subscriptions.renew([a.id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(a.id, f.merchantId, f.alice.address, fot, UNIT, due + DAY, due + DAY + MONTH);
      await expectSolvent(f, [fot, f.usdcAddress]);
    });
  });

  it("works with a no-return token (USDT-like): subscribe, renew, cancel refund, withdraw, and a failed renewal does not revert", async () => {
    const f = await loadFixture(subsFixture);
    const token = await f.noReturn.getAddress();
    const planId = await createPlan(f, { token, price: UNIT });
    await fundAndApprove(f.noReturn, f.alice, f.sm, 10n * UNIT);
    await fundAndApprove(f.noReturn, f.bob, f.sm, 10n * UNIT);
    const a = await subscribe(f, f.alice, planId);
    const b = await subscribe(f, f.bob, planId);
    expect(await f.noReturn.balanceOf(f.sm)).to.equal(2n * UNIT);

    await approve(token, f.bob, f.sm, 0n); // bob's next charge reverts inside the token ("allowance")
    await time.setNextBlockTimestamp(b.start + MONTH);
    const tx = f.subscriptions.renew([a.id, b.id]);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionCharged")
      .withArgs(a.id, f.merchantId, f.alice.address, token, UNIT, a.start + MONTH, a.start + 2 * MONTH);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
      .withArgs(b.id, f.merchantId, Failure.TransferFailed, b.start + MONTH + GRACE);
    expect(await f.noReturn.balanceOf(f.alice.address)).to.equal(8n * UNIT);
    expect(await f.noReturn.balanceOf(f.bob.address)).to.equal(9n * UNIT);

    await time.setNextBlockTimestamp(a.start + MONTH + MONTH / 2);
    await expect(f.subscriptions.connect(f.alice).cancel(a.id))
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(a.id, f.merchantId, f.alice.address, token, UNIT / 2n, UNIT / 2n, f.alice.address);
    expect(await f.noReturn.balanceOf(f.alice.address)).to.equal(8n * UNIT + UNIT / 2n);

    await expect(f.subscriptions.withdraw(f.merchantId, token, []))
      .to.emit(f.subscriptions, "MerchantWithdrawal")
      .withArgs(f.merchantId, token, f.payout.address, 2n * UNIT + UNIT / 2n);
    expect(await f.noReturn.balanceOf(f.payout.address)).to.equal(2n * UNIT + UNIT / 2n);
    expect(await f.noReturn.balanceOf(f.sm)).to.equal(0n);
    await expectSolvent(f, [token]);
  });

  it("refuses a returns-false token at subscribe, but a renewal that gets `false` fails without reverting the batch", async () => {
    const f = await loadFixture(subsFixture);
    const token = await f.returnsFalse.getAddress();
    const planId = await createPlan(f, { token, price: UNIT });
    await f.returnsFalse.mint(f.carol.address, UNIT);
    await expect(f.subscriptions.connect(f.carol).subscribe(planId, UNIT))
      .to.be.revertedWithCustomError(f.subscriptions, "SafeERC20FailedOperation")
      .withArgs(token);

    await fundAndApprove(f.returnsFalse, f.alice, f.sm, 10n * UNIT);
    await fundAndApprove(f.returnsFalse, f.bob, f.sm, UNIT);
    const a = await subscribe(f, f.alice, planId);
    const b = await subscribe(f, f.bob, planId); // bob's balance is now zero
    await approve(token, f.alice, f.sm, 0n); // alice's allowance is now zero
    const c = await subscribe(f, f.payer, f.plans.monthly);

    await time.setNextBlockTimestamp(c.start + MONTH);
    const tx = f.subscriptions.renew([a.id, b.id, c.id]);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
      .withArgs(a.id, f.merchantId, Failure.TransferFailed, a.start + MONTH + GRACE);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
      .withArgs(b.id, f.merchantId, Failure.TransferFailed, b.start + MONTH + GRACE);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionCharged")
      .withArgs(c.id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, c.start + MONTH, c.start + 2 * MONTH);
    expect(await f.returnsFalse.balanceOf(f.sm)).to.equal(2n * UNIT);
    expect(await f.returnsFalse.balanceOf(f.alice.address)).to.equal(9n * UNIT);
    expect((await f.subscriptions.subscription(a.id)).status).to.equal(Status.PastDue);
    expect((await f.subscriptions.subscription(b.id)).status).to.equal(Status.PastDue);

    // Withdrawals still pay out in this token.
    await expect(f.subscriptions.withdraw(f.merchantId, token, []))
      .to.emit(f.subscriptions, "MerchantWithdrawal")
      .withArgs(f.merchantId, token, f.payout.address, 2n * UNIT);
    expect(await f.returnsFalse.balanceOf(f.payout.address)).to.equal(2n * UNIT);
    await expectSolvent(f, [token, f.usdcAddress]);
  });

  it("fails the renewal of a blocklisted subscriber (USDC-like) without reverting the batch; the cancel refund goes to claimable", async () => {
    const f = await loadFixture(subsFixture);
    const busd = await f.blocklist.getAddress();
    const planId = await createPlan(f, { token: busd });
    await fundAndApprove(f.blocklist, f.alice, f.sm, 10n * PRICE);
    await fundAndApprove(f.blocklist, f.bob, f.sm, 10n * PRICE);
    const early = await subscribe(f, f.alice, planId); // due first
    const bobs = await subscribe(f, f.bob, planId);
    await time.setNextBlockTimestamp(early.start + MONTH / 2);
    const later = await subscribe(f, f.alice, planId); // mid-period when alice gets blocklisted

    await f.blocklist.setBlocklisted(f.alice.address, true);
    await time.setNextBlockTimestamp(bobs.start + MONTH);
    const tx = f.subscriptions.renew([early.id, bobs.id]);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
      .withArgs(early.id, f.merchantId, Failure.TransferFailed, early.start + MONTH + GRACE);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionCharged")
      .withArgs(bobs.id, f.merchantId, f.bob.address, busd, PRICE, bobs.start + MONTH, bobs.start + 2 * MONTH);
    await expect(tx).to.changeTokenBalances(f.blocklist, [f.alice, f.bob, f.subscriptions], [0, -PRICE, PRICE]);

    // Cancelling the running one: the refund cannot be sent, so it is credited.
    const cancelAt = later.start + (2 * MONTH) / 3;
    await time.setNextBlockTimestamp(cancelAt);
    const earned = (PRICE * 2n) / 3n;
    const refund = PRICE - earned;
    const cancel = f.subscriptions.connect(f.alice).cancel(later.id);
    await expect(cancel).to.emit(f.subscriptions, "PayoutDeferred").withArgs(f.alice.address, busd, refund);
    await expect(cancel)
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(later.id, f.merchantId, f.alice.address, busd, refund, earned, f.alice.address);
    await expect(cancel).to.changeTokenBalances(f.blocklist, [f.alice, f.subscriptions], [0, 0]);
    expect(await f.subscriptions.claimable(f.alice.address, busd)).to.equal(refund);
    await expectSolvent(f, [busd]);

    // Claiming to herself fails while blocklisted and keeps the balance; claiming elsewhere works.
    await expect(f.subscriptions.connect(f.alice).claim(busd, f.alice.address))
      .to.be.revertedWithCustomError(f.blocklist, "Blocklisted")
      .withArgs(f.alice.address);
    expect(await f.subscriptions.claimable(f.alice.address, busd)).to.equal(refund);
    await expect(f.subscriptions.connect(f.alice).claim(busd, f.carol.address))
      .to.emit(f.subscriptions, "Claimed")
      .withArgs(f.alice.address, busd, f.carol.address, refund);
    expect(await f.blocklist.balanceOf(f.carol.address)).to.equal(refund);
    await expectSolvent(f, [busd]);
  });

  it("stops a reentrant token re-entering cancel, renew or withdraw (attackSucceeded stays false)", async () => {
    const f = await loadFixture(subsFixture);
    const token = await f.reentrant.getAddress();
    const guardError = f.subscriptions.interface.getError("ReentrancyGuardReentrantCall")!.selector;
    // The token becomes the owner of merchant 3 (a merchant operator), so a re-entered cancel would otherwise be
    // authorised. It accepts the ownership itself, through its re-entry hook on a plain transfer.
    await f.escrow.connect(f.merchant2Owner).registerMerchant(f.payout2.address, f.merchant2Owner.address, 0, "0x");
    const merchant3 = 3n;
    await f.escrow.connect(f.merchant2Owner).transferMerchantOwnership(merchant3, token);
    await f.reentrant.arm(await f.escrow.getAddress(), f.escrow.interface.encodeFunctionData("acceptMerchantOwnership", [merchant3]));
    await f.reentrant.connect(f.alice).transfer(f.alice.address, 0);
    await f.reentrant.arm(ethers.ZeroAddress, "0x");
    expect((await f.escrow.merchant(merchant3)).owner).to.equal(token);
    const planId = await createPlan(f, { token, price: UNIT, merchantId: merchant3, by: f.merchant2Owner });
    await fundAndApprove(f.reentrant, f.alice, f.sm, 100n * UNIT);
    const first = await subscribe(f, f.alice, planId);
    const sm = f.subscriptions.interface;

    /** Arms the token with `payload`, runs `action`, and proves the re-entry was attempted during it and refused. */
    const attack = async (payload: string, action: () => Promise<unknown>) => {
      // Reset the record: an unknown selector makes the manager revert with empty data.
      await f.reentrant.arm(f.sm, "0xdeadbeef");
      await f.reentrant.connect(f.alice).transfer(f.alice.address, 0);
      expect(await f.reentrant.attackRevertData()).to.equal("0x");
      await f.reentrant.arm(f.sm, payload);
      await action();
      await f.reentrant.arm(ethers.ZeroAddress, "0x");
      expect(await f.reentrant.attackSucceeded(), payload.slice(0, 10)).to.equal(false);
      expect(await f.reentrant.attackRevertData(), payload.slice(0, 10)).to.equal(guardError);
    };

    // 1. During the pull of a new subscription, try to cancel the first one.
    await attack(sm.encodeFunctionData("cancel", [first.id]), async () => {
      await expect(f.subscriptions.connect(f.alice).subscribe(planId, UNIT)).to.emit(f.subscriptions, "SubscriptionCharged");
    });
    expect((await f.subscriptions.subscription(first.id)).status).to.equal(Status.Active);
    const second = BigInt(await f.subscriptions.subscriptionCount());

    // 2. During a renewal's pull, try to withdraw (would pay out earnings mid-renewal).
    await time.setNextBlockTimestamp(first.start + MONTH);
    await attack(sm.encodeFunctionData("withdraw", [merchant3, token, [first.id, second]]), async () => {
      await expect(f.subscriptions.renew([first.id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(first.id, merchant3, f.alice.address, token, UNIT, first.start + MONTH, first.start + 2 * MONTH);
    });
    expect(await f.reentrant.balanceOf(f.payout2.address)).to.equal(0n);
    expect(await f.subscriptions.merchantBalance(merchant3, token)).to.equal(UNIT);

    // 3. During a cancel's refund, try to renew the other (due) subscription.
    await time.setNextBlockTimestamp(first.start + MONTH + MONTH / 2);
    await attack(sm.encodeFunctionData("renew", [[second]]), async () => {
      await expect(f.subscriptions.connect(f.alice).cancel(first.id))
        .to.emit(f.subscriptions, "SubscriptionCanceled")
        .withArgs(first.id, merchant3, f.alice.address, token, UNIT / 2n, UNIT / 2n, f.alice.address);
    });
    expect((await f.subscriptions.subscription(second)).unearned).to.equal(UNIT); // not renewed by the attack
    expect((await f.subscriptions.subscription(second)).periodEnd).to.be.lt(first.start + MONTH + MONTH / 2);

    // 4. During a renewal's pull, try to cancel it (the token is a merchant operator).
    await attack(sm.encodeFunctionData("cancel", [second]), async () => {
      await expect(f.subscriptions.renew([second])).to.emit(f.subscriptions, "SubscriptionCharged");
    });
    expect((await f.subscriptions.subscription(second)).status).to.equal(Status.Active);

    // 5. During a withdrawal's payout, try to withdraw again (double payout).
    const owed = await f.subscriptions.merchantBalance(merchant3, token);
    await attack(sm.encodeFunctionData("withdraw", [merchant3, token, [second]]), async () => {
      await expect(f.subscriptions.withdraw(merchant3, token, [])).to.changeTokenBalances(f.reentrant, [f.payout2], [owed]);
    });
    expect(await f.subscriptions.merchantBalance(merchant3, token)).to.equal(0n);
    await expectSolvent(f, [token]);

    // Control: the token re-entering is what was refused; the same cancel sent directly by the merchant works.
    await expect(f.subscriptions.connect(f.merchant2Owner).cancel(second)).to.emit(f.subscriptions, "SubscriptionCanceled");
    await expectSolvent(f, [token]);
  });
  it("stops a reentrant token re-entering subscribe, subscribeWithPermit or changePlan", async () => {
    const f = await loadFixture(subsFixture);
    const token = await f.reentrant.getAddress();
    const guardError = f.subscriptions.interface.getError("ReentrancyGuardReentrantCall")!.selector;
    await f.escrow.connect(f.merchant2Owner).registerMerchant(f.payout2.address, f.merchant2Owner.address, 0, "0x");
    const merchant3 = 3n;
    const planId = await createPlan(f, { token, price: UNIT, merchantId: merchant3, by: f.merchant2Owner });
    const otherPlanId = await createPlan(f, { token, price: 2n * UNIT, merchantId: merchant3, by: f.merchant2Owner });
    await fundAndApprove(f.reentrant, f.alice, f.sm, 100n * UNIT);
    const first = await subscribe(f, f.alice, planId);
    const sm = f.subscriptions.interface;
    const payloads = [
      sm.encodeFunctionData("subscribe", [planId, UNIT]),
      sm.encodeFunctionData("subscribeWithPermit", [planId, UNIT, UNIT, 0, 27, ethers.ZeroHash, ethers.ZeroHash]),
      sm.encodeFunctionData("changePlan", [first.id, otherPlanId, 2n * UNIT]),
    ];
    for (const payload of payloads) {
      const before = await f.subscriptions.subscriptionCount();
      await f.reentrant.arm(f.sm, payload);
      // The re-entry is attempted during the pull of a new subscription's first period.
      await expect(f.subscriptions.connect(f.alice).subscribe(planId, UNIT)).to.emit(f.subscriptions, "SubscriptionCharged");
      await f.reentrant.arm(ethers.ZeroAddress, "0x");
      expect(await f.reentrant.attackSucceeded(), payload.slice(0, 10)).to.equal(false);
      expect(await f.reentrant.attackRevertData(), payload.slice(0, 10)).to.equal(guardError);
      expect(await f.subscriptions.subscriptionCount()).to.equal(before + 1n); // only the outer subscription
    }
    expect((await f.subscriptions.subscription(first.id)).planId).to.equal(planId);
    await expectSolvent(f, [token]);
  });
  it("a token that delivers nothing at renewal: the renewal fails as InexactTransfer with nothing to credit back", async () => {
    const f = await loadFixture(subsFixture);
    const fot = await f.fot.getAddress();
    const planId = await createPlan(f, { token: fot, price: UNIT });
    await fundAndApprove(f.fot, f.alice, f.sm, 10n * UNIT);
    const { id, start } = await subscribe(f, f.alice, planId);
    await f.fot.setFeeBps(10_000); // the whole transfer is taken as fee
    await time.setNextBlockTimestamp(start + MONTH);
    await expect(f.subscriptions.renew([id])).to.emit(f.subscriptions, "SubscriptionPaymentFailed");
    expect((await f.subscriptions.subscription(id)).status).to.equal(Status.PastDue);
    expect(await f.subscriptions.claimable(f.alice.address, fot)).to.equal(0n);
    await expectSolvent(f, [fot]);
  });
});
