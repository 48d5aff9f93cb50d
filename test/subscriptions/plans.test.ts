import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { setMerchantSigner } from "../helpers/fixture";
import {
  DAY,
  GRACE,
  MAX_PERIOD,
  MAX_TRIAL,
  MONTH,
  PRICE,
  Status,
  TRIAL,
  USDC,
  createPlan,
  expectSolvent,
  subsFixture,
  subscribe,
} from "./helpers";

describe("SubscriptionManager: plans", () => {
  describe("createPlan", () => {
    it("lets the merchant owner create a plan, returning sequential ids and emitting PlanCreated", async () => {
      const f = await loadFixture(subsFixture);
      const before = await f.subscriptions.planCount();
      const args = [f.merchantId, f.usdcAddress, USDC(7), 7 * DAY, 2 * DAY, DAY] as const;
      expect(await f.subscriptions.connect(f.merchantOwner).createPlan.staticCall(...args)).to.equal(before + 1n);
      await expect(f.subscriptions.connect(f.merchantOwner).createPlan(...args))
        .to.emit(f.subscriptions, "PlanCreated")
        .withArgs(before + 1n, f.merchantId, f.usdcAddress, USDC(7), 7 * DAY, 2 * DAY, DAY);
      expect(await f.subscriptions.planCount()).to.equal(before + 1n);
      const plan = await f.subscriptions.plan(before + 1n);
      expect(plan.token).to.equal(f.usdcAddress);
      expect(plan.merchantId).to.equal(f.merchantId);
      expect(plan.active).to.equal(true);
      expect(plan.price).to.equal(USDC(7));
      expect(plan.period).to.equal(7 * DAY);
      expect(plan.trial).to.equal(2 * DAY);
      expect(plan.gracePeriod).to.equal(DAY);
    });

    it("lets the merchant signer (hot key) create a plan", async () => {
      const f = await loadFixture(subsFixture);
      const id = (await f.subscriptions.planCount()) + 1n;
      await expect(f.subscriptions.connect(f.merchantSigner).createPlan(f.merchantId, f.usdcAddress, PRICE, MONTH, 0, 0))
        .to.emit(f.subscriptions, "PlanCreated")
        .withArgs(id, f.merchantId, f.usdcAddress, PRICE, MONTH, 0, 0);
      expect((await f.subscriptions.plan(id)).merchantId).to.equal(f.merchantId);
    });

    it("refuses callers that are not an operator of the merchant (payout, stranger, other merchant)", async () => {
      const f = await loadFixture(subsFixture);
      for (const caller of [f.payout, f.payer, f.merchant2Owner]) {
        await expect(f.subscriptions.connect(caller).createPlan(f.merchantId, f.usdcAddress, PRICE, MONTH, 0, 0))
          .to.be.revertedWithCustomError(f.subscriptions, "NotMerchantOperator")
          .withArgs(f.merchantId, caller.address);
      }
    });

    it("refuses an unknown merchant id", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.merchantOwner).createPlan(99, f.usdcAddress, PRICE, MONTH, 0, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "NotMerchantOperator")
        .withArgs(99, f.merchantOwner.address);
    });

    it("refuses a token address without code", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.merchantOwner).createPlan(f.merchantId, f.payer.address, PRICE, MONTH, 0, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "TokenNotContract")
        .withArgs(f.payer.address);
    });

    it("refuses zero amounts and zero addresses (price, period, token, plan and subscription id 0)", async () => {
      const f = await loadFixture(subsFixture);
      const sm = f.subscriptions.connect(f.merchantOwner);
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, 0, MONTH, 0, 0)).to.be.revertedWithCustomError(
        f.subscriptions,
        "ZeroAmount",
      );
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, 0, 0, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidPeriod")
        .withArgs(0);
      await expect(sm.createPlan(f.merchantId, ethers.ZeroAddress, PRICE, MONTH, 0, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "TokenNotContract")
        .withArgs(ethers.ZeroAddress);
      await expect(sm.setPlanPrice(f.plans.monthly, 0)).to.be.revertedWithCustomError(f.subscriptions, "ZeroAmount");
      // Plan id 0 and subscription id 0 never exist.
      await expect(f.subscriptions.connect(f.payer).subscribe(0, PRICE))
        .to.be.revertedWithCustomError(f.subscriptions, "UnknownPlan")
        .withArgs(0);
      await expect(f.subscriptions.connect(f.payer).cancel(0))
        .to.be.revertedWithCustomError(f.subscriptions, "UnknownSubscription")
        .withArgs(0);
      // A zero maximum price never accepts a priced plan.
      await expect(f.subscriptions.connect(f.payer).subscribe(f.plans.monthly, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "PriceAboveMaximum")
        .withArgs(PRICE, 0);
      // A zero-length batch and an empty withdrawal are refused.
      await expect(f.subscriptions.renew([])).to.be.revertedWithCustomError(f.subscriptions, "InvalidBatchSize").withArgs(0);
      await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, []))
        .to.be.revertedWithCustomError(f.subscriptions, "NothingToWithdraw")
        .withArgs(f.merchantId, f.usdcAddress);
      // Claims to the zero address and the constructor's zero registry are refused.
      await expect(f.subscriptions.connect(f.payer).claim(f.usdcAddress, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.subscriptions,
        "ZeroAddress",
      );
      const factory = await ethers.getContractFactory("SubscriptionManager");
      await expect(factory.deploy(f.owner.address, ethers.ZeroAddress)).to.be.revertedWithCustomError(factory, "ZeroAddress");
      expect(await f.subscriptions.planCount()).to.equal(4n);
      expect(await f.subscriptions.subscriptionCount()).to.equal(0n);
    });

    it("refuses overflowing durations at the boundary (period, trial, grace)", async () => {
      const f = await loadFixture(subsFixture);
      const sm = f.subscriptions.connect(f.merchantOwner);
      const u32max = 2 ** 32 - 1;
      expect(await f.subscriptions.MAX_PERIOD()).to.equal(MAX_PERIOD);
      expect(await f.subscriptions.MAX_TRIAL()).to.equal(MAX_TRIAL);

      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, MAX_PERIOD + 1, 0, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidPeriod")
        .withArgs(MAX_PERIOD + 1);
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, u32max, 0, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidPeriod")
        .withArgs(u32max);
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, MONTH, MAX_TRIAL + 1, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "TrialTooLong")
        .withArgs(MAX_TRIAL + 1);
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, MONTH, u32max, 0))
        .to.be.revertedWithCustomError(f.subscriptions, "TrialTooLong")
        .withArgs(u32max);
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, MONTH, 0, MONTH + 1))
        .to.be.revertedWithCustomError(f.subscriptions, "GracePeriodTooLong")
        .withArgs(MONTH + 1, MONTH);
      // Grace must be strictly shorter than the period: a grace equal to it is refused too.
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, MONTH, 0, MONTH))
        .to.be.revertedWithCustomError(f.subscriptions, "GracePeriodTooLong")
        .withArgs(MONTH, MONTH);
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, 1, 0, 1))
        .to.be.revertedWithCustomError(f.subscriptions, "GracePeriodTooLong")
        .withArgs(1, 1);
      await expect(sm.createPlan(f.merchantId, f.usdcAddress, PRICE, MAX_PERIOD, 0, u32max))
        .to.be.revertedWithCustomError(f.subscriptions, "GracePeriodTooLong")
        .withArgs(u32max, MAX_PERIOD);
      expect(await f.subscriptions.planCount()).to.equal(4n);

      // Exactly at the limits: accepted, and the dates computed from them do not overflow.
      const planId = await createPlan(f, { period: MAX_PERIOD, trial: MAX_TRIAL, grace: MAX_PERIOD - 1 });
      const { id, start } = await subscribe(f, f.payer, planId);
      let sub = await f.subscriptions.subscription(id);
      expect(sub.status).to.equal(Status.Trialing);
      expect(sub.periodEnd).to.equal(start + MAX_TRIAL);
      await time.increaseTo(start + MAX_TRIAL);
      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, start + MAX_TRIAL + 0, start + MAX_TRIAL + MAX_PERIOD);
      sub = await f.subscriptions.subscription(id);
      expect(sub.periodEnd).to.equal(start + MAX_TRIAL + MAX_PERIOD);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("handles the largest uint96 price over the longest period without overflow in pro-rata math", async () => {
      const f = await loadFixture(subsFixture);
      const maxPrice = 2n ** 96n - 1n;
      const planId = await createPlan(f, { token: await f.dai.getAddress(), price: maxPrice, period: MAX_PERIOD, grace: 0 });
      await f.dai.mint(f.alice.address, maxPrice);
      await f.dai.connect(f.alice).approve(f.sm, maxPrice);
      const { id, start } = await subscribe(f, f.alice, planId);
      const elapsed = MAX_PERIOD / 3 + 17;
      await time.setNextBlockTimestamp(start + elapsed);
      const earned = (maxPrice * BigInt(elapsed)) / BigInt(MAX_PERIOD);
      await expect(f.subscriptions.connect(f.alice).cancel(id))
        .to.emit(f.subscriptions, "SubscriptionCanceled")
        .withArgs(id, f.merchantId, f.alice.address, await f.dai.getAddress(), maxPrice - earned, earned, f.alice.address);
      expect(await f.dai.balanceOf(f.alice.address)).to.equal(maxPrice - earned);
      expect(await f.subscriptions.merchantBalance(f.merchantId, await f.dai.getAddress())).to.equal(earned);
      await expectSolvent(f, [await f.dai.getAddress()]);
    });
  });

  describe("setPlanPrice", () => {
    it("lets an operator change the price, emitting PlanUpdated; it applies from the next period only", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly, USDC(20));
      await expect(f.subscriptions.connect(f.merchantSigner).setPlanPrice(f.plans.monthly, USDC(12)))
        .to.emit(f.subscriptions, "PlanUpdated")
        .withArgs(f.plans.monthly, f.merchantId, USDC(12), true);
      expect((await f.subscriptions.plan(f.plans.monthly)).price).to.equal(USDC(12));
      // The current period keeps what was charged for it.
      expect((await f.subscriptions.subscription(id)).unearned).to.equal(PRICE);
      await time.setNextBlockTimestamp(start + MONTH);
      const tx = f.subscriptions.renew([id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, USDC(12), start + MONTH, start + 2 * MONTH);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-USDC(12), USDC(12)]);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("refuses non-operators and unknown plans", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.payer).setPlanPrice(f.plans.monthly, USDC(1)))
        .to.be.revertedWithCustomError(f.subscriptions, "NotMerchantOperator")
        .withArgs(f.merchantId, f.payer.address);
      await expect(f.subscriptions.connect(f.merchant2Owner).setPlanPrice(f.plans.monthly, USDC(1)))
        .to.be.revertedWithCustomError(f.subscriptions, "NotMerchantOperator")
        .withArgs(f.merchantId, f.merchant2Owner.address);
      await expect(f.subscriptions.connect(f.merchantOwner).setPlanPrice(77, USDC(1)))
        .to.be.revertedWithCustomError(f.subscriptions, "UnknownPlan")
        .withArgs(77);
      expect((await f.subscriptions.plan(f.plans.monthly)).price).to.equal(PRICE);
    });

    it("follows signer rotation in the registry: the old signer loses the right at once", async () => {
      const f = await loadFixture(subsFixture);
      await setMerchantSigner(f.escrow, f.merchantOwner, f.merchantId, f.keeper);
      await expect(f.subscriptions.connect(f.merchantSigner).setPlanPrice(f.plans.monthly, USDC(1)))
        .to.be.revertedWithCustomError(f.subscriptions, "NotMerchantOperator")
        .withArgs(f.merchantId, f.merchantSigner.address);
      await expect(f.subscriptions.connect(f.keeper).setPlanPrice(f.plans.monthly, USDC(1)))
        .to.emit(f.subscriptions, "PlanUpdated")
        .withArgs(f.plans.monthly, f.merchantId, USDC(1), true);
    });
  });

  describe("setPlanActive", () => {
    it("deactivation stops new subscriptions only; existing ones keep renewing and cancelling", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await expect(f.subscriptions.connect(f.merchantOwner).setPlanActive(f.plans.monthly, false))
        .to.emit(f.subscriptions, "PlanUpdated")
        .withArgs(f.plans.monthly, f.merchantId, PRICE, false);
      expect((await f.subscriptions.plan(f.plans.monthly)).active).to.equal(false);
      await expect(f.subscriptions.connect(f.other).subscribe(f.plans.monthly, PRICE))
        .to.be.revertedWithCustomError(f.subscriptions, "PlanInactive")
        .withArgs(f.plans.monthly);

      await time.setNextBlockTimestamp(start + MONTH);
      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, start + MONTH, start + 2 * MONTH);
      await expect(f.subscriptions.connect(f.payer).cancel(id)).to.emit(f.subscriptions, "SubscriptionCanceled");

      await expect(f.subscriptions.connect(f.merchantSigner).setPlanActive(f.plans.monthly, true))
        .to.emit(f.subscriptions, "PlanUpdated")
        .withArgs(f.plans.monthly, f.merchantId, PRICE, true);
      const again = await subscribe(f, f.other, f.plans.monthly);
      expect((await f.subscriptions.subscription(again.id)).status).to.equal(Status.Active);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("refuses non-operators and unknown plans", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.payout).setPlanActive(f.plans.monthly, false))
        .to.be.revertedWithCustomError(f.subscriptions, "NotMerchantOperator")
        .withArgs(f.merchantId, f.payout.address);
      await expect(f.subscriptions.connect(f.merchantOwner).setPlanActive(0, false))
        .to.be.revertedWithCustomError(f.subscriptions, "UnknownPlan")
        .withArgs(0);
      expect((await f.subscriptions.plan(f.plans.monthly)).active).to.equal(true);
    });
  });

  describe("views", () => {
    it("plan() of an unknown id is all zero; fixture plans are as created", async () => {
      const f = await loadFixture(subsFixture);
      const unknown = await f.subscriptions.plan(999);
      expect(unknown.token).to.equal(ethers.ZeroAddress);
      expect(unknown.price).to.equal(0n);
      const trial = await f.subscriptions.plan(f.plans.trial);
      expect([trial.price, trial.period, trial.trial, trial.gracePeriod]).to.deep.equal([PRICE, BigInt(MONTH), BigInt(TRIAL), BigInt(GRACE)]);
      const m2 = await f.subscriptions.plan(f.plans.merchant2);
      expect(m2.merchantId).to.equal(f.merchant2Id);
    });
  });
});
