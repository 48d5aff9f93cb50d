/**
 * Public ids of on-chain subscription objects. A plan or subscription id is only
 * unique per chain (and per SubscriptionManager deployment), so the chain id is part of the public id:
 * `plan_<chainId>_<planId>`, `sub_<chainId>_<subscriptionId>`.
 */

const PLAN_ID = /^plan_(\d{1,10})_(\d{1,10})$/;
const SUBSCRIPTION_ID = /^sub_(\d{1,10})_(\d{1,30})$/;
const UINT32_MAX = 2 ** 32 - 1;

export interface PlanRef {
  chainId: number;
  planId: number;
}

export interface SubscriptionRef {
  chainId: number;
  subscriptionId: bigint;
}

export function planPublicId(chainId: number, planId: number): string {
  return `plan_${chainId}_${planId}`;
}

export function subscriptionPublicId(chainId: number, subscriptionId: bigint): string {
  return `sub_${chainId}_${subscriptionId}`;
}

export function parsePlanId(id: string): PlanRef | undefined {
  const match = PLAN_ID.exec(id);
  if (!match) return undefined;
  const chainId = Number(match[1]);
  const planId = Number(match[2]);
  if (chainId === 0 || planId === 0 || planId > UINT32_MAX) return undefined;
  return { chainId, planId };
}

export function parseSubscriptionId(id: string): SubscriptionRef | undefined {
  const match = SUBSCRIPTION_ID.exec(id);
  if (!match) return undefined;
  const subscriptionId = BigInt(match[2]);
  if (Number(match[1]) === 0 || subscriptionId === 0n) return undefined;
  return { chainId: Number(match[1]), subscriptionId };
}

/** Unix seconds to ISO 8601. */
export function isoFromSeconds(seconds: bigint | number): string {
  return new Date(Number(seconds) * 1000).toISOString();
}
