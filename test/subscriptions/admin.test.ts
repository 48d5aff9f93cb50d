import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import {
  Failure,
  GRACE,
  MAX_BATCH,
  MAX_PERIOD,
  MAX_TRIAL,
  MONTH,
  PRICE,
  Status,
  TRIAL,
  USDC,
  expectSolvent,
  subsFixture,
  subscribe,
} from "./helpers";

describe("SubscriptionManager: admin, setMaxPrice, claim", () => {
  describe("deployment", () => {
    it("wires the owner, the registry and the limits", async () => {
      const f = await loadFixture(subsFixture);
      expect(await f.subscriptions.owner()).to.equal(f.owner.address);
      expect(await f.subscriptions.pendingOwner()).to.equal(ethers.ZeroAddress);
      expect(await f.subscriptions.REGISTRY()).to.equal(await f.escrow.getAddress());
      expect(await f.subscriptions.MAX_PERIOD()).to.equal(MAX_PERIOD);
      expect(await f.subscriptions.MAX_TRIAL()).to.equal(MAX_TRIAL);
      expect(await f.subscriptions.MAX_BATCH()).to.equal(MAX_BATCH);
      expect(await f.subscriptions.NATIVE_PAYOUT_GAS()).to.equal(50_000n);
      expect(await f.subscriptions.paused()).to.equal(false);
      expect(await f.subscriptions.subscriptionCount()).to.equal(0n);
    });

    it("refuses a zero registry and a zero owner", async () => {
      const f = await loadFixture(subsFixture);
      const factory = await ethers.getContractFactory("SubscriptionManager");
      await expect(factory.deploy(f.owner.address, ethers.ZeroAddress)).to.be.revertedWithCustomError(factory, "ZeroAddress");
      await expect(factory.deploy(ethers.ZeroAddress, await f.escrow.getAddress()))
        .to.be.revertedWithCustomError(factory, "OwnableInvalidOwner")
        .withArgs(ethers.ZeroAddress);
    });
  });

  describe("setPaused", () => {
    it("the owner pauses and resumes new subscriptions, emitting PausedSet; everything else keeps working", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await expect(f.subscriptions.connect(f.owner).setPaused(true)).to.emit(f.subscriptions, "PausedSet").withArgs(true);
      expect(await f.subscriptions.paused()).to.equal(true);
      await expect(f.subscriptions.connect(f.other).subscribe(f.plans.monthly, PRICE)).to.be.revertedWithCustomError(
        f.subscriptions,
        "SubscriptionsPaused",
      );
      // Merchants can still manage plans; subscribers can still manage subscriptions.
      await expect(f.subscriptions.connect(f.merchantOwner).createPlan(f.merchantId, f.usdcAddress, PRICE, MONTH, 0, 0)).to.emit(
        f.subscriptions,
        "PlanCreated",
      );
      await expect(f.subscriptions.connect(f.payer).setMaxPrice(id, USDC(20))).to.emit(f.subscriptions, "MaxPriceChanged");
      await time.setNextBlockTimestamp(start + MONTH);
      await expect(f.subscriptions.renew([id])).to.emit(f.subscriptions, "SubscriptionCharged");
      await expect(f.subscriptions.withdraw(f.merchantId, f.usdcAddress, [id])).to.emit(f.subscriptions, "MerchantWithdrawal");

      await expect(f.subscriptions.connect(f.owner).setPaused(false)).to.emit(f.subscriptions, "PausedSet").withArgs(false);
      expect(await f.subscriptions.paused()).to.equal(false);
      await expect(f.subscriptions.connect(f.other).subscribe(f.plans.monthly, PRICE)).to.emit(f.subscriptions, "SubscriptionCreated");
      await expectSolvent(f, [f.usdcAddress]);
    });

    it("refuses everyone but the owner (including merchants)", async () => {
      const f = await loadFixture(subsFixture);
      for (const caller of [f.merchantOwner, f.payer, f.feeRecipient]) {
        await expect(f.subscriptions.connect(caller).setPaused(true))
          .to.be.revertedWithCustomError(f.subscriptions, "OwnableUnauthorizedAccount")
          .withArgs(caller.address);
      }
      expect(await f.subscriptions.paused()).to.equal(false);
    });

    it("follows a two-step ownership transfer", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.owner).transferOwnership(f.keeper.address))
        .to.emit(f.subscriptions, "OwnershipTransferStarted")
        .withArgs(f.owner.address, f.keeper.address);
      expect(await f.subscriptions.pendingOwner()).to.equal(f.keeper.address);
      // Not yet accepted: the old owner still rules.
      await expect(f.subscriptions.connect(f.keeper).setPaused(true)).to.be.revertedWithCustomError(
        f.subscriptions,
        "OwnableUnauthorizedAccount",
      );
      await expect(f.subscriptions.connect(f.other).acceptOwnership())
        .to.be.revertedWithCustomError(f.subscriptions, "OwnableUnauthorizedAccount")
        .withArgs(f.other.address);
      await expect(f.subscriptions.connect(f.keeper).acceptOwnership())
        .to.emit(f.subscriptions, "OwnershipTransferred")
        .withArgs(f.owner.address, f.keeper.address);
      expect(await f.subscriptions.owner()).to.equal(f.keeper.address);
      expect(await f.subscriptions.pendingOwner()).to.equal(ethers.ZeroAddress);
      await expect(f.subscriptions.connect(f.owner).setPaused(true))
        .to.be.revertedWithCustomError(f.subscriptions, "OwnableUnauthorizedAccount")
        .withArgs(f.owner.address);
      await expect(f.subscriptions.connect(f.keeper).setPaused(true)).to.emit(f.subscriptions, "PausedSet").withArgs(true);
    });

    it("refuses to renounce ownership (an ownerless manager could never be unpaused)", async () => {
      const f = await loadFixture(subsFixture);
      await f.subscriptions.connect(f.owner).setPaused(true);
      await expect(f.subscriptions.connect(f.owner).renounceOwnership()).to.be.revertedWithCustomError(
        f.subscriptions,
        "RenounceOwnershipDisabled",
      );
      await expect(f.subscriptions.connect(f.payer).renounceOwnership())
        .to.be.revertedWithCustomError(f.subscriptions, "OwnableUnauthorizedAccount")
        .withArgs(f.payer.address);
      expect(await f.subscriptions.owner()).to.equal(f.owner.address);
      await expect(f.subscriptions.connect(f.owner).setPaused(false)).to.emit(f.subscriptions, "PausedSet").withArgs(false);
    });
  });

  describe("setMaxPrice", () => {
    it("lets the subscriber change the cap while Trialing, Active or PastDue, emitting MaxPriceChanged", async () => {
      const f = await loadFixture(subsFixture);
      const trial = await subscribe(f, f.alice, f.plans.trial);
      await expect(f.subscriptions.connect(f.alice).setMaxPrice(trial.id, USDC(12)))
        .to.emit(f.subscriptions, "MaxPriceChanged")
        .withArgs(trial.id, USDC(12));
      expect((await f.subscriptions.subscription(trial.id)).maxPrice).to.equal(USDC(12));
      const active = await subscribe(f, f.payer, f.plans.monthly);
      await expect(f.subscriptions.connect(f.payer).setMaxPrice(active.id, USDC(50)))
        .to.emit(f.subscriptions, "MaxPriceChanged")
        .withArgs(active.id, USDC(50));
      await time.setNextBlockTimestamp(trial.start + TRIAL);
      await f.subscriptions.renew([trial.id]); // alice has no allowance
      expect((await f.subscriptions.subscription(trial.id)).status).to.equal(Status.PastDue);
      await expect(f.subscriptions.connect(f.alice).setMaxPrice(trial.id, USDC(9)))
        .to.emit(f.subscriptions, "MaxPriceChanged")
        .withArgs(trial.id, USDC(9));
      // Nothing else about the subscriptions changed.
      expect((await f.subscriptions.subscription(active.id)).unearned).to.equal(PRICE);
    });

    it("a zero cap makes the next renewal fail with PriceAboveMaximum instead of charging", async () => {
      const f = await loadFixture(subsFixture);
      const { id, start } = await subscribe(f, f.payer, f.plans.monthly);
      await f.subscriptions.connect(f.payer).setMaxPrice(id, 0);
      await time.setNextBlockTimestamp(start + MONTH);
      const tx = f.subscriptions.renew([id]);
      await expect(tx)
        .to.emit(f.subscriptions, "SubscriptionPaymentFailed")
        .withArgs(id, f.merchantId, Failure.PriceAboveMaximum, start + MONTH + GRACE);
      await expect(tx).to.changeTokenBalances(f.usdc, [f.payer], [0]);
    });

    it("refuses unknown ids, callers other than the subscriber, and ended subscriptions", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.payer).setMaxPrice(1, PRICE))
        .to.be.revertedWithCustomError(f.subscriptions, "UnknownSubscription")
        .withArgs(1);
      const { id } = await subscribe(f, f.payer, f.plans.monthly);
      for (const caller of [f.other, f.merchantOwner, f.merchantSigner]) {
        await expect(f.subscriptions.connect(caller).setMaxPrice(id, USDC(100)))
          .to.be.revertedWithCustomError(f.subscriptions, "NotSubscriber")
          .withArgs(f.payer.address, caller.address);
      }
      await f.subscriptions.connect(f.payer).cancel(id);
      await expect(f.subscriptions.connect(f.payer).setMaxPrice(id, USDC(100)))
        .to.be.revertedWithCustomError(f.subscriptions, "InvalidSubscriptionStatus")
        .withArgs(Status.Canceled);
      expect((await f.subscriptions.subscription(id)).maxPrice).to.equal(PRICE);
    });
  });

  describe("claim", () => {
    it("refuses an empty balance and the zero address as recipient", async () => {
      const f = await loadFixture(subsFixture);
      await expect(f.subscriptions.connect(f.payer).claim(f.usdcAddress, f.payer.address))
        .to.be.revertedWithCustomError(f.subscriptions, "NothingToClaim")
        .withArgs(f.payer.address, f.usdcAddress);
      await expect(f.subscriptions.connect(f.payer).claim(ethers.ZeroAddress, f.payer.address))
        .to.be.revertedWithCustomError(f.subscriptions, "NothingToClaim")
        .withArgs(f.payer.address, ethers.ZeroAddress);
      await expect(f.subscriptions.connect(f.payer).claim(f.usdcAddress, ethers.ZeroAddress)).to.be.revertedWithCustomError(
        f.subscriptions,
        "ZeroAddress",
      );
      expect(await f.subscriptions.claimable(f.payer.address, f.usdcAddress)).to.equal(0n);
    });
  });
});
