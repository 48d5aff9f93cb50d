/**
 * SubscriptionManager handlers: plans, subscriptions, charges and the ledger movements of subscription money.
 * Pure functions of the event and the database, so Ponder can replay them after a reorg.
 */
import { ponder } from "ponder:registry";
import { charge, plan, subscription } from "ponder:schema";
import { eventId, locate, recordMovement } from "./ledger";
import { recordActivity } from "./activity";
import { recordClaimable, recordClaimEvent, recordProtocolEvent } from "./shared";

const FAILURES = ["price_above_maximum", "transfer_failed", "inexact_transfer"] as const;

ponder.on("SubscriptionManager:PlanCreated", async ({ event, context }) => {
  const { planId, merchantId, token, price, period, trial, gracePeriod } = event.args;
  await context.db.insert(plan).values({
    chainId: context.chain.id,
    planId,
    merchantId,
    token,
    price,
    period,
    trial,
    gracePeriod,
    active: true,
    createdAt: event.block.timestamp,
    createdTransaction: event.transaction.hash,
  });
});

ponder.on("SubscriptionManager:PlanUpdated", async ({ event, context }) => {
  await context.db
    .update(plan, { chainId: context.chain.id, planId: event.args.planId })
    .set({ price: event.args.price, active: event.args.active });
});

ponder.on("SubscriptionManager:SubscriptionCreated", async ({ event, context }) => {
  const { subscriptionId, planId, merchantId, subscriber, maxPrice, trialEndsAt } = event.args;
  const chainId = context.chain.id;
  const subscribedPlan = await context.db.find(plan, { chainId, planId });
  const trialing = trialEndsAt !== 0;
  await context.db.insert(subscription).values({
    chainId,
    subscriptionId,
    planId,
    merchantId,
    subscriber,
    token: subscribedPlan?.token ?? "0x0000000000000000000000000000000000000000",
    status: trialing ? "trialing" : "active",
    maxPrice,
    trialEndsAt: trialing ? BigInt(trialEndsAt) : null,
    currentPeriodStart: event.block.timestamp,
    currentPeriodEnd: trialing ? BigInt(trialEndsAt) : null,
    createdAt: event.block.timestamp,
    updatedAt: event.block.timestamp,
  });
  await recordActivity(context, event, "subscription.created", merchantId, String(subscriptionId), {
    planId,
    subscriber,
    token: subscribedPlan?.token ?? null,
    maxPrice,
    trialEndsAt: trialing ? trialEndsAt : null,
  });
});

ponder.on("SubscriptionManager:SubscriptionCharged", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { subscriptionId, merchantId, subscriber, token, amount, periodStart, periodEnd } = event.args;
  const current = await context.db.find(subscription, { chainId: at.chainId, subscriptionId });
  // Decided before the update: the store may hand back the same cached row object the update then changes.
  const kind = (current?.chargeCount ?? 0) === 0 ? "initial" : "renewal";
  await context.db.update(subscription, { chainId: at.chainId, subscriptionId }).set((row) => ({
    status: "active",
    currentPeriodStart: BigInt(periodStart),
    currentPeriodEnd: BigInt(periodEnd),
    retryUntil: null,
    lastFailure: null,
    chargeCount: row.chargeCount + 1,
    updatedAt: at.timestamp,
  }));
  await context.db.insert(charge).values({
    id: eventId(at),
    chainId: at.chainId,
    subscriptionId,
    merchantId,
    subscriber,
    token,
    amount,
    kind,
    periodStart: BigInt(periodStart),
    periodEnd: BigInt(periodEnd),
    timestamp: at.timestamp,
    blockNumber: at.blockNumber,
    transactionHash: at.transactionHash,
  });
  await recordMovement(context.db, at, {
    merchantId,
    counterparty: subscriber,
    token,
    amount,
    kind: "subscription_charge",
    reference: `subscription:${subscriptionId}`,
  });
  if (kind === "renewal") {
    await recordActivity(context, event, "subscription.renewed", merchantId, String(subscriptionId), { subscriber, token, amount, periodStart, periodEnd });
  }
});

ponder.on("SubscriptionManager:SubscriptionPaymentFailed", async ({ event, context }) => {
  await context.db.update(subscription, { chainId: context.chain.id, subscriptionId: event.args.subscriptionId }).set({
    status: "past_due",
    retryUntil: BigInt(event.args.retryUntil),
    lastFailure: FAILURES[event.args.reason] ?? "transfer_failed",
    updatedAt: event.block.timestamp,
  });
  const failed = await context.db.find(subscription, { chainId: context.chain.id, subscriptionId: event.args.subscriptionId });
  await recordActivity(context, event, "subscription.payment_failed", event.args.merchantId, String(event.args.subscriptionId), {
    subscriber: failed?.subscriber ?? null,
    reason: FAILURES[event.args.reason] ?? "transfer_failed",
    retryUntil: event.args.retryUntil,
  });
});

ponder.on("SubscriptionManager:SubscriptionLapsed", async ({ event, context }) => {
  await context.db
    .update(subscription, { chainId: context.chain.id, subscriptionId: event.args.subscriptionId })
    .set({ status: "lapsed", retryUntil: null, updatedAt: event.block.timestamp });
  await recordActivity(context, event, "subscription.lapsed", event.args.merchantId, String(event.args.subscriptionId), {});
});

ponder.on("SubscriptionManager:SubscriptionCanceled", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { subscriptionId, merchantId, subscriber, token, refunded } = event.args;
  await context.db
    .update(subscription, { chainId: at.chainId, subscriptionId })
    .set({ status: "canceled", canceledAt: at.timestamp, updatedAt: at.timestamp });
  await recordMovement(context.db, at, {
    merchantId,
    counterparty: subscriber,
    token,
    amount: -refunded,
    kind: "subscription_refund",
    reference: `subscription:${subscriptionId}`,
  });
  await recordActivity(context, event, "subscription.canceled", merchantId, String(subscriptionId), {
    subscriber,
    token,
    refunded,
    earned: event.args.earned,
  });
});

ponder.on("SubscriptionManager:TrialAlreadyUsed", async ({ event, context }) => {
  await context.db
    .update(subscription, { chainId: context.chain.id, subscriptionId: event.args.subscriptionId })
    .set({ trialAlreadyUsed: true, updatedAt: event.block.timestamp });
});

/** `SubscriptionStatus.Trialing` in the contract's enum (None, Trialing, Active, PastDue, Canceled, Lapsed). */
const TRIALING = 1;

ponder.on("SubscriptionManager:SubscriptionPlanChanged", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { subscriptionId, merchantId, newPlanId, charged, refunded, periodEnd, status } = event.args;
  const current = await context.db.find(subscription, { chainId: at.chainId, subscriptionId });
  if (!current) return;
  if (status === TRIALING) {
    // The trial goes on under the new plan, as far as that plan's own trial allows.
    await context.db.update(subscription, { chainId: at.chainId, subscriptionId }).set({
      planId: newPlanId,
      trialEndsAt: BigInt(periodEnd),
      currentPeriodEnd: BigInt(periodEnd),
      updatedAt: at.timestamp,
    });
    return;
  }
  // A new period starts now: after a prorated change, or when a change ends the trial (charged in full).
  await context.db.update(subscription, { chainId: at.chainId, subscriptionId }).set((row) => ({
    planId: newPlanId,
    status: "active",
    currentPeriodStart: at.timestamp,
    currentPeriodEnd: BigInt(periodEnd),
    chargeCount: row.chargeCount + (charged > 0n ? 1 : 0),
    updatedAt: at.timestamp,
  }));
  await context.db.insert(charge).values({
    id: eventId(at),
    chainId: at.chainId,
    subscriptionId,
    merchantId,
    subscriber: current.subscriber,
    token: current.token,
    amount: charged,
    kind: "plan_change",
    periodStart: at.timestamp,
    periodEnd: BigInt(periodEnd),
    timestamp: at.timestamp,
    blockNumber: at.blockNumber,
    transactionHash: at.transactionHash,
  });
  const reference = `subscription:${subscriptionId}`;
  const movement = { merchantId, counterparty: current.subscriber, token: current.token, reference };
  await recordMovement(context.db, at, { ...movement, amount: charged, kind: "subscription_charge" });
  await recordMovement(context.db, at, { ...movement, amount: -refunded, kind: "subscription_refund" }, 1);
});

ponder.on("SubscriptionManager:MaxPriceChanged", async ({ event, context }) => {
  await context.db
    .update(subscription, { chainId: context.chain.id, subscriptionId: event.args.subscriptionId })
    .set({ maxPrice: event.args.maxPrice, updatedAt: event.block.timestamp });
});

ponder.on("SubscriptionManager:MerchantWithdrawal", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { merchantId, token, payout, amount } = event.args;
  await recordMovement(context.db, at, {
    merchantId,
    counterparty: payout,
    token,
    amount: -amount,
    kind: "withdrawal",
    reference: `withdrawal:${eventId(at)}`,
  });
  await recordActivity(context, event, "payout.sent", merchantId, `withdrawal:${eventId(at)}`, { source: "subscriptions", token, payout, amount });
});

ponder.on("SubscriptionManager:PayoutDeferred", async ({ event, context }) => {
  await recordClaimable(context, event, event.args.account, event.args.token, event.args.amount);
  await recordClaimEvent(context, event, "deferred", event.args.account, event.args.token, event.args.amount);
});

ponder.on("SubscriptionManager:Claimed", async ({ event, context }) => {
  await recordClaimable(context, event, event.args.account, event.args.token, -event.args.amount);
  await recordClaimEvent(context, event, "claimed", event.args.account, event.args.token, event.args.amount, event.args.to);
});

for (const name of ["PausedSet", "OwnershipTransferred", "OwnershipTransferStarted"] as const) {
  ponder.on(`SubscriptionManager:${name}`, async ({ event, context }) => {
    await recordProtocolEvent(context, event, name);
  });
}
