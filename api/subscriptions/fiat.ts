/**
 * Plans priced in fiat (USD, EUR, CNY) and paid in a token: the on-chain plan holds a token price, the API keeps
 * the fiat price (`plan_prices`) and a repricer that, for every active fiat plan, converts the fiat price at the
 * current rate and sends `setPlanPrice` with the merchant's operator key when the token price is off by more than
 * `REPRICE_THRESHOLD_BPS`. A rate the price source refuses (stale, deviating, de-pegged…) changes nothing: the old
 * price stays and the refusal is kept on the plan (`price.rateUnavailable`). Every price set is recorded with its
 * rate (`plan_price_changes`). See docs/PRICES.md, "Plans priced in fiat".
 */
import { z } from "@hono/zod-openapi";
import { and, eq } from "drizzle-orm";
import type { Hex } from "viem";
import type { ChainRuntime } from "../chains";
import type { ApiDeps, MerchantRecord } from "../env";
import { MAX_BASE_UNITS } from "../money";
import { fiatToUnits, formatFiat } from "../prices/math";
import { priceRecord, PriceSchema, priceView } from "../prices/record";
import type { FiatCurrency, PriceSource } from "../prices/types";
import { problem, ProblemError } from "../problems";
import { merchants, planPriceChanges, planPrices, type InvoicePrice } from "../store/schema";
import { tokenAt, type TokenInfo } from "../tokens";
import { readPlan, setPlanPrice } from "./chain";

/** The on-chain price follows the fiat price once it is off by more than this (basis points: 0.5%). */
export const REPRICE_THRESHOLD_BPS = 50n;
/** The cap a fiat plan's subscribe instructions suggest: the current price plus this (basis points: +20%). */
export const MAX_PRICE_BUFFER_BPS = 2_000n;
/** How often the repricer looks at every fiat plan (PLAN_REPRICE_INTERVAL_MS overrides). */
export const DEFAULT_REPRICE_INTERVAL_MS = 60_000;

export type PlanPriceRow = typeof planPrices.$inferSelect;

/** Whether `target` is off `current` by more than `thresholdBps` of `current` (exactly the threshold: no change). */
export function needsReprice(current: bigint, target: bigint, thresholdBps: bigint = REPRICE_THRESHOLD_BPS): boolean {
  if (current <= 0n) return target !== current;
  const moved = target > current ? target - current : current - target;
  return moved * 10_000n > thresholdBps * current;
}

/** The suggested subscriber cap for a fiat plan: `price × (1 + buffer)`, rounded up. */
export function maxPriceFor(price: bigint, bufferBps: bigint = MAX_PRICE_BUFFER_BPS): bigint {
  return (price * (10_000n + bufferBps) + 9_999n) / 10_000n;
}

export type RepriceDecision =
  | { action: "keep"; target: bigint; price: InvoicePrice }
  | { action: "reprice"; target: bigint; price: InvoicePrice }
  | { action: "unavailable"; detail: string };

/**
 * What to do with one fiat plan: convert `fiatMinor` at the current rate of the paying currency; keep the price
 * within the threshold, reprice beyond it, and never move it on a rate the source refuses.
 */
export async function decideReprice(
  prices: PriceSource,
  plan: { chainId: number; payCurrency: string; decimals: number; fiatCurrency: FiatCurrency; fiatMinor: bigint; onchainPrice: bigint },
  thresholdBps: bigint = REPRICE_THRESHOLD_BPS,
): Promise<RepriceDecision> {
  let reading;
  try {
    reading = await prices.rate(plan.chainId, plan.payCurrency, plan.fiatCurrency);
  } catch (error) {
    if (error instanceof ProblemError) return { action: "unavailable", detail: error.message };
    throw error;
  }
  const target = fiatToUnits(plan.fiatMinor, reading.rate, plan.decimals);
  const price = priceRecord(reading, { amount: formatFiat(plan.fiatMinor), lockedUntil: reading.observedAt });
  // A fiat plan's record has no lock: the rate is in force until the next repricing.
  delete price.lockedUntil;
  if (target > MAX_BASE_UNITS || target <= 0n) return { action: "unavailable", detail: `${formatFiat(plan.fiatMinor)} ${plan.fiatCurrency} converts to ${target} base units, outside the contract's range` };
  return { action: needsReprice(plan.onchainPrice, target, thresholdBps) ? "reprice" : "keep", target, price };
}

/** Converts a fiat price for a new plan (or a merchant's change); throws `rate-unavailable` (503). */
export async function convertPlanPrice(deps: ApiDeps, chain: ChainRuntime, token: TokenInfo, fiat: FiatCurrency, minor: bigint): Promise<{ units: bigint; price: InvoicePrice }> {
  if (!deps.prices) throw problem.rateUnavailable({ chainId: chain.id, pair: `${token.symbol}/${fiat}`, reason: "not_configured", message: "this API has no price source" });
  const decision = await decideReprice(deps.prices, { chainId: chain.id, payCurrency: token.symbol, decimals: token.decimals, fiatCurrency: fiat, fiatMinor: minor, onchainPrice: 0n });
  if (decision.action === "unavailable") throw problem.validation([{ field: "amount", message: decision.detail }]);
  return { units: decision.target, price: decision.price };
}

/** Stores a fiat plan's price and records the change. */
export async function recordPlanPrice(
  deps: ApiDeps,
  entry: { chainId: number; planId: number; merchantId: string; fiatCurrency: string; fiatAmount: string; payCurrency: string; token: string; units: bigint; previous?: bigint; price: InvoicePrice; transactionHash: Hex | "unchanged"; reason: "created" | "repriced" | "changed" },
): Promise<PlanPriceRow> {
  return deps.store.db.transaction(async (tx) => {
    const values = {
      chainId: entry.chainId,
      planId: entry.planId,
      merchantId: entry.merchantId,
      fiatCurrency: entry.fiatCurrency,
      fiatAmount: entry.fiatAmount,
      payCurrency: entry.payCurrency,
      token: entry.token,
      priceUnits: entry.units.toString(),
      price: entry.price,
      updatedAt: new Date(),
      checkedAt: new Date(),
      rateUnavailable: null,
    };
    const [row] = await tx
      .insert(planPrices)
      .values(values)
      .onConflictDoUpdate({ target: [planPrices.chainId, planPrices.planId], set: values })
      .returning();
    await tx.insert(planPriceChanges).values({
      chainId: entry.chainId,
      planId: entry.planId,
      reason: entry.reason,
      fiatAmount: entry.fiatAmount,
      previousUnits: entry.previous?.toString() ?? null,
      priceUnits: entry.units.toString(),
      price: entry.price,
      transactionHash: entry.transactionHash,
      observedAt: entry.price.observedAt,
    });
    return row;
  });
}

export async function planPriceOf(deps: ApiDeps, chainId: number, planId: number): Promise<PlanPriceRow | undefined> {
  const [row] = await deps.store.db.select().from(planPrices).where(and(eq(planPrices.chainId, chainId), eq(planPrices.planId, planId)));
  return row;
}

export async function planPricesOf(deps: ApiDeps, merchantId: string): Promise<Map<string, PlanPriceRow>> {
  const rows = await deps.store.db.select().from(planPrices).where(eq(planPrices.merchantId, merchantId));
  return new Map(rows.map((row) => [`${row.chainId}:${row.planId}`, row]));
}

export const PlanFiatPriceSchema = z
  .object({
    currency: z.string().openapi({ example: "USD", description: "The fiat currency the plan is priced in" }),
    amount: z.string().openapi({ example: "9.00", description: "The fiat price per period" }),
    rate: PriceSchema.openapi({ description: "The rate in force: the one the on-chain token price was set at" }),
    updatedAt: z.string().openapi({ description: "When the on-chain price was last set from the fiat price" }),
    checkedAt: z.string().nullable().openapi({ description: "When the repricer last compared the on-chain price with the current rate" }),
    rateUnavailable: z
      .string()
      .nullable()
      .openapi({ description: "Why the last check could not reprice (stale, deviating or de-pegged rate): the old price was kept. Null when the last check had a rate" }),
    repriceThresholdBps: z.number().int().openapi({ description: "The on-chain price is reset once it is off the fiat price at the current rate by more than this (basis points)" }),
  })
  .openapi("PlanFiatPrice");

export type PlanFiatPrice = z.infer<typeof PlanFiatPriceSchema>;

export function planFiatPriceView(row: PlanPriceRow | undefined): PlanFiatPrice | null {
  if (!row) return null;
  return {
    currency: row.fiatCurrency,
    amount: row.fiatAmount,
    rate: priceView(row.price)!,
    updatedAt: row.updatedAt.toISOString(),
    checkedAt: row.checkedAt?.toISOString() ?? null,
    rateUnavailable: row.rateUnavailable,
    repriceThresholdBps: Number(REPRICE_THRESHOLD_BPS),
  };
}

/** One pass over every fiat plan; returns what it did, plan by plan (for logs and tests). */
export async function repriceFiatPlans(deps: ApiDeps): Promise<{ chainId: number; planId: number; action: string; detail?: string }[]> {
  const results: { chainId: number; planId: number; action: string; detail?: string }[] = [];
  if (!deps.prices) return results;
  const rows = await deps.store.db.select().from(planPrices);
  const owners = new Map<string, MerchantRecord | undefined>();
  for (const row of rows) {
    const chain = deps.chains.get(row.chainId);
    if (!chain) continue;
    try {
      const onchain = await readPlan(chain, row.planId);
      if (!onchain || !onchain.active) continue;
      const decision = await decideReprice(deps.prices, {
        chainId: row.chainId,
        payCurrency: row.payCurrency,
        decimals: await decimalsOf(chain, row),
        fiatCurrency: row.fiatCurrency as FiatCurrency,
        fiatMinor: BigInt(row.fiatAmount.replace(".", "")),
        onchainPrice: onchain.price,
      });
      const where = and(eq(planPrices.chainId, row.chainId), eq(planPrices.planId, row.planId));
      if (decision.action === "unavailable") {
        deps.logger.warn({ chainId: row.chainId, planId: row.planId, detail: decision.detail }, "fiat plan not repriced: no usable rate, the old price is kept");
        await deps.store.db.update(planPrices).set({ checkedAt: new Date(), rateUnavailable: decision.detail }).where(where);
        results.push({ chainId: row.chainId, planId: row.planId, action: "unavailable", detail: decision.detail });
        continue;
      }
      if (decision.action === "keep") {
        await deps.store.db.update(planPrices).set({ checkedAt: new Date(), rateUnavailable: null }).where(where);
        results.push({ chainId: row.chainId, planId: row.planId, action: "keep" });
        continue;
      }
      if (!owners.has(row.merchantId)) {
        const [merchant] = await deps.store.db.select().from(merchants).where(eq(merchants.id, row.merchantId));
        owners.set(row.merchantId, merchant);
      }
      const merchant = owners.get(row.merchantId);
      if (!merchant) continue;
      const receipt = await setPlanPrice(deps, merchant, chain, row.planId, decision.target);
      await recordPlanPrice(deps, {
        ...row,
        units: decision.target,
        previous: onchain.price,
        price: decision.price,
        transactionHash: receipt.transactionHash,
        reason: "repriced",
      });
      deps.logger.info(
        { chainId: row.chainId, planId: row.planId, from: onchain.price.toString(), to: decision.target.toString(), rate: decision.price.rate, source: decision.price.source, transaction: receipt.transactionHash },
        "fiat plan repriced",
      );
      results.push({ chainId: row.chainId, planId: row.planId, action: "repriced", detail: decision.target.toString() });
    } catch (error) {
      deps.logger.error({ err: error, chainId: row.chainId, planId: row.planId }, "fiat plan repricing failed; retried on the next pass");
      results.push({ chainId: row.chainId, planId: row.planId, action: "failed", detail: error instanceof Error ? error.message : String(error) });
    }
  }
  return results;
}

const decimalsCache = new Map<string, number>();
async function decimalsOf(chain: ChainRuntime, row: PlanPriceRow): Promise<number> {
  const key = `${chain.id}:${row.token.toLowerCase()}`;
  const known = decimalsCache.get(key);
  if (known !== undefined) return known;
  const token = await tokenAt(chain, row.token as `0x${string}`);
  decimalsCache.set(key, token.decimals);
  return token.decimals;
}

export interface PlanRepricer {
  stop(): Promise<void>;
  /** Runs a pass now (after the current one, if any). */
  runNow(): Promise<void>;
}

/** Reprices fiat plans every `intervalMs`, one pass at a time. */
export function startPlanRepricer(deps: ApiDeps, intervalMs: number): PlanRepricer {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const pass = () => {
    running = running.then(async () => {
      if (stopped) return;
      try {
        await repriceFiatPlans(deps);
      } catch (error) {
        deps.logger.error({ err: error }, "fiat plan repricing pass failed");
      }
    });
    return running;
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => void pass().then(schedule), intervalMs);
    timer.unref?.();
  };
  schedule();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
    runNow: pass,
  };
}
