import { expect } from "chai";
import { ethers } from "hardhat";
import { impersonateAccount, loadFixture, setBalance, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import {
  DAY,
  Failure,
  GRACE,
  MAX_BATCH,
  MONTH,
  PRICE,
  Status,
  TRIAL,
  TX_GAS_CAP,
  USDC,
  createPlan,
  expectSolvent,
  fundAndApprove,
  subsFixture,
  subscribe,
} from "./helpers";

describe("SubscriptionManager: renew", () => {
  describe("batch size", () => {
    it("refuses an empty batch and one above MAX_BATCH; a full batch of unknown ids renews nothing", async () => {
      const f = await loadFixture(subsFixture);
      expect(await f.subscriptions.MAX_BATCH()).to.equal(MAX_BATCH);
      await expect(f.subscriptions.renew([])).to.be.revertedWithCustomError(f.subscriptions, "InvalidBatchSize").withArgs(0);
      const tooMany = Array.from({ length: MAX_BATCH + 1 }, (_, i) => i + 1);
      await expect(f.subscriptions.renew(tooMany))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidBatchSize")
        .withArgs(MAX_BATCH + 1);
      const full = Array.from({ length: MAX_BATCH }, (_, i) => 1000 + i);
      expect(await f.subscriptions.renew.staticCall(full)).to.equal(0n);
      await expect(f.subscriptions.renew(full)).not.to.emit(f.subscriptions, "SubscriptionCharged");
    });
  });

  describe("single subscription", () => {
    it("skips a subscription that is not due yet (one second before periodEnd)", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await time.setNextBlockTimestamp(start + MONTH - 1);
      const tx = f.subscriptions.connect(f.keeper).renew([id]);
      await expect(tx).not.to.emit(f.subscriptions, "SubscriptionCharged");
      await expect(tx).not.to.emit(f.subscriptions, "SubscriptionPaymentFailed");
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [0, 0]);
      const sub = await f.subscriptions.subscription(id);
      expect(sub.unearned).to.equal(PRICE);
      expect(sub.periodEnd).to.equal(start + MONTH);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(0n);
    });

    it("renews a due subscription for anyone: the ended period goes to the merchant, the next one is charged from the due date", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      const due = start + MONTH;
      await time.increaseTo(due);
      expect(await f.subscriptions.isDue(id)).to.equal(true);
      expect(await f.subscriptions.connect(f.keeper).renew.staticCall([id])).to.equal(1n);
      // Mined one second after the due date: still anchored at the due date.
      const tx = f.subscriptions.connect(f.keeper).renew([id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, due, due + MONTH);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions, f.keeper], [-PRICE, PRICE, 0]);
      const sub = await f.subscriptions.subscription(id);
      expect(sub.status).to.equal(Status.Active);
      expect(sub.collectedUntil).to.equal(due);
      expect(sub.unearned).to.equal(PRICE);
      expect(sub.periodEnd).to.equal(due + MONTH);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);
      expect(await f.subscriptions.isDue(id)).to.equal(false);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("charges the first period when a trial ends, anchored at the trial end", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.trial);
      const trialEnd = start + TRIAL;
      await time.setNextBlockTimestamp(trialEnd + HOURS(5));
      const tx = f.subscriptions.renew([id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, trialEnd, trialEnd + MONTH);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-PRICE, PRICE]);
      const sub = await f.subscriptions.subscription(id);
      expect(sub.status).to.equal(Status.Active);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(0n);
      // Five hours of the new period are already earned.
      expect(await f.subscriptions.earnedNow(id)).to.equal((PRICE * BigInt(HOURS(5))) / BigInt(MONTH));
    });

    it("past due: a failed charge marks PastDue with the retry deadline, and credits the ended period to the merchant", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      const due = start + MONTH;
      await f.usdc.connect(f.payer).approve(f.sm, 0);
      await time.setNextBlockTimestamp(due + DAY);
      expect(await f.subscriptions.renew.staticCall([id])).to.equal(0n);
      const tx = f.subscriptions.renew([id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(id, f.merchantId, Failure.TransferFailed, due + GRACE);
      await expect(tx).not.to.emit(f.subscriptions, "SubscriptionCharged");
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [0, 0]);
      const sub = await f.subscriptions.subscription(id);
      expect(sub.status).to.equal(Status.PastDue);
      expect(sub.unearned).to.equal(0n);
      expect(sub.collectedUntil).to.equal(due);
      expect(sub.periodEnd).to.equal(due);
      expect(sub.maxPrice).to.equal(PRICE);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);
      expect(await f.subscriptions.isDue(id)).to.equal(true);
      expect(await f.subscriptions.earnedNow(id)).to.equal(0n);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("retries inside grace: another failure keeps the same deadline; a success starts the new period at the charge", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      const due = start + MONTH;
      await f.usdc.connect(f.payer).approve(f.sm, 0);
      await time.setNextBlockTimestamp(due);
      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(id, f.merchantId, Failure.TransferFailed, due + GRACE);
      await time.setNextBlockTimestamp(due + DAY);
      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(id, f.merchantId, Failure.TransferFailed, due + GRACE);
      // The merchant was credited the ended period once, not per attempt.
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);

      // Past due, the merchant suspended access: the subscriber pays from the successful retry on (at grace end - 1).
      await f.usdc.connect(f.payer).approve(f.sm, PRICE);
      const retriedAt = due + GRACE - 1;
      await time.setNextBlockTimestamp(retriedAt);
      const tx = f.subscriptions.renew([id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, retriedAt, retriedAt + MONTH);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-PRICE, PRICE]);
      const sub = await f.subscriptions.subscription(id);
      expect(sub.status).to.equal(Status.Active);
      expect(sub.collectedUntil).to.equal(retriedAt);
      expect(sub.periodEnd).to.equal(retriedAt + MONTH);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("lapses when a charge fails at exactly due + grace (SubscriptionLapsed, no PaymentFailed); lapsed is final", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      const due = start + MONTH;
      await f.usdc.connect(f.payer).approve(f.sm, 0);
      await time.setNextBlockTimestamp(due + GRACE - 1);
      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(id, f.merchantId, Failure.TransferFailed, due + GRACE);
      await time.setNextBlockTimestamp(due + GRACE);
      const tx = f.subscriptions.renew([id]);
      await expect(tx).to.emit(f.subscriptions, "SubscriptionLapsed").withArgs(id, f.merchantId);
      await expect(tx).not.to.emit(f.subscriptions, "SubscriptionPaymentFailed");
      const sub = await f.subscriptions.subscription(id);
      expect(sub.status).to.equal(Status.Lapsed);
      expect(sub.unearned).to.equal(0n);
      expect(await f.subscriptions.isDue(id)).to.equal(false);

      // Money back does not revive it.
      await f.usdc.connect(f.payer).approve(f.sm, ethers.MaxUint256);
      expect(await f.subscriptions.renew.staticCall([id])).to.equal(0n);
      await expect(f.subscriptions.renew([id])).to.changeTokenBalances(f.usdc, [f.payer], [0]);
      await expect(f.subscriptions.connect(f.payer).setMaxPrice(id, USDC(100)))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidSubscriptionStatus")
        .withArgs(Status.Lapsed);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("a first failure after grace lapses at once (no PastDue step)", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.alice, f.plans.trial); // alice never approved
      await time.setNextBlockTimestamp(start + TRIAL + GRACE + DAY);
      await expect(f.subscriptions.renew([id])).to.emit(f.subscriptions, "SubscriptionLapsed").withArgs(id, f.merchantId);
      expect((await f.subscriptions.subscription(id)).status).to.equal(Status.Lapsed);
    });

    it("with a zero grace period: a late renewal starts now, and the first failure lapses", async () => {
      const f = await loadFixture(subsFixture);
      const planId = await createPlan(f, { grace: 0 });
      const a = await subscribe(f, f.payer, planId);
      const b = await subscribe(f, f.other, planId);
      await f.usdc.connect(f.other).approve(f.sm, 0);
      const now = b.start + MONTH + HOURS(2);
      await time.setNextBlockTimestamp(now);
      const tx = f.subscriptions.renew([a.id, b.id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(a.id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, now, now + MONTH);
      await expect(tx).to.emit(f.subscriptions, "SubscriptionLapsed").withArgs(b.id, f.merchantId);
      expect((await f.subscriptions.subscription(b.id)).status).to.equal(Status.Lapsed);
    });

    it("late renewal after grace restarts the period at now, for an Active and for a PastDue subscription", async () => {
      const f = await loadFixture(subsFixture);
      const a = await subscribe(f, f.payer, f.plans.monthly);
      const b = await subscribe(f, f.other, f.plans.monthly);
      await f.usdc.connect(f.other).approve(f.sm, 0);
      await time.setNextBlockTimestamp(b.start + MONTH);
      await f.subscriptions.renew([b.id]); // b goes PastDue; a is left for a slow keeper
      expect((await f.subscriptions.subscription(b.id)).status).to.equal(Status.PastDue);
      await f.usdc.connect(f.other).approve(f.sm, ethers.MaxUint256);

      const now = b.start + MONTH + GRACE + DAY;
      await time.setNextBlockTimestamp(now);
      const tx = f.subscriptions.renew([a.id, b.id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(a.id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, now, now + MONTH);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(b.id, f.merchantId, f.other.address, f.usdcAddress, PRICE, now, now + MONTH);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.other], [-PRICE, -PRICE]);
      for (const id of [a.id, b.id]) {
        const sub = await f.subscriptions.subscription(id);
        expect(sub.status).to.equal(Status.Active);
        expect(sub.collectedUntil).to.equal(now);
        expect(sub.periodEnd).to.equal(now + MONTH);
      }
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(2n * PRICE);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("price above the subscriber's maximum: fails without touching the token; raising the maximum lets the retry succeed", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly, PRICE);
      const due = start + MONTH;
      await f.subscriptions.connect(f.merchantOwner).setPlanPrice(f.plans.monthly, USDC(11));
      const allowanceBefore = await f.usdc.allowance(f.payer.address, f.sm);
      await time.setNextBlockTimestamp(due);
      const tx = f.subscriptions.renew([id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(id, f.merchantId, Failure.PriceAboveMaximum, due + GRACE);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [0, 0]);
      expect(await f.usdc.allowance(f.payer.address, f.sm)).to.equal(allowanceBefore);

      await expect(f.subscriptions.connect(f.payer).setMaxPrice(id, USDC(11)))
        .to.emit(f.subscriptions, "MaxPriceChanged")
        .withArgs(id, USDC(11));
      await time.setNextBlockTimestamp(due + DAY);
      const retry = f.subscriptions.renew([id]);
      await expect(retry)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, USDC(11), due + DAY, due + DAY + MONTH);
      await expect(retry).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-USDC(11), USDC(11)]);
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("charges a lowered price without needing a new maximum", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await f.subscriptions.connect(f.merchantOwner).setPlanPrice(f.plans.monthly, USDC(4));
      await time.setNextBlockTimestamp(start + MONTH);
      await expect(f.subscriptions.renew([id])).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [-USDC(4), USDC(4)]);
      expect((await f.subscriptions.subscription(id)).unearned).to.equal(USDC(4));
    });

    it("keeps working while paused", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await f.subscriptions.connect(f.owner).setPaused(true);
      await time.setNextBlockTimestamp(start + MONTH);
      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, start + MONTH, start + 2 * MONTH);
    });

    it("renews the same id only once when it is listed twice", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await time.increaseTo(start + MONTH);
      expect(await f.subscriptions.renew.staticCall([id, id])).to.equal(1n);
      await expect(f.subscriptions.renew([id, id])).to.changeTokenBalances(f.usdc, [f.payer], [-PRICE]);
      expect((await f.subscriptions.subscription(id)).periodEnd).to.equal(start + 2 * MONTH);
    });
  });

  describe("where a renewed period starts: no charge for time the subscriber could not use", () => {
    it("a running subscription a keeper renews late keeps its billing anchor, up to graceEnd - 1", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      const due = start + MONTH;
      await time.setNextBlockTimestamp(due + GRACE - 1);

      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, due, due + MONTH);
      const sub = await f.subscriptions.subscription(id);
      expect(sub.collectedUntil).to.equal(due);
      expect(sub.periodEnd).to.equal(due + MONTH);
      // The time since the anchor is already earned: the subscriber had access all along.
      expect(await f.subscriptions.earnedNow(id)).to.equal((PRICE * BigInt(GRACE - 1)) / BigInt(MONTH));
    });

    it("a running subscription first renewed at exactly graceEnd starts its new period at the charge", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      const graceEnd = start + MONTH + GRACE;
      await time.setNextBlockTimestamp(graceEnd);

      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, graceEnd, graceEnd + MONTH);
      expect((await f.subscriptions.subscription(id)).status).to.equal(Status.Active);
    });

    it("a running subscription whose first charge fails at graceEnd - 1 goes past due; one failing first at exactly graceEnd lapses", async () => {
      const f = await loadFixture(subsFixture);
      await f.usdc.connect(f.alice).approve(f.sm, PRICE); // one period only: every renewal fails
      const a = await subscribe(f, f.alice, f.plans.monthly);
      await time.setNextBlockTimestamp(a.start + MONTH + GRACE - 1);
      await expect(f.subscriptions.renew([a.id]))
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(a.id, f.merchantId, Failure.TransferFailed, a.start + MONTH + GRACE);
      expect((await f.subscriptions.subscription(a.id)).status).to.equal(Status.PastDue);

      await f.usdc.connect(f.bob).approve(f.sm, PRICE); // one period only
      const b = await subscribe(f, f.bob, f.plans.monthly);
      await time.setNextBlockTimestamp(b.start + MONTH + GRACE);
      const tx = f.subscriptions.renew([b.id]);
      await expect(tx).to.emit(f.subscriptions, "SubscriptionLapsed").withArgs(b.id, f.merchantId);
      await expect(tx).not.to.emit(f.subscriptions, "SubscriptionPaymentFailed");
      expect((await f.subscriptions.subscription(b.id)).status).to.equal(Status.Lapsed);
    });

    it("a past-due subscription charged at graceEnd - 1 starts its new period at the charge, not at the old due date", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      const due = start + MONTH;
      await f.usdc.connect(f.payer).approve(f.sm, 0);
      await time.setNextBlockTimestamp(due);
      await f.subscriptions.renew([id]); // fails: past due, access suspended
      await f.usdc.connect(f.payer).approve(f.sm, PRICE);
      const chargedAt = due + GRACE - 1;
      await time.setNextBlockTimestamp(chargedAt);

      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, chargedAt, chargedAt + MONTH);
      expect(await f.subscriptions.earnedNow(id)).to.equal(0n);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE); // the first period
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("a past-due subscription charged at exactly graceEnd, before anyone lapsed it, is revived from the charge", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      const due = start + MONTH;
      await f.usdc.connect(f.payer).approve(f.sm, 0);
      await time.setNextBlockTimestamp(due + DAY);
      await f.subscriptions.renew([id]);
      await f.usdc.connect(f.payer).approve(f.sm, PRICE);
      await time.setNextBlockTimestamp(due + GRACE);

      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, due + GRACE, due + GRACE + MONTH);
      expect((await f.subscriptions.subscription(id)).status).to.equal(Status.Active);
    });

    it("never bills two full periods moments apart: with grace just under the period, a late past-due retry buys a full period", async () => {
      const f = await loadFixture(subsFixture);
      const period = 7 * DAY;
      const planId = await createPlan(f, { period, grace: period - 1 });
      const { id, start } = await subscribe(f, f.payer, planId);
      const due = start + period;
      await f.usdc.connect(f.payer).approve(f.sm, 0);
      await time.setNextBlockTimestamp(due);
      await f.subscriptions.renew([id]); // past due
      await f.usdc.connect(f.payer).approve(f.sm, ethers.MaxUint256);
      const retriedAt = due + period - 2; // the last second of grace

      await time.setNextBlockTimestamp(retriedAt);
      await expect(f.subscriptions.renew([id]))
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, retriedAt, retriedAt + period);
      // Billed from the old due date, this period would end two seconds later and a keeper would charge again.
      await time.setNextBlockTimestamp(retriedAt + 2);
      await expect(f.subscriptions.renew([id])).not.to.emit(f.subscriptions, "SubscriptionCharged");
      expect(await f.subscriptions.isDue(id)).to.equal(false);
    });
  });

  describe("batch of 20+ with failures", () => {
    it("renews the healthy subscriptions on their anchors and marks the failing ones past due without reverting; then retries and lapses", async () => {
      const f = await loadFixture(subsFixture);
      const busd = await f.blocklist.getAddress();
      const blockPlan = await createPlan(f, { token: busd });
      const pricedPlan = await createPlan(f, {});
      for (const s of [f.carol, f.dave]) await fundAndApprove(f.blocklist, s, f.sm, USDC(100));
      await f.usdc.connect(f.alice).approve(f.sm, PRICE); // one period only
      for (const s of [f.bob, f.erin, f.frank]) await f.usdc.connect(s).approve(f.sm, ethers.MaxUint256);

      type Entry = { id: bigint; who: HardhatEthersSigner; token: string; due: number; price: bigint };
      const entries: Record<string, Entry[]> = { ok: [], noAllowance: [], noBalance: [], blocked: [], aboveMax: [] };
      const add = async (group: string, who: HardhatEthersSigner, planId: bigint, maxPrice?: bigint) => {
        const { id, start } = await subscribe(f, who, planId, maxPrice);
        const plan = await f.subscriptions.plan(planId);
        const entry = { id, who, token: plan.token, due: start + Number(plan.trial === 0n ? plan.period : plan.trial), price: plan.price };
        entries[group].push(entry);
        return entry;
      };
      const t0 = await time.latest();
      for (let i = 0; i < 8; i++) await add("ok", f.payer, f.plans.monthly);
      for (let i = 0; i < 6; i++) await add("ok", f.other, f.plans.monthly);
      const alice = await add("noAllowance", f.alice, f.plans.monthly);
      const bob = await add("noBalance", f.bob, f.plans.monthly);
      const carol = await add("blocked", f.carol, blockPlan);
      const dave = await add("ok", f.dave, blockPlan);
      const erin = await add("aboveMax", f.erin, pricedPlan, PRICE);
      const frank = await add("ok", f.frank, pricedPlan, 2n * PRICE);
      const canceled = await subscribe(f, f.payer, f.plans.monthly);
      await f.subscriptions.connect(f.payer).cancel(canceled.id);
      const trial = await subscribe(f, f.other, f.plans.trial); // its trial ends long before the batch runs
      await time.setNextBlockTimestamp(t0 + 10 * DAY);
      const notDue = await subscribe(f, f.payer, f.plans.monthly);

      // Failure causes set up after subscribing.
      await f.usdc.connect(f.bob).transfer(f.keeper.address, await f.usdc.balanceOf(f.bob.address));
      await f.blocklist.setBlocklisted(f.carol.address, true);
      await f.subscriptions.connect(f.merchantOwner).setPlanPrice(pricedPlan, PRICE + 1n);
      frank.price = PRICE + 1n;

      const ids = [
        ...entries.ok.slice(0, 7).map((e) => e.id),
        alice.id,
        canceled.id,
        ...entries.ok.slice(7, 12).map((e) => e.id),
        bob.id,
        999n,
        carol.id,
        ...entries.ok.slice(12).map((e) => e.id),
        erin.id,
        trial.id,
        notDue.id,
      ];
      expect(ids.length).to.be.gte(24);
      const okCount = entries.ok.length + 1; // + the late trial
      expect(okCount).to.equal(17);

      const T = t0 + MONTH + DAY;
      await time.increaseTo(T - 1);
      expect(await f.subscriptions.connect(f.keeper).renew.staticCall(ids)).to.equal(BigInt(okCount));
      const usdcBefore = await f.usdc.balanceOf(f.sm);
      const busdBefore = await f.blocklist.balanceOf(f.sm);
      const tx = await f.subscriptions.connect(f.keeper).renew(ids);
      const receipt = await tx.wait();
      expect(receipt!.status).to.equal(1);
      const block = await ethers.provider.getBlock(receipt!.blockNumber);
      expect(block!.timestamp).to.equal(T);

      for (const e of entries.ok) {
        await expect(tx)
          .to.emit(f.subscriptions, "SubscriptionCharged")
          .withArgs(e.id, f.merchantId, e.who.address, e.token, e.price, e.due, e.due + MONTH);
        expect((await f.subscriptions.subscription(e.id)).status).to.equal(Status.Active);
      }
      // The trial ended (and its grace too) long ago: the first period starts now.
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(trial.id, f.merchantId, f.other.address, f.usdcAddress, PRICE, T, T + MONTH);
      for (const [e, reason] of [
        [alice, Failure.TransferFailed],
        [bob, Failure.TransferFailed],
        [carol, Failure.TransferFailed],
        [erin, Failure.PriceAboveMaximum],
      ] as const) {
        await expect(tx).to.emit(f.subscriptions, "SubscriptionPaymentFailed").withArgs(e.id, f.merchantId, reason, e.due + GRACE);
        expect((await f.subscriptions.subscription(e.id)).status).to.equal(Status.PastDue);
      }
      const events = receipt!.logs.map((l) => f.subscriptions.interface.parseLog(l)).filter((l) => l !== null);
      expect(events.filter((e) => e!.name === "SubscriptionCharged")).to.have.length(okCount);
      expect(events.filter((e) => e!.name === "SubscriptionPaymentFailed")).to.have.length(4);
      expect(events.filter((e) => e!.name === "SubscriptionLapsed")).to.have.length(0);
      expect((await f.subscriptions.subscription(notDue.id)).periodEnd).to.equal(t0 + 10 * DAY + MONTH);
      expect((await f.subscriptions.subscription(canceled.id)).status).to.equal(Status.Canceled);

      // Money: 8 + 6 + 1 (trial) periods at PRICE and frank's raised price in USDC, dave's in BUSD.
      expect((await f.usdc.balanceOf(f.sm)) - usdcBefore).to.equal(15n * PRICE + PRICE + 1n);
      expect((await f.blocklist.balanceOf(f.sm)) - busdBefore).to.equal(PRICE);
      // Ended periods credited: 16 USDC subscriptions at PRICE (incl. failures), erin and frank at PRICE; the
      // cancelled one's earned share; BUSD: carol and dave.
      const canceledEarned = (await f.subscriptions.queryFilter(f.subscriptions.filters.SubscriptionCanceled(canceled.id)))[0].args
        .earned;
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(18n * PRICE + canceledEarned);
      expect(await f.subscriptions.merchantBalance(f.merchantId, busd)).to.equal(2n * PRICE);
      expect(receipt!.gasUsed).to.be.lt(TX_GAS_CAP);
      await expectSolvent(f, [f.usdcAddress, busd]);

      // Retries inside grace: alice approves, erin raises her maximum; bob is still broke. Past due, the two
      // charged start their new periods at the retry.
      await f.usdc.connect(f.alice).approve(f.sm, ethers.MaxUint256);
      await f.subscriptions.connect(f.erin).setMaxPrice(erin.id, PRICE + 1n);
      await time.setNextBlockTimestamp(T + DAY);
      const retry = await f.subscriptions.renew([alice.id, bob.id, erin.id]);
      await expect(retry)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(alice.id, f.merchantId, f.alice.address, f.usdcAddress, PRICE, T + DAY, T + DAY + MONTH);
      await expect(retry)
        .to.emit(f.subscriptions, "SubscriptionCharged")
        .withArgs(erin.id, f.merchantId, f.erin.address, f.usdcAddress, PRICE + 1n, T + DAY, T + DAY + MONTH);
      await expect(retry)
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(bob.id, f.merchantId, Failure.TransferFailed, bob.due + GRACE);
      await expect(retry).to.changeTokenBalances(f.usdc, [f.alice, f.erin, f.bob], [-PRICE, -(PRICE + 1n), 0]);

      // Grace over for bob and carol: the next failure lapses them.
      await time.setNextBlockTimestamp(carol.due + GRACE);
      const lapse = await f.subscriptions.renew([bob.id, carol.id]);
      await expect(lapse).to.emit(f.subscriptions, "SubscriptionLapsed").withArgs(bob.id, f.merchantId);
      await expect(lapse).to.emit(f.subscriptions, "SubscriptionLapsed").withArgs(carol.id, f.merchantId);
      expect((await f.subscriptions.subscription(bob.id)).status).to.equal(Status.Lapsed);
      expect((await f.subscriptions.subscription(carol.id)).status).to.equal(Status.Lapsed);
      // Unblocking carol later charges nothing.
      await f.blocklist.setBlocklisted(f.carol.address, false);
      await expect(f.subscriptions.renew([carol.id])).to.changeTokenBalances(f.blocklist, [f.carol], [0]);
      await expectSolvent(f, [f.usdcAddress, busd]);
    });
  });

  describe("MAX_BATCH", () => {
    it("a full batch of 250 distinct subscribers in the most expensive failure path (inexact transfer) fits under the per-transaction gas cap", async () => {
      const f = await loadFixture(subsFixture);
      const token = await f.fot.getAddress();
      const planId = await createPlan(f, { token, price: 1_000n });
      const ids: bigint[] = [];
      const subscribers: string[] = [];
      for (let i = 0; i < MAX_BATCH; i++) {
        const address = ethers.getAddress("0x" + (0xc0ffee000 + i).toString(16).padStart(40, "0"));
        await impersonateAccount(address);
        await setBalance(address, 10n ** 18n);
        await f.fot.mint(address, 10_000n);
        const s = await ethers.getSigner(address);
        await f.fot.connect(s).approve(f.sm, ethers.MaxUint256);
        ids.push((await subscribe(f, s, planId)).id);
        subscribers.push(address);
      }
      await f.fot.setFeeBps(100);
      await time.increase(MONTH);
      const tx = await f.subscriptions.renew(ids, { gasLimit: TX_GAS_CAP });
      const receipt = await tx.wait();
      expect(receipt!.status).to.equal(1);
      expect(receipt!.gasUsed).to.be.lt(TX_GAS_CAP);
      const failures = receipt!.logs
        .map((l) => f.subscriptions.interface.parseLog(l))
        .filter((l) => l?.name === "SubscriptionPaymentFailed");
      expect(failures).to.have.length(MAX_BATCH);
      expect(failures.every((l) => l!.args.reason === BigInt(Failure.InexactTransfer))).to.equal(true);
      expect(await f.subscriptions.claimable(subscribers[0], token)).to.equal(990n);
      expect(await f.subscriptions.claimable(subscribers[MAX_BATCH - 1], token)).to.equal(990n);
      expect(await f.subscriptions.merchantBalance(f.merchantId, token)).to.equal(1_000n * BigInt(MAX_BATCH));
      await expectSolvent(f, [token]);
    });
  });
});

function HOURS(n: number): number {
  return n * 3600;
}
