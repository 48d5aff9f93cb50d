import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { DAY, GRACE, MONTH, PRICE, Status, TRIAL, createPlan, expectSolvent, fundAndApprove, subsFixture, subscribe } from "./helpers";

describe("SubscriptionManager: withdraw", () => {
  it("pays the merchant balance to the payout address for anyone, returning the amount and emitting MerchantWithdrawal", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await time.setNextBlockTimestamp(start + MONTH);
    await f.subscriptions.renew([id]);
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(PRICE);
    expect(await f.subscriptions.connect(f.keeper).withdraw.staticCall(f.merchantId, f.usdcAddress, [])).to.equal(PRICE);
    const tx = f.subscriptions.connect(f.keeper).withdraw(f.merchantId, f.usdcAddress, []);
    await expect(tx).to.emit(f.subscriptions, "MerchantWithdrawal").withArgs(f.merchantId, f.usdcAddress, f.payout.address, PRICE);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payout, f.subscriptions, f.keeper], [PRICE, -PRICE, 0]);
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(0n);
    await expect(f.subscriptions.connect(f.keeper).withdraw(f.merchantId, f.usdcAddress, []))
      .to.be.revertedWithCustomError(f.subscriptions, "NothingToWithdraw")
      .withArgs(f.merchantId, f.usdcAddress);
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("collects what listed subscriptions earned so far plus the merchant balance, advancing each one's collected point", async () => {
    const f = await loadFixture(subsFixture);
    const a = await subscribe(f, f.payer, f.plans.monthly);
    const b = await subscribe(f, f.other, f.plans.premium);
    const c = await subscribe(f, f.payer, f.plans.monthly);
    await f.subscriptions.connect(f.payer).cancel(c.id); // one second earned goes to the merchant balance
    const balance = await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress);
    const now = b.start + 6 * DAY;
    await time.setNextBlockTimestamp(now);
    const earnedA = (PRICE * BigInt(now - a.start)) / BigInt(MONTH);
    const earnedB = (25_000_000n * 6n) / 30n;
    const total = balance + earnedA + earnedB;
    const tx = f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [a.id, b.id, c.id]);
    await expect(tx).to.emit(f.subscriptions, "MerchantWithdrawal").withArgs(f.merchantId, f.usdcAddress, f.payout.address, total);
    await expect(tx).to.changeTokenBalances(f.usdc, [f.payout, f.subscriptions], [total, -total]);
    const subA = await f.subscriptions.subscription(a.id);
    expect(subA.unearned).to.equal(PRICE - earnedA);
    expect(subA.collectedUntil).to.equal(now);
    expect(subA.periodEnd).to.equal(a.start + MONTH);
    expect(subA.status).to.equal(Status.Active);
    expect((await f.subscriptions.subscription(b.id)).unearned).to.equal(25_000_000n - earnedB);
    expect(await f.subscriptions.earnedNow(a.id)).to.equal(0n);
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("after the period end collects the whole charge; the later renewal does not credit it twice", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await time.setNextBlockTimestamp(start + MONTH + DAY);
    await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [id])).to.changeTokenBalances(f.usdc, [f.payout], [PRICE]);
    let sub = await f.subscriptions.subscription(id);
    expect(sub.unearned).to.equal(0n);
    expect(sub.collectedUntil).to.equal(start + MONTH);
    await time.setNextBlockTimestamp(start + MONTH + 2 * DAY);
    await expect(f.subscriptions.renew([id]))
      .to.emit(f.subscriptions, "SubscriptionCharged")
      .withArgs(id, f.merchantId, f.payer.address, f.usdcAddress, PRICE, start + MONTH, start + 2 * MONTH);
    expect(await f.subscriptions.merchantBalance(f.merchantId, f.usdcAddress)).to.equal(0n);
    sub = await f.subscriptions.subscription(id);
    expect(sub.unearned).to.equal(PRICE);
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("counts a subscription listed twice only once", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await time.setNextBlockTimestamp(start + MONTH / 2);
    await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [id, id, id])).to.changeTokenBalances(
      f.usdc,
      [f.payout],
      [PRICE / 2n],
    );
    await expectSolvent(f, [f.usdcAddress]);
  });

  it("NothingToWithdraw when the listed subscriptions earned nothing (a trial) and the balance is zero", async () => {
    const f = await loadFixture(subsFixture);
    const trial = await subscribe(f, f.payer, f.plans.trial);
    await time.increase(TRIAL / 2);
    await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [trial.id]))
      .to.be.revertedWithCustomError(f.subscriptions, "NothingToWithdraw")
      .withArgs(f.merchantId, f.usdcAddress);
    await expect(f.subscriptions.withdraw(f.merchant2Id, f.usdcAddress, []))
      .to.be.revertedWithCustomError(f.subscriptions, "NothingToWithdraw")
      .withArgs(f.merchant2Id, f.usdcAddress);
  });

  it("SubscriptionMismatch for a subscription of another merchant, of another token, or an unknown id", async () => {
    const f = await loadFixture(subsFixture);
    const dai = await f.dai.getAddress();
    const mine = await subscribe(f, f.payer, f.plans.monthly);
    const theirs = await subscribe(f, f.payer, f.plans.merchant2);
    const daiPlan = await createPlan(f, { token: dai, price: 10n ** 18n });
    await fundAndApprove(f.dai, f.alice, f.sm, 10n ** 20n);
    const daiSub = await subscribe(f, f.alice, daiPlan);
    await time.increase(DAY);

    await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [mine.id, theirs.id]))
      .to.be.revertedWithCustomError(f.subscriptions, "SubscriptionMismatch")
      .withArgs(theirs.id);
    await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [daiSub.id]))
      .to.be.revertedWithCustomError(f.subscriptions, "SubscriptionMismatch")
      .withArgs(daiSub.id);
    await expect(f.subscriptions.withdraw(f.merchantId, dai, [mine.id]))
      .to.be.revertedWithCustomError(f.subscriptions, "SubscriptionMismatch")
      .withArgs(mine.id);
    await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [777]))
      .to.be.revertedWithCustomError(f.subscriptions, "SubscriptionMismatch")
      .withArgs(777);
    // Nothing moved.
    expect((await f.subscriptions.subscription(mine.id)).unearned).to.equal(PRICE);
    expect(await f.usdc.balanceOf(f.payout.address)).to.equal(0n);

    // Each merchant withdraws its own, to its own payout.
    await expect(f.subscriptions.withdraw(f.merchant2Id, f.usdcAddress, [theirs.id]))
      .to.emit(f.subscriptions, "MerchantWithdrawal")
      .withArgs(f.merchant2Id, f.usdcAddress, f.payout2.address, (x: bigint) => x > 0n);
    expect(await f.usdc.balanceOf(f.payout.address)).to.equal(0n);
    await expectSolvent(f, [f.usdcAddress, dai]);
  });

  it("pays the current payout address after the owner changes it", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await f.escrow.connect(f.merchantOwner).setMerchantPayout(f.merchantId, f.keeper.address);
    await time.setNextBlockTimestamp(start + MONTH);
    await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [id]))
      .to.emit(f.subscriptions, "MerchantWithdrawal")
      .withArgs(f.merchantId, f.usdcAddress, f.keeper.address, PRICE);
    expect(await f.usdc.balanceOf(f.keeper.address)).to.equal(PRICE);
  });

  it("credits a payout address that cannot receive (blocklisted) as claimable; it claims elsewhere", async () => {
    const f = await loadFixture(subsFixture);
    const busd = await f.blocklist.getAddress();
    const planId = await createPlan(f, { token: busd });
    await fundAndApprove(f.blocklist, f.alice, f.sm, PRICE * 3n);
    const { id, start } = await subscribe(f, f.alice, planId);
    await f.blocklist.setBlocklisted(f.payout.address, true);
    await time.setNextBlockTimestamp(start + MONTH / 2);
    const tx = f.subscriptions.withdraw(f.merchantId, busd, [id]);
    await expect(tx).to.emit(f.subscriptions, "PayoutDeferred").withArgs(f.payout.address, busd, PRICE / 2n);
    await expect(tx).to.emit(f.subscriptions, "MerchantWithdrawal").withArgs(f.merchantId, busd, f.payout.address, PRICE / 2n);
    await expect(tx).to.changeTokenBalances(f.blocklist, [f.payout, f.subscriptions], [0, 0]);
    expect(await f.subscriptions.claimable(f.payout.address, busd)).to.equal(PRICE / 2n);
    await expectSolvent(f, [busd]);

    // The payout key cannot receive at its own address, but can claim to another one.
    await expect(f.subscriptions.connect(f.payout).claim(busd, f.payout.address))
      .to.be.revertedWithCustomError(f.blocklist, "Blocklisted")
      .withArgs(f.payout.address);
    await expect(f.subscriptions.connect(f.payout).claim(busd, f.keeper.address))
      .to.emit(f.subscriptions, "Claimed")
      .withArgs(f.payout.address, busd, f.keeper.address, PRICE / 2n);
    expect(await f.blocklist.balanceOf(f.keeper.address)).to.equal(PRICE / 2n);
    expect(await f.subscriptions.claimable(f.payout.address, busd)).to.equal(0n);
    await expect(f.subscriptions.connect(f.payout).claim(busd, f.keeper.address))
      .to.be.revertedWithCustomError(f.subscriptions, "NothingToClaim")
      .withArgs(f.payout.address, busd);
    await expectSolvent(f, [busd]);
  });

  it("works while paused", async () => {
    const f = await loadFixture(subsFixture);
    const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
    await f.subscriptions.connect(f.owner).setPaused(true);
    await time.setNextBlockTimestamp(start + MONTH);
    await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [id])).to.changeTokenBalances(f.usdc, [f.payout], [PRICE]);
  });
});

describe("SubscriptionManager: withdraw to the manager itself", () => {
  it("refuses a payout address that is the manager, where the money would leave the accounting", async () => {
    const f = await loadFixture(subsFixture);
    // The registry refuses a deployed manager as payout; a payout registered at the address a manager is deployed
    // to *afterwards* is the case left, and the manager refuses to pay itself.
    const nextManager = ethers.getCreateAddress({
      from: f.owner.address,
      nonce: await ethers.provider.getTransactionCount(f.owner.address),
    });
    await f.escrow.connect(f.merchant2Owner).registerMerchant(nextManager, f.merchant2Owner.address, 0, "0x");
    const merchant3 = 3n;
    const manager = await ethers.deployContract("SubscriptionManager", [f.owner.address, await f.escrow.getAddress()], f.owner);
    expect(await manager.getAddress()).to.equal(nextManager);
    await manager.connect(f.merchant2Owner).createPlan(merchant3, f.usdcAddress, PRICE, MONTH, 0, GRACE);
    await f.usdc.connect(f.payer).approve(nextManager, PRICE);
    await manager.connect(f.payer).subscribe(1, PRICE);
    await time.increase(MONTH);

    await expect(manager.withdraw(merchant3, f.usdcAddress, [1]))
      .to.be.revertedWithCustomError(manager, "InvalidRecipient")
      .withArgs(nextManager);
    expect(await manager.earnedNow(1)).to.equal(PRICE);
    expect(await f.usdc.balanceOf(nextManager)).to.equal(PRICE);
  });
});
