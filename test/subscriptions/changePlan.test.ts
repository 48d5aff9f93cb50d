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
  createPlan,
  earnedAt,
  earnedUpAt,
  expectSolvent,
  fundAndApprove,
  subsFixture,
  subscribe,
} from "./helpers";

describe("SubscriptionManager: changePlan", () => {
  it("upgrade mid-period: earned part (rounded up) to the merchant, unearned rest credited, the difference charged, new period from now", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    const now = start + 10 * DAY;
    const earned = earnedUpAt(PRICE, 10 * DAY, MONTH); // 3.333333⅓ USDC -> 3.333334
    expect(earned).to.equal(earnedAt(PRICE, 10 * DAY, MONTH) + 1n);
    const credit = PRICE - earned;
    const charge = PREMIUM - credit;
    await time.setNextBlockTimestamp(now);
    const tx = f.subscriptions.connect(f.payer).changePlan(id, f.plans.premium, USDC(30));
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, f.plans.monthly, f.plans.premium, earned, credit, charge, 0, now + MONTH, Status.Active);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-charge, charge]);
    const sub = await f.subscriptions.subscription(id);
    expect(sub.planId).to.equal(f.plans.premium);
    expect(sub.status).to.equal(Status.Active);
    expect(sub.unearned).to.equal(PREMIUM);
    expect(sub.collectedUntil).to.equal(now);
    expect(sub.periodEnd).to.equal(now + MONTH);
    expect(sub.maxPrice).to.equal(USDC(30));
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(earned);
    await expectSolvent(f, [f.usdcAddress]);

    // The next renewal charges the new plan's price.
    await time.setNextBlockTimestamp(now + MONTH);
    await expect(f.subscriptions.renew([id]))
      .to.emit(f.subscriptions, "SubscriptionCharged")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PREMIUM, now + MONTH, now + 2 * MONTH);
  });

  it("downgrade mid-period: credit above the new price is refunded, nothing charged; the new plan's period applies", async () => {
    const f = await loadFixture(subsFixture);
    const weekly = await createPlan(f, { price: USDC(3), period: 7 * DAY, grace: DAY });
    const { id, start } = await subscribe(f, f.payer, f.plans.premium);
    const now = start + 6 * DAY;
    const earned = earnedAt(PREMIUM, 6 * DAY, MONTH); // 5 USDC
    const credit = PREMIUM - earned;
    const excess = credit - USDC(3);
    expect(earned).to.equal(USDC(5));
    await time.setNextBlockTimestamp(now);
    const tx = f.subscriptions.connect(f.payer).changePlan(id, weekly, USDC(3));
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, f.plans.premium, weekly, earned, credit, 0, excess, now + 7 * DAY, Status.Active);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [excess, -excess]);
    const sub = await f.subscriptions.subscription(id);
    expect(sub.unearned).to.equal(USDC(3));
    expect(sub.periodEnd).to.equal(now + 7 * DAY);
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(earned);
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("during a trial, to a plan without a trial: the trial ends, the new plan is charged now and an active period starts", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.trial);
    const now = start + DAY;
    await time.setNextBlockTimestamp(now);
    const tx = f.subscriptions.connect(f.payer).changePlan(id, f.plans.premium, PREMIUM);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, f.plans.trial, f.plans.premium, 0, 0, PREMIUM, 0, now + MONTH, Status.Active);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-PREMIUM, PREMIUM]);
    const sub = await f.subscriptions.subscription(id);
    expect(sub.status).to.equal(Status.Active);
    expect(sub.planId).to.equal(f.plans.premium);
    expect(sub.collectedUntil).to.equal(now);
    expect(sub.unearned).to.equal(PREMIUM);
    expect(sub.periodEnd).to.equal(now + MONTH);
    expect(sub.maxPrice).to.equal(PREMIUM);
    await expectSolvent(f, [f.usdcAddress]);

    await time.setNextBlockTimestamp(now + MONTH);
    await expect(f.subscriptions.renew([id]))
      .to.emit(f.subscriptions, "SubscriptionCharged")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PREMIUM, now + MONTH, now + 2 * MONTH);
  });

  it("during a trial, to a plan with a trial: the trial goes on only as far as the new plan's trial allows, never longer", async () => {
    const f = await loadFixture(subsFixture);
    const shortTrial = await createPlan(f, { price: PREMIUM, trial: 3 * DAY });
    const longTrial = await createPlan(f, { price: PREMIUM, trial: 30 * DAY });
    const { id, start } = await subscribe(f, f.payer, f.plans.trial); // 7 days
    await time.setNextBlockTimestamp(start + DAY);
    await expect(f.subscriptions.connect(f.payer).changePlan(id, shortTrial, PREMIUM))
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, f.plans.trial, shortTrial, 0, 0, 0, 0, start + 3 * DAY, Status.Trialing);
    expect((await f.subscriptions.subscription(id)).periodEnd).to.equal(start + 3 * DAY);

    // A longer trial cannot stretch it back: the trial end stays where it is.
    await time.setNextBlockTimestamp(start + 2 * DAY);
    const tx = f.subscriptions.connect(f.payer).changePlan(id, longTrial, PREMIUM);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, shortTrial, longTrial, 0, 0, 0, 0, start + 3 * DAY, Status.Trialing);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payer], [0]);
    const sub = await f.subscriptions.subscription(id);
    expect(sub.status).to.equal(Status.Trialing);
    expect(sub.collectedUntil).to.equal(start); // the trial's start
    expect(sub.periodEnd).to.equal(start + 3 * DAY);
    for (const planId of [f.plans.trial, shortTrial, longTrial]) {
      expect(await f.subscriptions.trialUsed(f.payer.address, planId)).to.equal(true);
    }

    await time.setNextBlockTimestamp(start + 3 * DAY);
    await expect(f.subscriptions.renew([id]))
      .to.emit(f.subscriptions, "SubscriptionCharged")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PREMIUM, start + 3 * DAY, start + 3 * DAY + MONTH);
  });

  it("during a trial, to a plan whose trial would already be over: the trial ends and the new plan is charged now", async () => {
    const f = await loadFixture(subsFixture);
    const shortTrial = await createPlan(f, { price: PREMIUM, trial: 2 * DAY });
    const { id, start } = await subscribe(f, f.payer, f.plans.trial);
    const now = start + 2 * DAY; // exactly where the new plan's trial would end
    await time.setNextBlockTimestamp(now);

    await expect(f.subscriptions.connect(f.payer).changePlan(id, shortTrial, PREMIUM))
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, f.plans.trial, shortTrial, 0, 0, PREMIUM, 0, now + MONTH, Status.Active);
    expect((await f.subscriptions.subscription(id)).status).to.equal(Status.Active);
    expect(await f.subscriptions.trialUsed(f.payer.address, shortTrial)).to.equal(true);
  });

  it("refuses a change once the period ended, before renewal (RenewalDue): renew first, from the billing anchor", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    const due = start + MONTH;
    // Inside the grace window, a change would start the new plan at now and leave the days since `due` unpaid.
    for (const at of [due, due + DAY]) {
      await time.setNextBlockTimestamp(at);
      await expect(f.subscriptions.connect(f.payer).changePlan(id, f.plans.premium, PREMIUM))
        .to.be.revertedWithCustomError(f.subscriptions, "RenewalDue")
        .withArgs(due);
    }
    await f.subscriptions.renew([id]); // anchored at `due`
    await expect(f.subscriptions.connect(f.payer).changePlan(id, f.plans.premium, PREMIUM)).to.emit(
      f.subscriptions,
      "SubscriptionPlanChanged",
    );
    // A trial that ended without a renewal is refused the same way.
    const t = await subscribe(f, f.other, f.plans.trial);
    await time.setNextBlockTimestamp(t.start + TRIAL);
    await expect(f.subscriptions.connect(f.other).changePlan(t.id, f.plans.premium, PREMIUM))
      .to.be.revertedWithCustomError(f.subscriptions, "RenewalDue")
      .withArgs(t.start + TRIAL);
  });

  it("accepts a change one second before the period ends", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    const earned = earnedUpAt(PRICE, MONTH - 1, MONTH); // 9.999997 USDC: never more than the charge
    await time.setNextBlockTimestamp(start + MONTH - 1);
    await expect(f.subscriptions.connect(f.payer).changePlan(id, f.plans.premium, PREMIUM))
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, f.plans.monthly, f.plans.premium, earned, PRICE - earned, PREMIUM - (PRICE - earned), 0, start + MONTH - 1 + MONTH, Status.Active);
  });

  it("refuses a change to the plan the subscription is already on (SamePlan)", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await time.setNextBlockTimestamp(start + MONTH / 2);
    await expect(f.subscriptions.connect(f.payer).changePlan(id, f.plans.monthly, PRICE))
      .to.be.revertedWithCustomError(f.subscriptions, "SamePlan")
      .withArgs(f.plans.monthly);
    const t = await subscribe(f, f.other, f.plans.trial);
    await expect(f.subscriptions.connect(f.other).changePlan(t.id, f.plans.trial, PRICE))
      .to.be.revertedWithCustomError(f.subscriptions, "SamePlan")
      .withArgs(f.plans.trial);
  });

  it("refunds the excess to claimable when the subscriber is blocklisted", async () => {
    const f = await loadFixture(subsFixture);
    const busd = await f.blocklist.getAddress();
    const big = await createPlan(f, { token: busd, price: USDC(20) });
    const small = await createPlan(f, { token: busd, price: USDC(5) });
    await fundAndApprove(f.blocklist, f.alice, f.sm, USDC(100));
    const { id, start } = await subscribe(f, f.alice, big);
    await f.blocklist.setBlocklisted(f.alice.address, true);
    await time.setNextBlockTimestamp(start + MONTH / 4);
    const excess = USDC(20) - USDC(5) - USDC(5); // 5 earned, 15 credit, 10 excess
    const tx = f.subscriptions.connect(f.alice).changePlan(id, small, USDC(5));
    await expect(tx).to.emit(f.subscriptions, "PayoutDeferred").withArgs(f.alice.address, busd, excess);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, big, small, USDC(5), USDC(15), 0, excess, start + MONTH / 4 + MONTH, Status.Active);
    expect(await f.blocklist.balanceOf(f.alice.address)).to.equal(USDC(80));
    expect(await f.subscriptions.claimable(f.alice.address, busd)).to.equal(excess);
    await expectSolvent(f, [busd]);
    // Claimed to a clean address while still blocklisted.
    await expect(f.subscriptions.connect(f.alice).claim(busd, f.bob.address))
      .to.emit(f.subscriptions, "Claimed")
      .withArgs(f.alice.address, busd, f.bob.address, excess);
    expect(await f.blocklist.balanceOf(f.bob.address)).to.equal(excess);
    await expectSolvent(f, [busd]);
  });

  it("reverts and changes nothing when the difference cannot be pulled (allowance, fee-on-transfer)", async () => {
    const f = await loadFixture(subsFixture);
    await f.usdc.connect(f.alice).approve(f.sm, PRICE);
    const { id, start } = await subscribe(f, f.alice, f.plans.monthly);
    await time.setNextBlockTimestamp(start + MONTH / 2);
    await expect(f.subscriptions.connect(f.alice).changePlan(id, f.plans.premium, PREMIUM))
      .to.be.revertedWithCustomError(f.usdc, "ERC20InsufficientAllowance")
      .withArgs(f.sm, 0, PREMIUM - PRICE / 2n);
    const sub = await f.subscriptions.subscription(id);
    expect(sub.planId).to.equal(f.plans.monthly);
    expect(sub.unearned).to.equal(PRICE);

    const fot = await f.fot.getAddress();
    const cheap = await createPlan(f, { token: fot, price: 1_000n });
    const dear = await createPlan(f, { token: fot, price: 3_000n });
    await fundAndApprove(f.fot, f.bob, f.sm, 10_000n);
    const b = await subscribe(f, f.bob, cheap);
    await f.fot.setFeeBps(100);
    await time.setNextBlockTimestamp(b.start + MONTH / 2);
    await expect(f.subscriptions.connect(f.bob).changePlan(b.id, dear, 3_000n))
      .to.be.revertedWithCustomError(f.subscriptions, "InexactTransfer")
      .withArgs(2_500n, 2_475n);
    expect((await f.subscriptions.subscription(b.id)).planId).to.equal(cheap);
  });

  it("works while paused", async () => {
    const f = await loadFixture(subsFixture);
    const { id } = await subscribe(f, f.payer, f.plans.monthly);
    await f.subscriptions.connect(f.owner).setPaused(true);
    await expect(f.subscriptions.connect(f.payer).changePlan(id, f.plans.premium, PREMIUM)).to.emit(
      f.subscriptions,
      "SubscriptionPlanChanged",
    );
  });

  describe("reverts", () => {
    it("for unknown subscriptions and callers other than the subscriber (even the merchant)", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.payer).changePlan(3, f.plans.premium, PREMIUM))
        .to.be.revertedWithCustomError(f.subscriptions, "UnknownSubscription")
        .withArgs(3);
      const { id } = await subscribe(f, f.payer, f.plans.monthly);
      for (const caller of [f.other, f.merchantOwner, f.merchantSigner]) {
        await expect(f.subscriptions.connect(caller).changePlan(id, f.plans.premium, PREMIUM))
          .to.be.revertedWithCustomError(f.subscriptions, "NotSubscriber")
          .withArgs(f.payer.address, caller.address);
      }
    });

    it("for past-due, cancelled and lapsed subscriptions", async () => {
      const f = await loadFixture(subsFixture);
      const a = await subscribe(f, f.alice, f.plans.trial); // alice has no allowance
      await time.setNextBlockTimestamp(a.start + TRIAL);
      await f.subscriptions.renew([a.id]);
      await expect(f.subscriptions.connect(f.alice).changePlan(a.id, f.plans.monthly, PRICE))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidSubscriptionStatus")
        .withArgs(Status.PastDue);
      await time.setNextBlockTimestamp(a.start + TRIAL + GRACE);
      await f.subscriptions.renew([a.id]);
      await expect(f.subscriptions.connect(f.alice).changePlan(a.id, f.plans.monthly, PRICE))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidSubscriptionStatus")
        .withArgs(Status.Lapsed);
      const b = await subscribe(f, f.payer, f.plans.monthly);
      await f.subscriptions.connect(f.payer).cancel(b.id);
      await expect(f.subscriptions.connect(f.payer).changePlan(b.id, f.plans.premium, PREMIUM))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidSubscriptionStatus")
        .withArgs(Status.Canceled);
    });

    it("for unknown, inactive and mismatched plans (other merchant, other token) and a price above the new maximum", async () => {
      const f = await loadFixture(subsFixture);
      const { id } = await subscribe(f, f.payer, f.plans.monthly);
      const sm = f.subscriptions.connect(f.payer);
      await expect(sm.changePlan(id, 99, PRICE)).to.be.revertedWithCustomError(f.subscriptions, "UnknownPlan").withArgs(99);
      await f.subscriptions.connect(f.merchantOwner).setPlanActive(f.plans.premium, false);
      await expect(sm.changePlan(id, f.plans.premium, PREMIUM))
        .to.be.revertedWithCustomError(f.subscriptions, "PlanInactive")
        .withArgs(f.plans.premium);
      await expect(sm.changePlan(id, f.plans.merchant2, PRICE))
        .to.be.revertedWithCustomError(f.subscriptions, "PlanMismatch")
        .withArgs(f.plans.monthly, f.plans.merchant2);
      const daiPlan = await createPlan(f, { token: await f.dai.getAddress(), price: 10n ** 19n });
      await expect(sm.changePlan(id, daiPlan, 10n ** 19n))
        .to.be.revertedWithCustomError(f.subscriptions, "PlanMismatch")
        .withArgs(f.plans.monthly, daiPlan);
      await f.subscriptions.connect(f.merchantOwner).setPlanActive(f.plans.premium, true);
      await expect(sm.changePlan(id, f.plans.premium, PREMIUM - 1n))
        .to.be.revertedWithCustomError(f.subscriptions, "PriceAboveMaximum")
        .withArgs(PREMIUM, PREMIUM - 1n);
      const sub = await f.subscriptions.subscription(id);
      expect(sub.planId).to.equal(f.plans.monthly);
      expect(sub.maxPrice).to.equal(PRICE);
      expect(await f.usdc.balanceOf(f.sm)).to.equal(PRICE);
    });
  });
  it("pays for a started base unit of time: one second into a 1-unit month, that unit is earned", async () => {
    const f = await loadFixture(subsFixture);
    const tiny = await createPlan(f, { price: 1n });
    const bigger = await createPlan(f, { price: 3n });
    const { id, start } = await subscribe(f, f.payer, tiny);
    await time.setNextBlockTimestamp(start + 1);
    await expect(f.subscriptions.connect(f.payer).changePlan(id, bigger, 3n))
      .to.emit(f.subscriptions, "SubscriptionPlanChanged")
      .withArgs(id, f.merchantId, tiny, bigger, 1n, 0n, 3n, 0n, start + 1 + MONTH, Status.Active);
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(1n);
    expect((await f.subscriptions.subscription(id)).unearned).to.equal(3n);
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("gives no free time to a subscriber cycling between two plans of the same price before a base unit is earned", async () => {
    const f = await loadFixture(subsFixture);
    // The audit's case: a 2-decimal token, 10.00 a month, so one base unit is earned every 2 592 seconds.
    const cents = await ethers.deployContract("MockStablecoin", ["Cents", "CNT", 2]);
    const token = await cents.getAddress();
    await cents.mint(f.alice.address, 1_000_000n);
    await cents.connect(f.alice).approve(f.sm, ethers.MaxUint256);
    const price = 1_000n;
    const a = await createPlan(f, { token, price });
    const b = await createPlan(f, { token, price });
    const { id, start } = await subscribe(f, f.alice, a);
    const unitOfTime = MONTH / Number(price); // 2 592 s
    const step = unitOfTime - 1; // just under one base unit of time: rounded down, each change earned 0

    // Two months of changes, each one a second before a base unit is earned: with the subscription, 2 001 calls.
    let now = start;
    let plan = a;
    let changes = 0;
    while (now + step <= start + 2 * MONTH) {
      now += step;
      plan = plan === a ? b : a;
      await time.setNextBlockTimestamp(now);
      await f.subscriptions.connect(f.alice).changePlan(id, plan, price);
      changes += 1;
    }
    expect(changes).to.equal(2_000);

    const used = BigInt(now - start);
    const proportional = (price * used) / BigInt(MONTH); // what the time used is worth, rounded down: 2 000
    const earned = (await f.subscriptions.merchantBalance(f.merchantId, token)) + (await f.subscriptions.earnedNow(id));
    expect(earned).to.be.gte(proportional); // never less than the time-proportional amount (it was 0)
    expect(earned).to.be.lte(proportional + BigInt(changes)); // at most one started unit per change above it
    expect(earned).to.equal(BigInt(changes)); // one started unit per change
    await expectSolvent(f, [token]);
  });
});
