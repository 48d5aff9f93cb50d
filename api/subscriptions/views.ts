/**
 * What the API shows of plans, subscriptions and charges: the zod/OpenAPI schemas and the functions that turn
 * indexed (or freshly read on-chain) records into them. Amounts are always a decimal string plus a base-unit
 * string; times are ISO 8601.
 */
import { z } from "@hono/zod-openapi";
import { encodeFunctionData, erc20Abi, getAddress, type Address, type Hex } from "viem";
import { subscriptionManagerAbi } from "../../contracts/abi";
import type { ChainRuntime } from "../chains";
import type { TokenInfo } from "../tokens";
import type { IndexedCharge, IndexedPlan, IndexedSubscription } from "../indexed";
import { formatAmount } from "../money";
import { maxPriceFor, MAX_PRICE_BUFFER_BPS, PlanFiatPriceSchema, planFiatPriceView, type PlanPriceRow } from "./fiat";
import { isoFromSeconds, planPublicId, subscriptionPublicId } from "./ids";

/** Periods of allowance the suggested approval covers, so renewals keep working for about a year of months. */
export const APPROVAL_PERIODS = 12n;

export const SUBSCRIPTION_STATUSES = ["trialing", "active", "past_due", "canceled", "lapsed"] as const;
export type SubscriptionStatus = (typeof SUBSCRIPTION_STATUSES)[number];
const RUNNING: ReadonlySet<string> = new Set(["trialing", "active", "past_due"]);

/** A plan as the API needs it, whether it comes from the indexer or straight from the contract. */
export interface PlanRecord {
  chainId: number;
  planId: number;
  merchantId: bigint;
  token: Address;
  price: bigint;
  period: number;
  trial: number;
  gracePeriod: number;
  active: boolean;
  createdAt: bigint | null;
  createdTransaction: Hex | null;
}

export function planFromIndexed(row: IndexedPlan): PlanRecord {
  return {
    chainId: row.chainId,
    planId: row.planId,
    merchantId: row.merchantId,
    token: row.token as Address,
    price: row.price,
    period: row.period,
    trial: row.trial,
    gracePeriod: row.gracePeriod,
    active: row.active,
    createdAt: row.createdAt,
    createdTransaction: row.createdTransaction as Hex,
  };
}

export const TransactionSchema = z
  .object({
    to: z.string(),
    data: z.string(),
    value: z.string().openapi({ description: "Wei, as a decimal string" }),
    description: z.string(),
  })
  .openapi("Transaction");

export const PlanSummarySchema = z
  .object({
    id: z.string().openapi({ example: "plan_31337_1" }),
    chainId: z.number().int(),
    planId: z.number().int().openapi({ description: "Plan id in the SubscriptionManager contract" }),
    token: z.string(),
    currency: z.string(),
    decimals: z.number().int(),
    amount: z.string().openapi({ example: "10.00", description: "Price per period" }),
    amountBaseUnits: z.string().openapi({ example: "10000000" }),
    periodSeconds: z.number().int(),
    trialSeconds: z.number().int(),
    gracePeriodSeconds: z.number().int(),
    active: z.boolean().openapi({ description: "Whether the plan accepts new subscribers" }),
  })
  .openapi("PlanSummary");

export const PlanSchema = PlanSummarySchema.extend({
  createdAt: z.string().nullable().openapi({ description: "Block time of the creation (null until indexed)" }),
  transactionHash: z.string().nullable().openapi({ description: "The createPlan transaction (null until indexed)" }),
  price: PlanFiatPriceSchema.nullable().openapi({
    description: "Plans priced in fiat: the fiat price and the rate in force; the token price (`amount`) follows it (docs/PRICES.md). Null for plans priced in their token",
  }),
  subscribe: z
    .object({
      chainId: z.number().int(),
      maxPrice: z.string().openapi({
        description: `The cap the subscriber signs: today's price, or for a plan priced in fiat today's price + ${Number(MAX_PRICE_BUFFER_BPS) / 100}% (rate moves; setMaxPrice changes it)`,
      }),
      maxPriceBaseUnits: z.string(),
      approvalPeriods: z.number().int(),
      transactions: z.array(TransactionSchema).openapi({
        description: "Send in order from the subscriber's wallet: approve the manager for several periods, then subscribe",
      }),
    })
    .openapi({ description: "The ready transactions a subscriber's wallet sends to subscribe" }),
}).openapi("Plan");

export const SubscriptionSchema = z
  .object({
    id: z.string().openapi({ example: "sub_31337_1" }),
    chainId: z.number().int(),
    subscriptionId: z.string().openapi({ description: "Subscription id in the SubscriptionManager contract" }),
    status: z.enum(SUBSCRIPTION_STATUSES),
    subscriber: z.string(),
    plan: PlanSummarySchema.nullable(),
    token: z.string(),
    currency: z.string(),
    maxPrice: z.string().openapi({ description: "The most the subscriber accepts per period" }),
    maxPriceBaseUnits: z.string(),
    trialEndsAt: z.string().nullable(),
    trialAlreadyUsed: z.boolean().openapi({ description: "The plan has a trial, but this wallet had used it before: the subscription started charged (a wallet gets each plan's trial once)" }),
    currentPeriodStart: z.string().nullable(),
    currentPeriodEnd: z.string().nullable(),
    nextChargeAt: z.string().nullable().openapi({
      description: "When the next period is charged (for past_due: the missed due date, retried until retryUntil); null once canceled or lapsed",
    }),
    nextChargeAmount: z.string().nullable().openapi({ description: "The plan's current price" }),
    nextChargeAmountBaseUnits: z.string().nullable(),
    renewalBlockedBy: z
      .enum(["price_above_maximum"])
      .nullable()
      .openapi({ description: "Set when the next renewal will fail whatever the subscriber's balance" }),
    retryUntil: z.string().nullable(),
    lastFailure: z.string().nullable().openapi({ description: "price_above_maximum | transfer_failed | inexact_transfer" }),
    chargeCount: z.number().int(),
    createdAt: z.string(),
    canceledAt: z.string().nullable(),
  })
  .openapi("Subscription");

export const ChargeSchema = z
  .object({
    id: z.string(),
    subscriptionId: z.string(),
    kind: z.enum(["initial", "renewal", "plan_change"]),
    amount: z.string(),
    amountBaseUnits: z.string(),
    currency: z.string(),
    periodStart: z.string(),
    periodEnd: z.string(),
    chargedAt: z.string(),
    blockNumber: z.string(),
    transactionHash: z.string(),
  })
  .openapi("Charge");

export type PlanView = z.infer<typeof PlanSchema>;
export type SubscriptionView = z.infer<typeof SubscriptionSchema>;

const iso = (seconds: bigint | null | undefined) => (seconds === null || seconds === undefined ? null : isoFromSeconds(seconds));

export function planSummaryView(plan: PlanRecord, token: TokenInfo): z.infer<typeof PlanSummarySchema> {
  return {
    id: planPublicId(plan.chainId, plan.planId),
    chainId: plan.chainId,
    planId: plan.planId,
    token: token.address,
    currency: token.symbol,
    decimals: token.decimals,
    amount: formatAmount(plan.price, token.decimals),
    amountBaseUnits: plan.price.toString(),
    periodSeconds: plan.period,
    trialSeconds: plan.trial,
    gracePeriodSeconds: plan.gracePeriod,
    active: plan.active,
  };
}

/** The two transactions a subscriber sends: a 12-period approval of the manager, then `subscribe`. */
export function subscribeTransactions(chain: ChainRuntime, plan: PlanRecord, token: TokenInfo, fiat?: PlanPriceRow) {
  // A fiat plan's token price follows the rate: the cap leaves room for ordinary moves, the approval covers 12 periods at the cap.
  const maxPrice = fiat ? maxPriceFor(plan.price) : plan.price;
  const approval = maxPrice * APPROVAL_PERIODS;
  return {
    chainId: chain.id,
    maxPrice: formatAmount(maxPrice, token.decimals),
    maxPriceBaseUnits: maxPrice.toString(),
    approvalPeriods: Number(APPROVAL_PERIODS),
    transactions: [
      {
        to: token.address,
        data: encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [chain.subscriptions, approval] }),
        value: "0",
        description: `approve(${chain.subscriptions}, ${approval}): lets the SubscriptionManager charge ${APPROVAL_PERIODS} periods of ${formatAmount(maxPrice, token.decimals)} ${token.symbol}. It replaces any earlier allowance of this wallet for the manager.`,
      },
      {
        to: chain.subscriptions,
        data: encodeFunctionData({ abi: subscriptionManagerAbi, functionName: "subscribe", args: [plan.planId, maxPrice] }),
        value: "0",
        description: fiat
          ? `subscribe(${plan.planId}, ${maxPrice}): subscribes the sending wallet, accepting at most ${formatAmount(maxPrice, token.decimals)} ${token.symbol} per period (today's price of ${fiat.fiatAmount} ${fiat.fiatCurrency} + ${Number(MAX_PRICE_BUFFER_BPS) / 100}%, as the price follows the rate).`
          : `subscribe(${plan.planId}, ${plan.price}): subscribes the sending wallet, accepting at most today's price per period.`,
      },
    ],
  };
}

export function planView(chain: ChainRuntime, plan: PlanRecord, token: TokenInfo, fiat?: PlanPriceRow): PlanView {
  return {
    ...planSummaryView(plan, token),
    createdAt: iso(plan.createdAt),
    transactionHash: plan.createdTransaction,
    price: planFiatPriceView(fiat),
    subscribe: subscribeTransactions(chain, plan, token, fiat),
  };
}

export function isRunning(status: string): boolean {
  return RUNNING.has(status);
}

export function subscriptionView(
  row: IndexedSubscription,
  plan: PlanRecord | undefined,
  token: TokenInfo,
): SubscriptionView {
  const running = isRunning(row.status);
  const nextAmount = running && plan ? plan.price : null;
  return {
    id: subscriptionPublicId(row.chainId, row.subscriptionId),
    chainId: row.chainId,
    subscriptionId: row.subscriptionId.toString(),
    status: row.status as SubscriptionStatus,
    subscriber: getAddress(row.subscriber),
    plan: plan ? planSummaryView(plan, token) : null,
    token: token.address,
    currency: token.symbol,
    maxPrice: formatAmount(row.maxPrice, token.decimals),
    maxPriceBaseUnits: row.maxPrice.toString(),
    trialEndsAt: iso(row.trialEndsAt),
    trialAlreadyUsed: row.trialAlreadyUsed,
    currentPeriodStart: iso(row.currentPeriodStart),
    currentPeriodEnd: iso(row.currentPeriodEnd),
    nextChargeAt: running ? iso(row.currentPeriodEnd) : null,
    nextChargeAmount: nextAmount === null ? null : formatAmount(nextAmount, token.decimals),
    nextChargeAmountBaseUnits: nextAmount === null ? null : nextAmount.toString(),
    renewalBlockedBy: nextAmount !== null && nextAmount > row.maxPrice ? "price_above_maximum" : null,
    retryUntil: iso(row.retryUntil),
    lastFailure: row.lastFailure,
    chargeCount: row.chargeCount,
    createdAt: isoFromSeconds(row.createdAt),
    canceledAt: iso(row.canceledAt),
  };
}

/** A subscription's charges, oldest first, with the indexer's kind (initial, renewal or plan_change). */
export function chargeViews(rows: IndexedCharge[], token: TokenInfo): z.infer<typeof ChargeSchema>[] {
  return rows.map((row) => {
    const kind = ChargeSchema.shape.kind.parse(row.kind);
    return {
      id: row.id,
      subscriptionId: subscriptionPublicId(row.chainId, row.subscriptionId),
      kind,
      amount: formatAmount(row.amount, token.decimals),
      amountBaseUnits: row.amount.toString(),
      currency: token.symbol,
      periodStart: isoFromSeconds(row.periodStart),
      periodEnd: isoFromSeconds(row.periodEnd),
      chargedAt: isoFromSeconds(row.timestamp),
      blockNumber: row.blockNumber.toString(),
      transactionHash: row.transactionHash,
    };
  });
}
