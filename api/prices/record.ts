/**
 * The conversion as recorded on an invoice (`InvoicePrice`, api/store/schema.ts) and as shown in the API: the
 * rate, its source, every feed round it came from (address, round id, answer, decimals, update time), when it
 * was read, and for a fiat-priced invoice the fiat amount and until when the rate is locked.
 */
import { z } from "@hono/zod-openapi";
import type { InvoicePrice } from "../store/schema";
import type { RateReading } from "./types";

export function priceRecord(reading: RateReading, fiat?: { amount: string; lockedUntil: bigint }): InvoicePrice {
  return {
    fiatCurrency: reading.quote,
    ...(fiat ? { fiatAmount: fiat.amount } : {}),
    rate: reading.rate,
    source: reading.source,
    feeds: reading.feeds.map((feed) => ({
      address: feed.address,
      roundId: feed.roundId.toString(),
      answer: feed.answer.toString(),
      decimals: feed.decimals,
      updatedAt: Number(feed.updatedAt),
    })),
    observedAt: Number(reading.observedAt),
    ...(fiat ? { lockedUntil: Number(fiat.lockedUntil) } : {}),
  };
}

const iso = (seconds: number) => new Date(seconds * 1000).toISOString();

export const PriceSchema = z
  .object({
    fiatCurrency: z.string().openapi({ example: "USD" }),
    fiatAmount: z.string().nullable().openapi({
      description: "The price in fiat the invoice was created at (two decimals); null when the invoice is priced in its own currency and only valued in fiat",
      example: "25.00",
    }),
    rate: z.string().openapi({ description: "Price of one whole unit of the invoice's currency in `fiatCurrency` (rounded down to 18 decimals)", example: "3000" }),
    source: z.string().openapi({ description: "How the rate was obtained: the Chainlink feed pairs (a cross rate names both)", example: "chainlink:ETH/USD" }),
    feeds: z.array(
      z.object({
        address: z.string(),
        roundId: z.string(),
        answer: z.string().openapi({ description: "The feed's raw answer (divide by 10^decimals)" }),
        decimals: z.number().int(),
        updatedAt: z.string().openapi({ description: "When the feed's round was updated (chain time)" }),
      }),
    ),
    observedAt: z.string().openapi({ description: "Chain time the feeds were read at" }),
    lockedUntil: z.string().nullable().openapi({ description: "Fiat-priced invoices: the rate is locked until then (the invoice's expiry)" }),
  })
  .openapi("InvoicePrice", {
    description: "The fiat price and the rate it was converted at (fiat-priced invoices), or the fiat valuation at creation (other invoices, `fiatAmount` null)",
  });

export type PriceView = z.infer<typeof PriceSchema>;

export function priceView(price: InvoicePrice | null | undefined): PriceView | null {
  if (!price) return null;
  return {
    fiatCurrency: price.fiatCurrency,
    fiatAmount: price.fiatAmount ?? null,
    rate: price.rate,
    source: price.source,
    feeds: price.feeds.map((feed) => ({ ...feed, updatedAt: iso(feed.updatedAt) })),
    observedAt: iso(price.observedAt),
    lockedUntil: price.lockedUntil !== undefined ? iso(price.lockedUntil) : null,
  };
}
