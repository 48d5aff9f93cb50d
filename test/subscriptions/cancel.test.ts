import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { DAY, GRACE, MONTH, PRICE, Status, TRIAL, expectSolvent, subsFixture, subscribe } from "./helpers";

describe("SubscriptionManager: cancel", () => {
  it("by the subscriber mid-period: refunds the unearned part, credits the earned part to the merchant", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    const elapsed = 10 * DAY;
    const earned = (PRICE * BigInt(elapsed)) / BigInt(MONTH);
    const refund = PRICE - earned;
    await time.setNextBlockTimestamp(start + elapsed);
    const tx = f.subscriptions.connect(f.payer).cancel(id);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, refund, earned, f.payer.address);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions, f.payout], [refund, -refund, 0]);
    await expect(tx).not.to.emit(f.subscriptions, "PayoutDeferred");

    const sub = await f.subscriptions.subscription(id);
    expect(sub.status).to.equal(Status.Canceled);
    expect(sub.unearned).to.equal(0n);
    expect(sub.collectedUntil).to.equal(start + elapsed);
    expect(sub.periodEnd).to.equal(start + MONTH);
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(earned);
    expect(await f.subscriptions.isDue(id)).to.equal(false);
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("returns the refunded amount", async () => {
    const f = await loadFixture(subsFixture);
    const { id } = await subscribe(f, f.payer, f.plans.monthly);
    // The static call runs on the latest block, the subscription's own second: nothing earned yet.
    expect(await f.subscriptions.connect(f.payer).cancel.staticCall(id)).to.equal(PRICE);
  });

  it("by the merchant owner or signer: the refund still goes to the subscriber; canceledBy names the operator", async () => {
    const f = await loadFixture(subsFixture);
    const a = await subscribe(f, f.payer, f.plans.monthly);
    const b = await subscribe(f, f.other, f.plans.monthly);
    await time.setNextBlockTimestamp(a.start + MONTH / 2);
    const byOwner = f.subscriptions.connect(f.merchantOwner).cancel(a.id);
    await expect(byOwner)
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(a.id, f.merchantId, f.payer.address, f.usdcAddress, PRICE / 2n, PRICE / 2n, f.merchantOwner.address);
    await expect(byOwner).to.changeTokenBalances(f.usdc, [f.payer, f.merchantOwner], [PRICE / 2n, 0]);

    const bySigner = f.subscriptions.connect(f.merchantSigner).cancel(b.id);
    await expect(bySigner)
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(b.id, f.merchantId, f.other.address, f.usdcAddress, (x: bigint) => x > 0n, (x: bigint) => x > 0n, f.merchantSigner.address);
    expect((await f.subscriptions.subscription(b.id)).status).to.equal(Status.Canceled);
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("refuses strangers, the merchant's payout address and other merchants' operators", async () => {
    const f = await loadFixture(subsFixture);
    const { id } = await subscribe(f, f.payer, f.plans.monthly);
    for (const caller of [f.other, f.payout, f.merchant2Owner, f.keeper]) {
      await expect(f.subscriptions.connect(caller).cancel(id))
        .to.be.revertedWithCustomError(f.subscriptions, "NotSubscriberOrMerchant")
        .withArgs(id, caller.address);
    }
    expect((await f.subscriptions.subscription(id)).status).to.equal(Status.Active);
  });

  it("refuses unknown ids, and cancelled or lapsed subscriptions", async () => {
    const f = await loadFixture(subsFixture);
    await expect(f.subscriptions.connect(f.payer).cancel(7))
      .to.be.revertedWithCustomError(f.subscriptions, "UnknownSubscription")
      .withArgs(7);

    const { id } = await subscribe(f, f.payer, f.plans.monthly);
    await f.subscriptions.connect(f.payer).cancel(id);
    await expect(f.subscriptions.connect(f.payer).cancel(id))
      .to.be.revertedWithCustomError(f.subscriptions, "InvalidSubscriptionStatus")
      .withArgs(Status.Canceled);
    await expect(f.subscriptions.connect(f.merchantOwner).cancel(id))
      .to.be.revertedWithCustomError(f.subscriptions, "InvalidSubscriptionStatus")
      .withArgs(Status.Canceled);

    const trial = await subscribe(f, f.alice, f.plans.trial);
    await time.setNextBlockTimestamp(trial.start + TRIAL + GRACE);
    await expect(f.subscriptions.renew([trial.id])).to.emit(f.subscriptions, "SubscriptionLapsed").withArgs(trial.id, f.merchantId);
    await expect(f.subscriptions.connect(f.alice).cancel(trial.id))
      .to.be.revertedWithCustomError(f.subscriptions, "InvalidSubscriptionStatus")
      .withArgs(Status.Lapsed);
  });

  it("during a trial: nothing to refund or earn, no transfer", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.trial);
    await time.setNextBlockTimestamp(start + DAY);
    const tx = f.subscriptions.connect(f.payer).cancel(id);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, 0, 0, f.payer.address);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [0, 0]);
    expect((await f.subscriptions.subscription(id)).status).to.equal(Status.Canceled);
    // A cancelled trial is never charged.
    await time.increase(TRIAL);
    expect(await f.subscriptions.renew.staticCall([id])).to.equal(0n);
    await expect(f.subscriptions.renew([id])).not.to.emit(f.subscriptions, "SubscriptionCharged");
  });

  it("while past due: nothing to refund (the ended period was already credited to the merchant)", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await f.usdc.connect(f.payer).approve(f.sm, 0);
    await time.setNextBlockTimestamp(start + MONTH);
    await f.subscriptions.renew([id]);
    expect((await f.subscriptions.subscription(id)).status).to.equal(Status.PastDue);
    const tx = f.subscriptions.connect(f.payer).cancel(id);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, 0, 0, f.payer.address);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payer, f.subscriptions], [0, 0]);
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("after the period ended but before any renewal: the whole charge is earned, nothing refunded", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await time.setNextBlockTimestamp(start + MONTH + DAY);
    const tx = f.subscriptions.connect(f.payer).cancel(id);
    await expect(tx)
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, 0, PRICE, f.payer.address);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payer], [0]);
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);
    // The cancelled subscription is not renewed.
    await expect(f.subscriptions.renew([id])).not.to.emit(f.subscriptions, "SubscriptionCharged");
    expect(await f.usdc.balanceOf(f.sm)).to.equal(PRICE);
  });

  it("works while paused and on a deactivated plan", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await f.subscriptions.connect(f.owner).setPaused(true);
    await f.subscriptions.connect(f.merchantOwner).setPlanActive(f.plans.monthly, false);
    await time.setNextBlockTimestamp(start + 3 * DAY);
    await expect(f.subscriptions.connect(f.payer).cancel(id))
      .to.emit(f.subscriptions, "SubscriptionCanceled")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE - PRICE / 10n, PRICE / 10n, f.payer.address);
    expect(await f.usdc.balanceOf(f.sm)).to.equal(PRICE / 10n); // 3 of 30 days, now the merchant's
    await expectSolvent(f, [f.usdcAddress]);
  });
});
