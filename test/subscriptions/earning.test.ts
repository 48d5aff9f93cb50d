import { expect } from "chai";
import fc from "fast-check";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  DAY,
  MONTH,
  PRICE,
  Status,
  TRIAL,
  createPlan,
  earnedAt,
  expectSolvent,
  subsFixture,
  subscribe,
} from "./helpers";

describe("SubscriptionManager: linear earning", () => {
  describe("earnedNow", () => {
    it("is 0% at the start, 25%, 50% and 100% along the period, and stays at 100% after it", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      expect(await f.subscriptions.earnedNow(id)).to.equal(0n);
      for (const [fraction, expected] of [
        [0.25, PRICE / 4n],
        [0.5, PRICE / 2n],
        [1, PRICE],
      ] as const) {
        await time.increaseTo(start + MONTH * fraction);
        expect(await f.subscriptions.earnedNow(id), `at ${fraction * 100}%`).to.equal(expected);
      }
      await time.increaseTo(start + 2 * MONTH + 5);
      expect(await f.subscriptions.earnedNow(id)).to.equal(PRICE);
      // Earning is a view: nothing moved.
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(0n);
      expect((await f.subscriptions.subscription(id)).unearned).to.equal(PRICE);
    });

    it("is zero for trials, cancelled, unknown subscriptions and one second into a 1-unit period", async () => {
      const f = await loadFixture(subsFixture);
      const trial = await subscribe(f, f.payer, f.plans.trial);
      await time.increase(TRIAL / 2);
      expect(await f.subscriptions.earnedNow(trial.id)).to.equal(0n);
      const active = await subscribe(f, f.payer, f.plans.monthly);
      await time.increase(DAY);
      await f.subscriptions.connect(f.payer).cancel(active.id);
      await time.increase(DAY);
      expect(await f.subscriptions.earnedNow(active.id)).to.equal(0n);
      expect(await f.subscriptions.earnedNow(12345)).to.equal(0n);
      const tiny = await createPlan(f, { price: 1n, period: 3, grace: 0 });
      const t = await subscribe(f, f.payer, tiny);
      await time.increaseTo(t.start + 2);
      expect(await f.subscriptions.earnedNow(t.id)).to.equal(0n); // floor(1 * 2 / 3)
      await time.increaseTo(t.start + 3);
      expect(await f.subscriptions.earnedNow(t.id)).to.equal(1n);
    });

    it("after a withdrawal restarts from the collected point and earns the remainder linearly to the period end", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await time.setNextBlockTimestamp(start + MONTH / 2);
      await f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [id]);
      let sub = await f.subscriptions.subscription(id);
      expect(sub.unearned).to.equal(PRICE / 2n);
      expect(sub.collectedUntil).to.equal(start + MONTH / 2);
      expect(await f.subscriptions.earnedNow(id)).to.equal(0n);
      await time.increaseTo(start + (3 * MONTH) / 4);
      expect(await f.subscriptions.earnedNow(id)).to.equal(PRICE / 4n);
      await time.increaseTo(start + MONTH);
      expect(await f.subscriptions.earnedNow(id)).to.equal(PRICE / 2n);
      sub = await f.subscriptions.subscription(id);
      expect(sub.periodEnd).to.equal(start + MONTH);
    });
  });

  describe("withdraw mid-period, then cancel", () => {
    it("pays the merchant what was earned at each step and refunds exactly the rest", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);

      await time.setNextBlockTimestamp(start + MONTH / 2);
      const w = f.subscriptions.connect(f.keeper).withdraw(f.merchantId, f.usdcAddress, [id]);
      await expect(w).to.emit(f.subscriptions, "MerchantWithdrawal").withArgs(f.merchantId, f.usdcAddress, f.payout.address, PRICE / 2n);
      await expect(w).to.changeTokenBalances(f.usdc, [f.payout, f.subscriptions], [PRICE / 2n, -PRICE / 2n]);

      await time.setNextBlockTimestamp(start + (3 * MONTH) / 4);
      const c = f.subscriptions.connect(f.payer).cancel(id);
      await expect(c)
        .to.emit(f.subscriptions, "SubscriptionCanceled")
        .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE / 4n, PRICE / 4n, f.payer.address);
      await expect(c).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [PRICE / 4n, -PRICE / 4n]);
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE / 4n);
      await expectSolvent(f, [f.usdcAddress]);

      await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [id])).to.changeTokenBalances(
        f.usdc,
        [f.payout, f.subscriptions],
        [PRICE / 4n, -PRICE / 4n],
      );
      expect(await f.usdc.balanceOf(f.sm)).to.equal(0n);
      expect(await f.usdc.balanceOf(f.payout.address)).to.equal((PRICE * 3n) / 4n);
    });
  });

  describe("rounding", () => {
    it("rounds pro-rata refunds so that no more than was held is ever paid out (1-unit and prime prices, odd cancel times)", async () => {
      const f = await loadFixture(subsFixture);
      const cases: { price: bigint; period: number; cancelAfter: number }[] = [
        { price: 1n, period: 3, cancelAfter: 1 },
        { price: 1n, period: 3, cancelAfter: 2 },
        { price: 1n, period: 2, cancelAfter: 1 },
        { price: 1n, period: MONTH, cancelAfter: MONTH - 1 },
        { price: 2n, period: 3, cancelAfter: 1 },
        { price: 7n, period: 3, cancelAfter: 2 },
        { price: 1_000_003n, period: MONTH + 7, cancelAfter: 12_345 },
        { price: 1_000_003n, period: MONTH + 7, cancelAfter: 1_234_567 },
        { price: 999_999_937n, period: 7 * DAY + 13, cancelAfter: 3 * DAY + 11 },
        { price: 104_729n, period: 97, cancelAfter: 89 },
        { price: 13n, period: 1, cancelAfter: 1 },
        { price: 13n, period: 5, cancelAfter: 9 },
      ];
      let held = 0n;
      let earnedTotal = 0n;
      for (const c of cases) {
        const planId = await createPlan(f, { price: c.price, period: c.period, grace: 0 });
        const { id, start } = await subscribe(f, f.payer, planId);
        held += c.price;
        expect(await f.usdc.balanceOf(f.sm)).to.equal(held);

        await time.setNextBlockTimestamp(start + c.cancelAfter);
        const expectedEarned = earnedAt(c.price, c.cancelAfter, c.period);
        const expectedRefund = c.price - expectedEarned; // rounded up: the subscriber gets the fraction
        const refund = await f.subscriptions.connect(f.payer).cancel.staticCall(id).catch(() => -1n);
        const tx = f.subscriptions.connect(f.payer).cancel(id);
        await expect(tx)
          .to.emit(f.subscriptions, "SubscriptionCanceled")
          .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, expectedRefund, expectedEarned, f.payer.address);
        await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [expectedRefund, -expectedRefund]);
        // The static call ran on the latest block (the subscription's own second): nothing was earned yet.
        expect(refund).to.equal(c.price);
        expect(expectedRefund + expectedEarned).to.equal(c.price);
        if (c.price * BigInt(c.cancelAfter) % BigInt(c.period) !== 0n && c.cancelAfter < c.period) {
          // Not an exact split: the refund carries the fractional unit.
          expect(expectedRefund * BigInt(c.period)).to.be.gt(c.price * BigInt(c.period - c.cancelAfter));
        }
        held -= expectedRefund;
        earnedTotal += expectedEarned;
        expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(earnedTotal);
        expect(await f.usdc.balanceOf(f.sm)).to.equal(held);
        await expectSolvent(f, [f.usdcAddress]);
      }
      // Everything still held is exactly the merchant's, and can be withdrawn to the last unit.
      await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [])).to.changeTokenBalances(
        f.usdc,
        [f.payout, f.subscriptions],
        [earnedTotal, -earnedTotal],
      );
      expect(await f.usdc.balanceOf(f.sm)).to.equal(0n);
    });

    it("never puts the merchant ahead of linear through repeated withdrawals at odd times; all parts sum to the charge (property)", async () => {
      const runs = { cases: 0, withdrawals: 0 };
      await fc.assert(
        fc.asyncProperty(
          fc.bigInt({ min: 1n, max: 10n ** 12n }),
          fc.integer({ min: 1, max: 400 * DAY }),
          fc.uniqueArray(fc.integer({ min: 1, max: 1_200 }), { minLength: 2, maxLength: 5 }), // per mille of the period
          async (price, period, fractions) => {
            runs.cases++;
            const f = await loadFixture(subsFixture);
            await f.usdc.mint(f.payer.address, price);
            const planId = await createPlan(f, { price, period, grace: 0 });
            const { id, start } = await subscribe(f, f.payer, planId);
            const offsets = [...new Set(fractions.map((x) => Math.max(1, Math.floor((x * period) / 1_000))))].sort((a, b) => a - b);
            const cancelAt = offsets.pop()!;
            let withdrawn = 0n;
            for (const offset of offsets) {
              await time.setNextBlockTimestamp(start + offset);
              const before = await f.usdc.balanceOf(f.payout.address);
              runs.withdrawals++;
              await f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [id]).catch((e: Error) => {
                // Early in a long period of a tiny price nothing may have been earned yet.
                expect(e.message).to.contain("NothingToWithdraw");
              });
              withdrawn += (await f.usdc.balanceOf(f.payout.address)) - before;
              expect(withdrawn).to.be.lte(earnedAt(price, offset, period));
              expect(withdrawn).to.be.gte(earnedAt(price, offset, period) - BigInt(offsets.length));
            }
            await time.setNextBlockTimestamp(start + cancelAt);
            const payerBefore = await f.usdc.balanceOf(f.payer.address);
            await f.subscriptions.connect(f.payer).cancel(id);
            const refund = (await f.usdc.balanceOf(f.payer.address)) - payerBefore;
            const earnedAtCancel = await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress);
            expect(withdrawn + earnedAtCancel).to.be.lte(earnedAt(price, cancelAt, period));
            expect(withdrawn + earnedAtCancel + refund).to.equal(price);
            expect(await f.usdc.balanceOf(f.sm)).to.equal(earnedAtCancel);
            if (offsets.length === 0) expect(earnedAtCancel).to.equal(earnedAt(price, cancelAt, period));
          },
        ),
        { numRuns: 25, seed: 9, endOnFailure: true },
      );
      expect(runs.cases).to.equal(25);
      expect(runs.withdrawals).to.be.greaterThan(25);
    });
  });

  describe("isDue", () => {
    it("turns true exactly at periodEnd, and is false for cancelled or unknown subscriptions", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await time.increaseTo(start + MONTH - 1);
      expect(await f.subscriptions.isDue(id)).to.equal(false);
      await time.increaseTo(start + MONTH);
      expect(await f.subscriptions.isDue(id)).to.equal(true);
      expect(await f.subscriptions.isDue(999)).to.equal(false);
      await f.subscriptions.connect(f.payer).cancel(id);
      expect(await f.subscriptions.isDue(id)).to.equal(false);
      expect((await f.subscriptions.subscription(id)).status).to.equal(Status.Canceled);
    });

    it("is true for a trial at its end and for a past-due subscription", async () => {
      const f = await loadFixture(subsFixture);
      const trial = await subscribe(f, f.alice, f.plans.trial);
      await time.increaseTo(trial.start + TRIAL);
      expect(await f.subscriptions.isDue(trial.id)).to.equal(true);
      await f.subscriptions.renew([trial.id]); // alice has no allowance: PastDue
      expect((await f.subscriptions.subscription(trial.id)).status).to.equal(Status.PastDue);
      expect(await f.subscriptions.isDue(trial.id)).to.equal(true);
      // A trial has no charge to credit when it ends unpaid.
      expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(0n);
    });
  });
});
