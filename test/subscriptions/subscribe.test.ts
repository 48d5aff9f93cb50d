import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  DAY,
  GRACE,
  MONTH,
  PREMIUM,
  PRICE,
  Status,
  TRIAL,
  USDC,
  approve,
  createPlan,
  expectSolvent,
  signPermit,
  subsFixture,
  subscribe,
} from "./helpers";

describe("SubscriptionManager: subscribe", () => {
  describe("subscribe", () => {
    it("charges the first period now, emits SubscriptionCreated and SubscriptionCharged, and stores an Active subscription", async () => {
      const f = await loadFixture(subsFixture);
      const t = (await time.latest()) + 100;
      expect(await f.subscriptions.connect(f.payer).subscribe.staticCall(f.plans.monthly, USDC(15))).to.equal(1n);
      await time.setNextBlockTimestamp(t);
      const tx = f.subscriptions.connect(f.payer).subscribe(f.plans.monthly, USDC(15));
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCreated")
        .withArgs(1n, f.plans.monthly, f.merchantId, f.payer.address, USDC(15), 0);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(1n, f.merchantId, f.payer.address, f.usdcAddress, PRICE, t, t + MONTH);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-PRICE, PRICE]);

      const sub = await f.subscriptions.subscription(1);
      expect(sub.subscriber).to.equal(f.payer.address);
      expect(sub.planId).to.equal(f.plans.monthly);
      expect(sub.status).to.equal(Status.Active);
      expect(sub.collectedUntil).to.equal(t);
      expect(sub.unearned).to.equal(PRICE);
      expect(sub.maxPrice).to.equal(USDC(15));
      expect(sub.periodEnd).to.equal(t + MONTH);
      expect(await f.subscriptions.subscriptionCount()).to.equal(1n);
      expect(await f.subscriptions.isDue(1)).to.equal(false);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(0n);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("accepts maxPrice equal to the price and refuses one unit below it", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.payer).subscribe(f.plans.monthly, PRICE - 1n))
        .to.be.revertedWithCustomError(f.subscriptions, "PriceAboveMaximum")
        .withArgs(PRICE, PRICE - 1n);
      const { id } = await subscribe(f, f.payer, f.plans.monthly, PRICE);
      expect((await f.subscriptions.subscription(id)).maxPrice).to.equal(PRICE);
    });

    it("with a trial: Trialing until now + trial, nothing charged, no allowance or balance needed", async () => {
      const f = await loadFixture(subsFixture);
      const t = (await time.latest()) + 50;
      await time.setNextBlockTimestamp(t);
      // alice never approved the manager.
      const tx = f.subscriptions.connect(f.alice).subscribe(f.plans.trial, PRICE);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCreated")
        .withArgs(1n, f.plans.trial, f.merchantId, f.alice.address, PRICE, t + TRIAL);
      await expect(tx).not.to.emit(f.subscriptions, "SubscriptionCharged");
      await expect(tx).to.changeTokenBalances(f.usdc, [f.alice, f.subscriptions], [0, 0]);
      const sub = await f.subscriptions.subscription(1);
      expect(sub.status).to.equal(Status.Trialing);
      expect(sub.unearned).to.equal(0n);
      expect(sub.collectedUntil).to.equal(t);
      expect(sub.periodEnd).to.equal(t + TRIAL);
      expect(await f.subscriptions.earnedNow(1)).to.equal(0n);
    });

    it("gives a wallet each plan's trial once: subscribing to that plan again starts charged (TrialAlreadyUsed)", async () => {
      const f = await loadFixture(subsFixture);
      const first = await subscribe(f, f.payer, f.plans.trial);
      expect(await f.subscriptions.trialUsed(f.payer.address, f.plans.trial)).to.equal(true);
      await f.subscriptions.connect(f.payer).cancel(first.id);

      const again = f.subscriptions.connect(f.payer).subscribe(f.plans.trial, PRICE);
      await expect(again)
        .to.emit(f.subscriptions, "SubscriptionCreated")
        .withArgs(2n, f.plans.trial, f.merchantId, f.payer.address, PRICE, 0);
      await expect(again).to.emit(f.subscriptions, "TrialAlreadyUsed").withArgs(2n, f.plans.trial, f.payer.address);
      await expect(again).to.emit(f.subscriptions, "SubscriptionCharged");
      await expect(again).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-PRICE, PRICE]);
      const sub = await f.subscriptions.subscription(2);
      expect(sub.status).to.equal(Status.Active);
      expect(sub.unearned).to.equal(PRICE);
      expect(sub.periodEnd - sub.collectedUntil).to.equal(BigInt(MONTH));
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("tracks trials per wallet and plan: another wallet, or another plan's trial, is still free", async () => {
      const f = await loadFixture(subsFixture);
      const otherTrial = await createPlan(f, { trial: TRIAL });
      await subscribe(f, f.payer, f.plans.trial);

      for (const [who, planId] of [[f.other, f.plans.trial], [f.payer, otherTrial]] as const) {
        const tx = f.subscriptions.connect(who).subscribe(planId, PRICE);
        await expect(tx).not.to.emit(f.subscriptions, "TrialAlreadyUsed");
        await expect(tx).not.to.emit(f.subscriptions, "SubscriptionCharged");
        expect((await f.subscriptions.subscription(await f.subscriptions.subscriptionCount())).status).to.equal(Status.Trialing);
      }
      expect(await f.subscriptions.trialUsed(f.other.address, otherTrial)).to.equal(false);
    });

    it("closes the endless-trial loop: trial, change to a plan without trial, cancel, subscribe again, never for nothing", async () => {
      const f = await loadFixture(subsFixture);
      const before = await f.usdc.balanceOf(f.payer.address);
      // Round 1: the trial, then the premium plan (no trial: charged at once), then cancel.
      const { id, start } = await subscribe(f, f.payer, f.plans.trial);
      await time.setNextBlockTimestamp(start + DAY);
      await f.subscriptions.connect(f.payer).changePlan(id, f.plans.premium, PREMIUM);
      await time.setNextBlockTimestamp(start + 2 * DAY);
      await f.subscriptions.connect(f.payer).cancel(id);
      // Round 2: the trial plan again is charged from the start.
      const again = f.subscriptions.connect(f.payer).subscribe(f.plans.trial, PRICE);
      await expect(again).to.emit(f.subscriptions, "TrialAlreadyUsed");
      await expect(again).to.emit(f.subscriptions, "SubscriptionCharged");

      // The day on premium was paid for, and the new subscription is.
      const paid = before - (await f.usdc.balanceOf(f.payer.address));
      expect(paid).to.be.gte(PRICE + (PREMIUM * BigInt(DAY)) / BigInt(MONTH));
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.be.gte((PREMIUM * BigInt(DAY)) / BigInt(MONTH));
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("gives every subscription of the same wallet its own id", async () => {
      const f = await loadFixture(subsFixture);
      const a = await subscribe(f, f.payer, f.plans.monthly);
      const b = await subscribe(f, f.payer, f.plans.monthly);
      const c = await subscribe(f, f.payer, f.plans.premium);
      expect([a.id, b.id, c.id]).to.deep.equal([1n, 2n, 3n]);
      expect(await f.usdc.balanceOf(f.sm)).to.equal(2n * PRICE + USDC(25));
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("refuses unknown and inactive plans", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.payer).subscribe(5, PRICE))
        .to.be.revertedWithCustomError(f.subscriptions, "UnknownPlan")
        .withArgs(5);
      await f.subscriptions.connect(f.merchantOwner).setPlanActive(f.plans.monthly, false);
      await expect(f.subscriptions.connect(f.payer).subscribe(f.plans.monthly, PRICE))
        .to.be.revertedWithCustomError(f.subscriptions, "PlanInactive")
        .withArgs(f.plans.monthly);
      expect(await f.subscriptions.subscriptionCount()).to.equal(0n);
    });

    it("reverts with the token's error without allowance or balance, creating nothing", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.alice).subscribe(f.plans.monthly, PRICE))
        .to.be.revertedWithCustomError(f.usdc, "ERC20InsufficientAllowance")
        .withArgs(f.sm, 0, PRICE);
      await f.usdc.connect(f.alice).approve(f.sm, ethers.MaxUint256);
      await f.usdc.connect(f.alice).transfer(f.bob.address, await f.usdc.balanceOf(f.alice.address));
      await expect(f.subscriptions.connect(f.alice).subscribe(f.plans.monthly, PRICE))
        .to.be.revertedWithCustomError(f.usdc, "ERC20InsufficientBalance")
        .withArgs(f.alice.address, 0, PRICE);
      expect(await f.subscriptions.subscriptionCount()).to.equal(0n);
      expect(await f.usdc.balanceOf(f.sm)).to.equal(0n);
    });

    it("is refused while paused, and works again once resumed", async () => {
      const f = await loadFixture(subsFixture);
      await f.subscriptions.connect(f.owner).setPaused(true);
      await expect(f.subscriptions.connect(f.payer).subscribe(f.plans.monthly, PRICE)).to.be.revertedWithCustomError(
        f.subscriptions,
        "SubscriptionsPaused",
      );
      await f.subscriptions.connect(f.owner).setPaused(false);
      await expect(f.subscriptions.connect(f.payer).subscribe(f.plans.monthly, PRICE)).to.emit(
        f.subscriptions,
        "SubscriptionCreated",
      );
    });
  });

  describe("subscribeWithPermit", () => {
    it("subscribes with a real EIP-2612 permit worth several periods; renewals then spend the rest", async () => {
      const f = await loadFixture(subsFixture);
      // alice has USDC but never approved the manager.
      expect(await f.usdc.allowance(f.alice.address, f.sm)).to.equal(0n);
      const permitValue = PRICE * 3n;
      const deadline = BigInt((await time.latest()) + 3600);
      const sig = await signPermit(f.usdc, f.alice, f.sm, permitValue, deadline);
      const t = (await time.latest()) + 10;
      await time.setNextBlockTimestamp(t);
      const tx = f.subscriptions
        .connect(f.alice)
        .subscribeWithPermit(f.plans.monthly, PRICE, permitValue, deadline, sig.v, sig.r, sig.s);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(1n, f.merchantId, f.alice.address, f.usdcAddress, PRICE, t, t + MONTH);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.alice, f.subscriptions], [-PRICE, PRICE]);
      expect(await f.usdc.nonces(f.alice.address)).to.equal(1n);
      expect(await f.usdc.allowance(f.alice.address, f.sm)).to.equal(PRICE * 2n);

      // Two renewals consume the remaining allowance; the third fails for lack of it.
      for (let k = 1; k <= 2; k++) {
        await time.setNextBlockTimestamp(t + k * MONTH);
        await expect(f.subscriptions.connect(f.keeper).renew([1]))
          .to.emit(f.subscriptions, "SubscriptionCharged")
          .withArgs(1n, f.merchantId, f.alice.address, f.usdcAddress, PRICE, t + k * MONTH, t + (k + 1) * MONTH);
      }
      expect(await f.usdc.allowance(f.alice.address, f.sm)).to.equal(0n);
      await time.setNextBlockTimestamp(t + 3 * MONTH);
      await expect(f.subscriptions.connect(f.keeper).renew([1]))
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(1n, f.merchantId, 1 /* TransferFailed */, t + 3 * MONTH + GRACE);
      expect(await f.usdc.balanceOf(f.alice.address)).to.equal(USDC(1_000) - 3n * PRICE);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(3n * PRICE);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("still subscribes when the permit was front-run (allowance already set by someone else submitting it)", async () => {
      const f = await loadFixture(subsFixture);
      const deadline = BigInt((await time.latest()) + 3600);
      const sig = await signPermit(f.usdc, f.alice, f.sm, PRICE, deadline);
      await f.usdc.connect(f.keeper).permit(f.alice.address, f.sm, PRICE, deadline, sig.v, sig.r, sig.s);
      await expect(
        f.subscriptions.connect(f.alice).subscribeWithPermit(f.plans.monthly, PRICE, PRICE, deadline, sig.v, sig.r, sig.s),
      ).to.changeTokenBalances(f.usdc, [f.alice, f.subscriptions], [-PRICE, PRICE]);
      expect((await f.subscriptions.subscription(1)).status).to.equal(Status.Active);
    });

    it("ignores an invalid or expired permit: succeeds on an existing approval, else fails with the token's error", async () => {
      const f = await loadFixture(subsFixture);
      const past = BigInt(await time.latest()) - 1n;
      const expired = await signPermit(f.usdc, f.alice, f.sm, PRICE, past);
      await expect(
        f.subscriptions.connect(f.alice).subscribeWithPermit(f.plans.monthly, PRICE, PRICE, past, expired.v, expired.r, expired.s),
      )
        .to.be.revertedWithCustomError(f.usdc, "ERC20InsufficientAllowance")
        .withArgs(f.sm, 0, PRICE);
      // A permit signed by someone else for alice is worthless too.
      const deadline = BigInt((await time.latest()) + 3600);
      const forged = await signPermit(f.usdc, f.bob, f.sm, PRICE, deadline);
      await expect(
        f.subscriptions.connect(f.alice).subscribeWithPermit(f.plans.monthly, PRICE, PRICE, deadline, forged.v, forged.r, forged.s),
      ).to.be.revertedWithCustomError(f.usdc, "ERC20InsufficientAllowance");
      // payer has a standing approval, so a garbage permit does not matter.
      await expect(
        f.subscriptions
          .connect(f.payer)
          .subscribeWithPermit(f.plans.monthly, PRICE, PRICE, deadline, 27, ethers.ZeroHash, ethers.ZeroHash),
      ).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-PRICE, PRICE]);
      expect(await f.subscriptions.subscriptionCount()).to.equal(1n);
    });

    it("works with a token without permit when the subscriber approved beforehand", async () => {
      const f = await loadFixture(subsFixture);
      const noReturn = await f.noReturn.getAddress();
      const planId = (await f.subscriptions.planCount()) + 1n;
      await f.subscriptions.connect(f.merchantOwner).createPlan(f.merchantId, noReturn, 1_000n, MONTH, 0, 0);
      await f.noReturn.mint(f.alice.address, 5_000n);
      await approve(noReturn, f.alice, f.sm, 5_000n);
      await f.subscriptions.connect(f.alice).subscribeWithPermit(planId, 1_000n, 0, 0, 0, ethers.ZeroHash, ethers.ZeroHash);
      expect(await f.noReturn.balanceOf(f.alice.address)).to.equal(4_000n);
      expect(await f.noReturn.balanceOf(f.sm)).to.equal(1_000n);
    });

    it("refuses an unknown plan before touching any token, and is refused while paused", async () => {
      const f = await loadFixture(subsFixture);
      const deadline = BigInt((await time.latest()) + 3600);
      const sig = await signPermit(f.usdc, f.alice, f.sm, PRICE, deadline);
      await expect(f.subscriptions.connect(f.alice).subscribeWithPermit(42, PRICE, PRICE, deadline, sig.v, sig.r, sig.s))
        .to.be.revertedWithCustomError(f.subscriptions, "UnknownPlan")
        .withArgs(42);
      await f.subscriptions.connect(f.owner).setPaused(true);
      await expect(
        f.subscriptions.connect(f.alice).subscribeWithPermit(f.plans.monthly, PRICE, PRICE, deadline, sig.v, sig.r, sig.s),
      ).to.be.revertedWithCustomError(f.subscriptions, "SubscriptionsPaused");
      // Both reverted, so the permit nonce is unused.
      expect(await f.usdc.nonces(f.alice.address)).to.equal(0n);
    });
  });
});
