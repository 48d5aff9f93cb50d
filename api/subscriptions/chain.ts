/**
 * SubscriptionManager reads and the transactions the service sends with a merchant's operator key (create a
 * plan, change its price or availability, cancel a subscription). Reads go to the chain rather than the
 * indexer where the answer must be current (ownership checks before a write, the state right after one).
 */
import { encodeFunctionData, parseEventLogs, zeroAddress, type Address, type Hex, type TransactionReceipt } from "viem";
import { subscriptionManagerAbi } from "../../contracts/abi";
import { SubscriptionStatus } from "../../contracts";
import type { ChainRuntime } from "../chains";
import type { ApiDeps, MerchantRecord } from "../env";
import { operatorAccount, sendAsOperator } from "../operator";
import { problem } from "../problems";
import type { Registration } from "./registrations";
import type { PlanRecord } from "./views";

/** The plan as the contract holds it now; undefined when it does not exist. */
export async function readPlan(chain: ChainRuntime, planId: number): Promise<PlanRecord | undefined> {
  const plan = await chain.client.readContract({
    address: chain.subscriptions,
    abi: subscriptionManagerAbi,
    functionName: "plan",
    args: [planId],
  });
  if (plan.token === zeroAddress) return undefined;
  return {
    chainId: chain.id,
    planId,
    merchantId: plan.merchantId,
    token: plan.token,
    price: plan.price,
    period: plan.period,
    trial: plan.trial,
    gracePeriod: plan.gracePeriod,
    active: plan.active,
    createdAt: null,
    createdTransaction: null,
  };
}

/** The merchant's own plan, read from the chain; 404 when it does not exist or belongs to someone else. */
export async function requireOwnPlan(registration: Registration, planId: number, publicId: string): Promise<PlanRecord> {
  const plan = await readPlan(registration.chain, planId);
  if (!plan || plan.merchantId !== registration.owner.merchantId) throw problem.notFound(`Plan ${publicId}`);
  return plan;
}

async function send(deps: ApiDeps, merchant: MerchantRecord, chain: ChainRuntime, data: Hex): Promise<TransactionReceipt> {
  return sendAsOperator(chain, operatorAccount(merchant, deps.config.operatorKeySecret), { to: chain.subscriptions, data });
}

export interface NewPlanTerms {
  token: Address;
  price: bigint;
  period: number;
  trial: number;
  gracePeriod: number;
}

export async function createPlan(
  deps: ApiDeps,
  merchant: MerchantRecord,
  registration: Registration,
  terms: NewPlanTerms,
): Promise<PlanRecord> {
  const { chain, owner } = registration;
  const receipt = await send(
    deps,
    merchant,
    chain,
    encodeFunctionData({
      abi: subscriptionManagerAbi,
      functionName: "createPlan",
      args: [owner.merchantId, terms.token, terms.price, terms.period, terms.trial, terms.gracePeriod],
    }),
  );
  const [created] = parseEventLogs({ abi: subscriptionManagerAbi, eventName: "PlanCreated", logs: receipt.logs }).filter(
    (log) => log.address.toLowerCase() === chain.subscriptions.toLowerCase(),
  );
  if (!created) throw problem.chainFailure(`Transaction ${receipt.transactionHash} created no plan.`);
  const block = await chain.client.getBlock({ blockNumber: receipt.blockNumber });
  return {
    chainId: chain.id,
    planId: created.args.planId,
    merchantId: created.args.merchantId,
    token: created.args.token,
    price: created.args.price,
    period: created.args.period,
    trial: created.args.trial,
    gracePeriod: created.args.gracePeriod,
    active: true,
    createdAt: block.timestamp,
    createdTransaction: receipt.transactionHash,
  };
}

/** Applies a price and/or availability change; returns the hashes of the transactions sent (none if unchanged). */
export async function updatePlan(
  deps: ApiDeps,
  merchant: MerchantRecord,
  registration: Registration,
  current: PlanRecord,
  change: { price?: bigint; active?: boolean },
): Promise<Hex[]> {
  const hashes: Hex[] = [];
  if (change.price !== undefined && change.price !== current.price) {
    const data = encodeFunctionData({ abi: subscriptionManagerAbi, functionName: "setPlanPrice", args: [current.planId, change.price] });
    hashes.push((await send(deps, merchant, registration.chain, data)).transactionHash);
  }
  if (change.active !== undefined && change.active !== current.active) {
    const data = encodeFunctionData({ abi: subscriptionManagerAbi, functionName: "setPlanActive", args: [current.planId, change.active] });
    hashes.push((await send(deps, merchant, registration.chain, data)).transactionHash);
  }
  return hashes;
}

const STATUS_NAMES: Record<number, string> = {
  [SubscriptionStatus.Trialing]: "trialing",
  [SubscriptionStatus.Active]: "active",
  [SubscriptionStatus.PastDue]: "past_due",
  [SubscriptionStatus.Canceled]: "canceled",
  [SubscriptionStatus.Lapsed]: "lapsed",
};

export interface CancelResult {
  transactionHash: Hex;
  refunded: bigint;
  earned: bigint;
  token: Address;
  canceledAt: bigint;
}

/**
 * Cancels one of the merchant's subscriptions with the operator key: the contract refunds the unearned part
 * of the current period to the subscriber and credits the earned part to the merchant.
 */
export async function cancelSubscription(
  deps: ApiDeps,
  merchant: MerchantRecord,
  registration: Registration,
  subscriptionId: bigint,
  publicId: string,
): Promise<CancelResult> {
  const { chain, owner } = registration;
  const subscription = await chain.client.readContract({
    address: chain.subscriptions,
    abi: subscriptionManagerAbi,
    functionName: "subscription",
    args: [subscriptionId],
  });
  if (subscription.subscriber === zeroAddress) throw problem.notFound(`Subscription ${publicId}`);
  const plan = await readPlan(chain, subscription.planId);
  if (!plan || plan.merchantId !== owner.merchantId) throw problem.notFound(`Subscription ${publicId}`);
  const running: number[] = [SubscriptionStatus.Trialing, SubscriptionStatus.Active, SubscriptionStatus.PastDue];
  if (!running.includes(subscription.status)) {
    const status = STATUS_NAMES[subscription.status] ?? "unknown";
    throw problem.conflict("subscription-not-cancelable", "Subscription already ended", `Subscription ${publicId} is ${status}: only trialing, active or past_due subscriptions can be canceled.`, { status });
  }
  const receipt = await send(
    deps,
    merchant,
    chain,
    encodeFunctionData({ abi: subscriptionManagerAbi, functionName: "cancel", args: [subscriptionId] }),
  );
  const [canceled] = parseEventLogs({ abi: subscriptionManagerAbi, eventName: "SubscriptionCanceled", logs: receipt.logs }).filter(
    (log) => log.address.toLowerCase() === chain.subscriptions.toLowerCase(),
  );
  if (!canceled) throw problem.chainFailure(`Transaction ${receipt.transactionHash} canceled nothing.`);
  const block = await chain.client.getBlock({ blockNumber: receipt.blockNumber });
  return {
    transactionHash: receipt.transactionHash,
    refunded: canceled.args.refunded,
    earned: canceled.args.earned,
    token: canceled.args.token,
    canceledAt: block.timestamp,
  };
}
