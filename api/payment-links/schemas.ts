/**
 * Request and response schemas of payment links: the merchant's side (`/v1/payment-links`) and the public side
 * the hosted checkout's link page calls (`/links/{id}`, no API key).
 */
import { z } from "@hono/zod-openapi";
import { queryInteger } from "../schemas";
import { MetadataSchema, PositiveAmountSchema, RedirectUrlSchema } from "../invoices/schemas";

export const MAX_LINK_QUANTITY = 1_000;

const CurrencyField = z.string().trim().min(1).max(64);

const FixedPrice = z
  .object({
    type: z.literal("fixed"),
    amount: PositiveAmountSchema.openapi({ description: "Price per unit, in `currency`" }),
    currency: CurrencyField.openapi({ description: 'USD, EUR or CNY (the customer pays in one of `accept`, converted at the rate of the moment), or a currency paid directly: "ETH", a token symbol or address', example: "USD" }),
  })
  .strict();

const ChosenPrice = z
  .object({
    type: z.literal("customer_chosen"),
    currency: CurrencyField.openapi({ example: "USD" }),
    minimum: PositiveAmountSchema.openapi({ description: "Lowest amount the customer may pay (donations, tips)" }),
    maximum: PositiveAmountSchema.optional().openapi({ description: "Highest amount the customer may pay (optional)" }),
  })
  .strict();

export const CreatePaymentLinkBody = z
  .object({
    name: z.string().trim().min(1).max(200).openapi({ description: "Shown to the customer; the invoice's description", example: "Coffee beans, 1 kg" }),
    description: z.string().max(1_000).optional(),
    price: z.discriminatedUnion("type", [FixedPrice, ChosenPrice]).openapi({
      description: "`fixed`: the same price per unit for everyone (times the quantity the customer picks, up to `quantity.maximum`); `customer_chosen`: the customer enters the amount, at least `minimum` (donations, tips)",
    }),
    quantity: z
      .object({ maximum: z.number().int().min(1).max(MAX_LINK_QUANTITY) })
      .strict()
      .optional()
      .openapi({ description: "Fixed prices: the customer may buy up to `maximum` units (default 1: no choice)" }),
    accept: z
      .array(z.string().trim().min(1).max(64))
      .min(1)
      .max(10)
      .optional()
      .openapi({
        description:
          "Fiat prices: the currencies the customer may pay in (default: every currency with a price feed on the chain, e.g. ETH and USDC, and BTC when Bitcoin is enabled and your account key is registered). Not for prices in a currency paid directly",
        example: ["ETH", "USDC", "BTC"],
      }),
    chainId: z.number().int().positive().optional().openapi({ description: "Chain the invoices are paid on; optional when the API serves one chain" }),
    singleUse: z.boolean().optional().openapi({
      description: "An invoice for one customer: the link stops creating invoices once one of its invoices is paid, and holds at most one open invoice at a time",
    }),
    lineItemDescription: z.string().min(1).max(500).optional().openapi({ description: "The line item's text on each invoice (default: `name`)" }),
    successUrl: RedirectUrlSchema.optional(),
    cancelUrl: RedirectUrlSchema.optional(),
    metadata: MetadataSchema.optional(),
  })
  .strict()
  .openapi("CreatePaymentLink");

export type CreatePaymentLinkInput = z.infer<typeof CreatePaymentLinkBody>;

const TotalSchema = z.object({ currency: z.string(), amount: z.string(), amountBaseUnits: z.string(), count: z.number().int() });

export const PaymentLinkSchema = z
  .object({
    id: z.string().openapi({ example: "link_Qm9vZ3V3Y2h5c3Rl" }),
    url: z.string().openapi({ description: "The hosted page customers open (`/l/{id}` on this API)" }),
    name: z.string(),
    description: z.string().nullable(),
    pricing: z.enum(["fixed", "customer_chosen"]),
    currency: z.string().openapi({ description: "USD, EUR, CNY, or the currency paid directly" }),
    amount: z.string().nullable().openapi({ description: "Fixed price per unit" }),
    minimum: z.string().nullable(),
    maximum: z.string().nullable(),
    maxQuantity: z.number().int(),
    accept: z.array(z.string()).openapi({ description: "What the customer may pay in" }),
    chainId: z.number().int(),
    singleUse: z.boolean(),
    lineItemDescription: z.string().nullable(),
    checkout: z.object({ successUrl: z.string().nullable(), cancelUrl: z.string().nullable() }),
    metadata: z.record(z.string(), z.string()),
    active: z.boolean(),
    deactivatedAt: z.string().nullable(),
    createdAt: z.string(),
    stats: z
      .object({
        invoices: z.number().int().openapi({ description: "Invoices created from the link" }),
        paid: z.number().int().openapi({ description: "Of which paid (as indexed)" }),
        open: z.number().int().openapi({ description: "Of which unpaid and not expired" }),
        totals: z.array(TotalSchema).openapi({ description: "Paid, per currency paid in" }),
      })
      .optional()
      .openapi({ description: "`GET /v1/payment-links/{id}` only" }),
  })
  .openapi("PaymentLink");

export type PaymentLinkView = z.infer<typeof PaymentLinkSchema>;

export const PaymentLinkListSchema = z
  .object({ data: z.array(PaymentLinkSchema), hasMore: z.boolean(), nextCursor: z.string().nullable() })
  .openapi("PaymentLinkList");

export const ListPaymentLinksQuery = z
  .object({
    active: z.enum(["true", "false"]).optional().openapi({ description: "Only active (or only deactivated) links" }),
    limit: queryInteger(1, 100).default(20),
    cursor: z.string().max(200).optional(),
  })
  .strict();

export const LinkIdParams = z.object({
  id: z.string().min(1).max(100).openapi({ param: { name: "id", in: "path" }, example: "link_Qm9vZ3V3Y2h5c3Rl" }),
});

export const PublicPaymentLinkSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    description: z.string().nullable(),
    merchant: z.object({ name: z.string() }),
    pricing: z.enum(["fixed", "customer_chosen"]),
    currency: z.string(),
    amount: z.string().nullable(),
    minimum: z.string().nullable(),
    maximum: z.string().nullable(),
    maxQuantity: z.number().int(),
    accept: z.array(z.object({ currency: z.string(), chainId: z.number().int().nullable().openapi({ description: "Null for BTC" }), decimals: z.number().int() })),
    active: z.boolean(),
    singleUse: z.boolean(),
    used: z.boolean().openapi({ description: "Single-use links: already paid (no more invoices)" }),
  })
  .openapi("PublicPaymentLink");

export const UsePaymentLinkBody = z
  .object({
    currency: CurrencyField.openapi({ description: "What the customer pays in: one of the link's `accept` currencies", example: "ETH" }),
    chainId: z.number().int().positive().optional(),
    amount: z
      .string()
      .max(64)
      .optional()
      .openapi({ description: "Customer-chosen prices: the amount, in the link's currency (a plain decimal string)", example: "5.00" }),
    quantity: z.number().int().min(1).max(MAX_LINK_QUANTITY).optional(),
    customer: z.object({ email: z.email().max(254).optional() }).strict().optional(),
  })
  .strict()
  .openapi("UsePaymentLink");

export type UsePaymentLinkInput = z.infer<typeof UsePaymentLinkBody>;

export const LinkInvoiceSchema = z
  .object({
    invoiceId: z.string(),
    checkoutUrl: z.string().openapi({ description: "The hosted checkout of the invoice (`/pay/{invoiceId}`)" }),
    expiresAt: z.string().openapi({ description: "Pay before then (fiat prices: the end of the rate lock)" }),
    amount: z.string(),
    currency: z.string(),
    chainId: z.number().int().nullable().openapi({ description: "Null for a BTC invoice" }),
    fiatAmount: z.string().nullable(),
    fiatCurrency: z.string().nullable(),
    rate: z.string().nullable(),
  })
  .openapi("PaymentLinkInvoice");
