/**
 * SubscriptionManager reads and the transactions the service sends with a merchant's operator key (create a
 * plan, change its price or availability, cancel a subscription), through `deps.operator` with the contract's
 * errors mapped to problems. Reads go to the chain where the answer must be current (ownership checks before a
 * write); what a write changed is read from its receipt's events.
 */
import { parseEventLogs, zeroAddress, type Abi, type Address, type Hex, type TransactionReceipt } from "viem";
import { subscriptionManagerAbi } from "../../contracts/abi";
import { SubscriptionStatus } from "../../contracts";
import type { ChainRuntime } from "../chains";
import type { ApiDeps, MerchantRecord } from "../env";
import type { Registration } from "../merchants/identity";
import type { RevertMapping } from "../operator";
import { problem } from "../problems";
import type { PlanRecord } from "./views";

/** The plan as the contract holds it now; undefined when it does not exist. */
export async function readPlan(chain: ChainRuntime, planId: number): Promise<PlanRecord | undefined> {
  const plan = await chain.client.readContract({ address: chain.subscriptions, abi: subscriptionManagerAbi, functionName: "plan", args: [planId] });
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

/** What any SubscriptionManager call of the operator can meet. */
const COMMON_ERRORS: RevertMapping = {
  NotMerchantOperator: () =>
    problem.conflict(
      "merchant-not-registered",
      "The merchant's operator key is no longer the signer of its on-chain record (the owner changed it): register again from GET /v1/merchants/me.",
    ),
};

async function send(
  deps: ApiDeps,
  merchant: MerchantRecord,
  chain: ChainRuntime,
  call: { functionName: string; args: readonly unknown[]; action: string; errors?: RevertMapping },
  requestId: string | undefined,
): Promise<TransactionReceipt> {
  return deps.operator.call({
    chain,
    merchant,
    to: chain.subscriptions,
    abi: subscriptionManagerAbi as Abi,
    functionName: call.functionName,
    args: call.args,
    action: call.action,
    errors: { ...COMMON_ERRORS, ...call.errors },
    requestId,
  });
}

function eventsOf<Name extends "PlanCreated" | "SubscriptionCanceled">(chain: ChainRuntime, receipt: TransactionReceipt, eventName: Name) {
  return parseEventLogs({ abi: subscriptionManagerAbi, eventName, logs: receipt.logs }).filter(
    (log) => log.address.toLowerCase() === chain.subscriptions.toLowerCase(),
  );
}

export interface NewPlanTerms {
  token: Address;
  price: bigint;
  period: number;
  trial: number;
  gracePeriod: number;
}

const invalid = (field: string, message: string) => () => problem.validation([{ field, message }]);

export async function createPlan(deps: ApiDeps, merchant: MerchantRecord, registration: Registration, terms: NewPlanTerms, requestId?: string): Promise<PlanRecord> {
  const { chain, owner } = registration;
  const receipt = await send(
    deps,
    merchant,
    chain,
    {
      functionName: "createPlan",
      args: [owner.merchantId, terms.token, terms.price, terms.period, terms.trial, terms.gracePeriod],
      action: "create the plan",
      errors: {
        InvalidPeriod: invalid("periodSeconds", "is not a period the contract accepts"),
        TrialTooLong: invalid("trialSeconds", "is longer than the contract allows"),
        GracePeriodTooLong: invalid("gracePeriodSeconds", "must be shorter than periodSeconds"),
        TokenNotContract: invalid("currency", "is not a token contract on this chain"),
      },
    },
    requestId,
  );
  const [created] = eventsOf(chain, receipt, "PlanCreated");
  if (!created) throw problem.chainRejected("create the plan", `transaction ${receipt.transactionHash} created no plan`);
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
  requestId?: string,
): Promise<Hex[]> {
  const hashes: Hex[] = [];
  const errors: RevertMapping = { UnknownPlan: () => problem.notFound(`Plan ${current.planId}`) };
  if (change.price !== undefined && change.price !== current.price) {
    const receipt = await send(deps, merchant, registration.chain, { functionName: "setPlanPrice", args: [current.planId, change.price], action: "change the plan's price", errors }, requestId);
    hashes.push(receipt.transactionHash);
  }
  if (change.active !== undefined && change.active !== current.active) {
    const receipt = await send(deps, merchant, registration.chain, { functionName: "setPlanActive", args: [current.planId, change.active], action: "change the plan's availability", errors }, requestId);
    hashes.push(receipt.transactionHash);
  }
  return hashes;
}

export const STATUS_NAMES: Record<number, string> = {
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

function notCancelable(publicId: string, status: number) {
  const name = STATUS_NAMES[status] ?? "ended";
  return problem.conflict(
    "subscription-not-cancelable",
    `Subscription ${publicId} is ${name}: only trialing, active or past_due subscriptions can be canceled.`,
    { status: name },
  );
}

/**
 * Cancels one of the merchant's subscriptions with the operator key: the contract refunds the unearned part
 * of the current period to the subscriber and credits the earned part to the merchant. Of several concurrent
 * cancels, one succeeds and the others meet the canceled subscription in their simulation: 409.
 */
export async function cancelSubscription(
  deps: ApiDeps,
  merchant: MerchantRecord,
  registration: Registration,
  subscriptionId: bigint,
  publicId: string,
  requestId?: string,
): Promise<CancelResult> {
  const { chain, owner } = registration;
  const subscription = await chain.client.readContract({ address: chain.subscriptions, abi: subscriptionManagerAbi, functionName: "subscription", args: [subscriptionId] });
  if (subscription.subscriber === zeroAddress) throw problem.notFound(`Subscription ${publicId}`);
  const plan = await readPlan(chain, subscription.planId);
  if (!plan || plan.merchantId !== owner.merchantId) throw problem.notFound(`Subscription ${publicId}`);
  const running: number[] = [SubscriptionStatus.Trialing, SubscriptionStatus.Active, SubscriptionStatus.PastDue];
  if (!running.includes(subscription.status)) throw notCancelable(publicId, subscription.status);
  const receipt = await send(
    deps,
    merchant,
    chain,
    {
      functionName: "cancel",
      args: [subscriptionId],
      action: `cancel subscription ${publicId}`,
      errors: {
        InvalidSubscriptionStatus: (args) => notCancelable(publicId, Number(args[0])),
        UnknownSubscription: () => problem.notFound(`Subscription ${publicId}`),
      },
    },
    requestId,
  );
  const [canceled] = eventsOf(chain, receipt, "SubscriptionCanceled");
  if (!canceled) throw problem.chainRejected(`cancel subscription ${publicId}`, `transaction ${receipt.transactionHash} canceled nothing`);
  const block = await chain.client.getBlock({ blockNumber: receipt.blockNumber });
  return {
    transactionHash: receipt.transactionHash,
    refunded: canceled.args.refunded,
    earned: canceled.args.earned,
    token: canceled.args.token,
    canceledAt: block.timestamp,
  };
}

/** Sends `setPlanPrice` with the merchant's operator key (the repricer of fiat plans); the receipt. */
export async function setPlanPrice(deps: ApiDeps, merchant: MerchantRecord, chain: ChainRuntime, planId: number, price: bigint, requestId?: string): Promise<TransactionReceipt> {
  const errors: RevertMapping = { UnknownPlan: () => problem.notFound(`Plan ${planId}`) };
  return send(deps, merchant, chain, { functionName: "setPlanPrice", args: [planId, price], action: "reprice the fiat plan", errors }, requestId);
}
