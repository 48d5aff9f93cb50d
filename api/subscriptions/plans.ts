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
import { fiatAmountIn } from "../invoices/create";
import { formatFiat } from "../prices/math";
import { isFiat, type FiatCurrency } from "../prices/types";
import type { FieldError } from "../problems";
import { createPlan, readPlan, requireOwnPlan, updatePlan } from "./chain";
import { convertPlanPrice, planPriceOf, recordPlanPrice, type PlanPriceRow } from "./fiat";
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
  /** With a fiat `currency`: the token the subscriber pays in (the plan's on-chain currency). */
  payCurrency?: string;
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
  const fiat = isFiat(body.currency) ? (body.currency.trim().toUpperCase() as FiatCurrency) : undefined;
  if (fiat && body.payCurrency === undefined) {
    throw invalid(
      "payCurrency",
      `is required with a fiat currency: a plan priced in ${fiat} is charged in a token (give payCurrency, e.g. "USDC"); the token price follows the ${fiat} price at the current rate`,
    );
  }
  if (!fiat && body.payCurrency !== undefined) {
    throw invalid("payCurrency", `goes with a fiat currency (USD, EUR, CNY); a plan priced in ${body.currency} is paid in ${body.currency}`);
  }
  const payField = fiat ? "payCurrency" : "currency";
  const payText = fiat ? body.payCurrency! : body.currency;
  if (payText.trim().toUpperCase() === "BTC") {
    throw invalid(payField, "subscriptions are charged on-chain by the SubscriptionManager contract, so BTC cannot pay a plan: pick a token such as USDC");
  }
  const token = await resolveCurrency(chain, payText);
  if (isNative(token)) {
    throw invalid(
      payField,
      "subscriptions charge ERC-20 tokens only (the contract pulls each period with transferFrom), so ETH cannot be used: pick a token such as USDC",
    );
  }
  let units: bigint;
  let fiatPrice: { minor: bigint; price: Awaited<ReturnType<typeof convertPlanPrice>>["price"] } | undefined;
  if (fiat) {
    const errors: FieldError[] = [];
    const minor = fiatAmountIn(body.amount, "amount", errors);
    if (minor === undefined) throw problem.validation(errors);
    const converted = await convertPlanPrice(deps, chain, token, fiat, minor);
    units = converted.units;
    fiatPrice = { minor, price: converted.price };
  } else {
    const price = parseAmount(body.amount, token.decimals);
    if (!price.ok) throw invalid("amount", AMOUNT_ERROR_MESSAGES[price.error](token.decimals));
    units = price.value;
  }
  const registration = await requireIdentity(deps, merchant, chain.id);
  const plan = await createPlan(
    deps,
    merchant,
    registration,
    {
      token: token.address,
      price: units,
      period: body.periodSeconds,
      trial: body.trialSeconds ?? 0,
      gracePeriod: body.gracePeriodSeconds ?? defaultGrace(body.periodSeconds),
    },
    requestId,
  );
  let row: PlanPriceRow | undefined;
  if (fiat && fiatPrice) {
    row = await recordPlanPrice(deps, {
      chainId: chain.id,
      planId: plan.planId,
      merchantId: merchant.id,
      fiatCurrency: fiat,
      fiatAmount: formatFiat(fiatPrice.minor),
      payCurrency: token.symbol,
      token: token.address,
      units: plan.price,
      price: fiatPrice.price,
      transactionHash: plan.createdTransaction!,
      reason: "created",
    });
  }
  return planView(chain, plan, token, row);
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
  let fiatRow = await planPriceOf(deps, registration.chain.id, ref.planId);
  let price: bigint | undefined;
  let fiatChange: { minor: bigint; price: Awaited<ReturnType<typeof convertPlanPrice>>["price"] } | undefined;
  if (change.amount !== undefined && fiatRow) {
    // A plan priced in fiat takes a new fiat price, converted at the current rate.
    const errors: FieldError[] = [];
    const minor = fiatAmountIn(change.amount, "amount", errors);
    if (minor === undefined) throw problem.validation(errors);
    const converted = await convertPlanPrice(deps, registration.chain, token, fiatRow.fiatCurrency as FiatCurrency, minor);
    price = converted.units;
    fiatChange = { minor, price: converted.price };
  } else if (change.amount !== undefined) {
    const parsed = parseAmount(change.amount, token.decimals);
    if (!parsed.ok) throw invalid("amount", AMOUNT_ERROR_MESSAGES[parsed.error](token.decimals));
    price = parsed.value;
  }
  const hashes = await updatePlan(deps, merchant, registration, current, { price, active: change.active }, requestId);
  if (fiatRow && fiatChange && price !== undefined) {
    fiatRow = await recordPlanPrice(deps, {
      ...fiatRow,
      fiatAmount: formatFiat(fiatChange.minor),
      units: price,
      previous: current.price,
      price: fiatChange.price,
      transactionHash: price !== current.price ? hashes[0] : "unchanged",
      reason: "changed",
    });
  }
  const after: PlanRecord = (await readPlan(registration.chain, ref.planId)) ?? current;
  const indexed = await deps.indexed.plan(registration.chain.id, ref.planId);
  const plan = { ...after, createdAt: indexed?.createdAt ?? null, createdTransaction: (indexed?.createdTransaction as Hex | undefined) ?? null };
  return { ...planView(registration.chain, plan, token, fiatRow), updateTransactions: hashes };
}
