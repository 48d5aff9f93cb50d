/**
 * Plans as the API offers them: a request to create or change a plan turned into the contract's terms (currency,
 * price in base units, period, trial, grace), checked, and sent with the merchant's operator key.
 */
import type { Hex } from "viem";
import type { ApiDeps, MerchantRecord } from "../env";
import type { Registration } from "../merchants/identity";
import { requireIdentity } from "../merchants/identity";
import { AMOUNT_ERROR_MESSAGES, parseAmount } from "../money";
import { problem } from "../problems";
import { isNative, resolveCurrency, tokenAt } from "../tokens";
import { createPlan, readPlan, requireOwnPlan, updatePlan } from "./chain";
import { planView, type PlanRecord, type PlanView } from "./views";

const DAY = 86_400;
/** Contract limits (SubscriptionManager.MAX_PERIOD, MAX_TRIAL), checked here for a clear 422 instead of a revert. */
export const MAX_PERIOD = 5 * 365 * DAY;
export const MAX_TRIAL = 365 * DAY;
/** Default retry window after a failed renewal: 3 days, and always shorter than the period (the contract's rule). */
export const DEFAULT_GRACE = 3 * DAY;

const invalid = (field: string, message: string) => problem.validation([{ field, message }]);

export interface CreatePlanRequest {
  chainId: number;
  currency: string;
  amount: string;
  periodSeconds: number;
  trialSeconds?: number;
  gracePeriodSeconds?: number;
}

export function defaultGrace(periodSeconds: number): number {
  return Math.min(DEFAULT_GRACE, periodSeconds - 1);
}

export async function createPlanFor(deps: ApiDeps, merchant: MerchantRecord, body: CreatePlanRequest, requestId?: string): Promise<PlanView> {
  const chain = deps.chains.get(body.chainId);
  if (!chain) throw invalid("chainId", `unknown chain; this service runs on ${[...deps.chains.keys()].join(", ")}`);
  const token = await resolveCurrency(chain, body.currency);
  if (isNative(token)) {
    throw invalid(
      "currency",
      "subscriptions charge ERC-20 tokens only (the contract pulls each period with transferFrom), so ETH cannot be used: pick a token such as USDC",
    );
  }
  const price = parseAmount(body.amount, token.decimals);
  if (!price.ok) throw invalid("amount", AMOUNT_ERROR_MESSAGES[price.error](token.decimals));
  const registration = await requireIdentity(deps, merchant, chain.id);
  const plan = await createPlan(
    deps,
    merchant,
    registration,
    {
      token: token.address,
      price: price.value,
      period: body.periodSeconds,
      trial: body.trialSeconds ?? 0,
      gracePeriod: body.gracePeriodSeconds ?? defaultGrace(body.periodSeconds),
    },
    requestId,
  );
  return planView(chain, plan, token);
}

/** Changes the price and/or availability of the merchant's plan; the answer is the plan as the contract holds it. */
export async function updatePlanFor(
  deps: ApiDeps,
  merchant: MerchantRecord,
  registration: Registration,
  ref: { planId: number; publicId: string },
  change: { amount?: string; active?: boolean },
  requestId?: string,
): Promise<PlanView & { updateTransactions: Hex[] }> {
  const current = await requireOwnPlan(registration, ref.planId, ref.publicId);
  const token = await tokenAt(registration.chain, current.token);
  let price: bigint | undefined;
  if (change.amount !== undefined) {
    const parsed = parseAmount(change.amount, token.decimals);
    if (!parsed.ok) throw invalid("amount", AMOUNT_ERROR_MESSAGES[parsed.error](token.decimals));
    price = parsed.value;
  }
  const hashes = await updatePlan(deps, merchant, registration, current, { price, active: change.active }, requestId);
  const after: PlanRecord = (await readPlan(registration.chain, ref.planId)) ?? current;
  const indexed = await deps.indexed.plan(registration.chain.id, ref.planId);
  const plan = { ...after, createdAt: indexed?.createdAt ?? null, createdTransaction: (indexed?.createdTransaction as Hex | undefined) ?? null };
  return { ...planView(registration.chain, plan, token), updateTransactions: hashes };
}
