/**
 * Request and response schemas of the invoice routes (zod 4 with OpenAPI metadata). Requests are strict:
 * unknown fields are refused, so a misspelt field never silently falls back to a default.
 */
import { z } from "@hono/zod-openapi";
import { AddressSchema, queryInteger } from "../schemas";
import { INVOICE_STATUSES } from "../status";
import { PriceSchema } from "../prices/record";

const DAY = 86_400;
export const MIN_EXPIRY_SECONDS = 60;
export const MAX_EXPIRY_SECONDS = 30 * DAY;
export const MAX_HOLD_SECONDS = 365 * DAY;
export const MAX_METADATA_KEYS = 20;

const DECIMAL = /^(0|[1-9]\d{0,40})(?:\.\d+)?$/;
const ZERO = /^0(\.0+)?$/;

/** A positive decimal string; its precision is checked against the currency's decimals later. */
export const PositiveAmountSchema = z
  .string()
  .max(64)
  .refine((text) => DECIMAL.test(text), {
    message: 'must be a positive decimal string such as "25.00" (no sign, exponent or separators)',
  })
  .refine((text) => !DECIMAL.test(text) || !ZERO.test(text), { message: "must be greater than zero" })
  .openapi({ example: "25.00", description: "Decimal amount in the currency's units, as a string" });

const NonNegativeAmountSchema = z
  .string()
  .max(64)
  .refine((text) => DECIMAL.test(text), {
    message: 'must be a decimal string such as "12.50" (no sign, exponent or separators)',
  })
  .openapi({ example: "12.50" });

export const LineItemSchema = z
  .object({
    description: z.string().min(1).max(500),
    quantity: z.number().int().positive().max(1_000_000_000),
    unitAmount: NonNegativeAmountSchema,
  })
  .strict()
  .openapi("LineItem");

export const CustomerSchema = z
  .object({
    id: z.string().min(1).max(100).openapi({ description: "Your id for the customer", example: "cus_42" }),
    email: z.email().max(254).optional(),
  })
  .strict()
  .openapi("Customer");

/** Keys a JavaScript object cannot hold as plain data: refused by name instead of silently dropped. */
const RESERVED_KEYS = ["__proto__"];

export const MetadataSchema = z
  .preprocess(
    (value, context) => {
      if (value && typeof value === "object") {
        for (const key of RESERVED_KEYS) {
          if (Object.hasOwn(value, key)) context.addIssue({ code: "custom", path: [key], message: "is a reserved key" });
        }
      }
      return value;
    },
    z
      .record(z.string().min(1).max(40), z.string().max(500))
      .refine((value) => Object.keys(value).length <= MAX_METADATA_KEYS, {
        message: `must have at most ${MAX_METADATA_KEYS} keys`,
      }),
  )
  .openapi({ description: `Up to ${MAX_METADATA_KEYS} string keys (≤ 40 characters) with string values (≤ 500 characters)` });

const FutureDateSchema = z.iso.datetime({ offset: true });

export const MAX_REDIRECT_URL_LENGTH = 2_000;

/** Whether `text` is an https URL, or http on localhost (development): where the hosted checkout may send the customer. */
export function isRedirectUrl(text: string): boolean {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  if (url.username || url.password) return false;
  if (url.protocol === "https:") return true;
  return url.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(url.hostname);
}

export const RedirectUrlSchema = z
  .string()
  .max(MAX_REDIRECT_URL_LENGTH)
  .refine(isRedirectUrl, { message: "must be an https URL (or http://localhost for development), without credentials" });

export const CreateInvoiceBody = z
  .object({
    amount: PositiveAmountSchema,
    currency: z
      .string()
      .min(1)
      .max(64)
      .openapi({
        description: '"ETH", a token symbol known on the chain (e.g. "USDC"), an ERC-20 token address, "BTC" — or a fiat currency ("USD", "EUR", "CNY") with `payCurrency`',
        example: "USDC",
      }),
    payCurrency: z
      .string()
      .min(1)
      .max(64)
      .optional()
      .openapi({
        description:
          "Fiat-priced invoices: the currency the customer pays in (ETH, a token symbol or address, or BTC: then `chainId` only names the chain whose BTC/USD feed prices it). `amount` (and `lineItems`) are in the fiat `currency` and are converted at the current Chainlink rate, locked for the merchant's `rateLockSeconds` (the invoice's expiry). To let the customer pick the currency, create a single-use payment link instead",
        example: "ETH",
      }),
    chainId: z
      .number()
      .int()
      .positive()
      .optional()
      .openapi({ description: "Chain to be paid on; optional when the API serves a single chain", example: 31337 }),
    description: z.string().max(500).optional(),
    lineItems: z.array(LineItemSchema).max(100).optional(),
    customer: CustomerSchema.optional(),
    payer: AddressSchema.optional().openapi({ description: "Only this wallet may pay (default: anyone)" }),
    expiresInSeconds: z
      .number()
      .int()
      .min(MIN_EXPIRY_SECONDS)
      .max(MAX_EXPIRY_SECONDS)
      .optional()
      .openapi({ description: "Seconds until the invoice can no longer be paid (default from the server configuration)" }),
    holdSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_HOLD_SECONDS)
      .optional()
      .openapi({ description: "Seconds the payment stays in escrow before it can be released (default from the server configuration)" }),
    fulfillBy: FutureDateSchema.optional().openapi({
      description: "ISO 8601 date by which you must mark the invoice fulfilled, or the payer can take a full refund",
    }),
    arbiter: AddressSchema.optional().openapi({ description: "May settle disputes (default: no arbiter)" }),
    metadata: MetadataSchema.optional(),
    refundAddress: z
      .string()
      .min(1)
      .max(100)
      .optional()
      .openapi({ description: "BTC invoices: the customer's Bitcoin address for a refund (can also be given later)", example: "bc1q…" }),
    successUrl: RedirectUrlSchema.optional().openapi({ description: "Where the hosted checkout sends the customer once paid (https, ≤ 2,000 characters)" }),
    cancelUrl: RedirectUrlSchema.optional().openapi({ description: "Where the hosted checkout's cancel link goes (https, ≤ 2,000 characters)" }),
  })
  .strict()
  .openapi("CreateInvoice");

export type CreateInvoiceInput = z.infer<typeof CreateInvoiceBody>;

export const RefundBody = z
  .object({
    amount: PositiveAmountSchema.optional().openapi({ description: "Default: everything still held" }),
  })
  .strict()
  .openapi("RefundInvoice");

export const InvoiceIdParams = z.object({
  id: z.string().openapi({ param: { name: "id", in: "path" }, example: "inv_9sJc2m1kQ0aZ3xYt" }),
});

export const ListInvoicesQuery = z
  .object({
    status: z.enum(INVOICE_STATUSES).optional(),
    paymentLinkId: z.string().min(1).max(100).optional().openapi({ description: "Only the invoices created from this payment link" }),
    customerId: z.string().min(1).max(100).optional(),
    chainId: queryInteger(1, Number.MAX_SAFE_INTEGER).optional(),
    createdAfter: z.iso.datetime({ offset: true }).optional().openapi({ description: "Only invoices created after this instant" }),
    createdBefore: z.iso.datetime({ offset: true }).optional().openapi({ description: "Only invoices created before this instant" }),
    limit: queryInteger(1, 100).default(20),
    cursor: z
      .string()
      .max(200)
      .optional()
      .openapi({ description: "The `nextCursor` of the previous page" }),
  })
  .strict();

const TermsSchema = z
  .object({
    merchantId: z.string(),
    invoiceId: z.string(),
    token: z.string(),
    amount: z.string(),
    payer: z.string(),
    arbiter: z.string(),
    expiresAt: z.string(),
    holdDuration: z.number().int(),
    fulfillBy: z.string(),
    maxFeeBps: z.number().int().openapi({ description: "Highest protocol fee (basis points) the merchant accepts: payment fails if the escrow's fee is higher" }),
    detailsHash: z.string(),
  })
  .openapi("InvoiceTerms", { description: "The signed terms (BillingEscrow `Invoice` struct), integers as strings" });

const TransactionSchema = z
  .object({
    description: z.string(),
    to: z.string(),
    data: z.string(),
    value: z.string().openapi({ description: "Wei, decimal string" }),
    uri: z.string().openapi({ description: "EIP-681 link of this transaction (scan each link in order)" }),
  })
  .openapi("PaymentTransaction");

export const EvmPaymentSchema = z
  .object({
    chainId: z.number().int(),
    contract: z.string().openapi({ description: "BillingEscrow address" }),
    invoiceKey: z.string().openapi({ description: "EIP-712 digest of the terms: the invoice's key in the escrow" }),
    invoice: TermsSchema,
    typedData: z.object({
      domain: z.object({ name: z.string(), version: z.string(), chainId: z.number().int(), verifyingContract: z.string() }),
      types: z.record(z.string(), z.array(z.object({ name: z.string(), type: z.string() }))),
      primaryType: z.literal("Invoice"),
      message: TermsSchema,
    }),
    signature: z.string().openapi({ description: "The merchant signer's EIP-712 signature over the terms" }),
    transactions: z.array(TransactionSchema).openapi({
      description: "Send these in order from the paying wallet (ERC-20: approve, then pay; ETH: pay)",
    }),
    uri: z.string().openapi({
      description:
        "EIP-681 link of the first transaction. A token invoice needs two transactions (approve, then pay): use each transaction's own `uri`, in order; this one alone only approves",
    }),
    depositAddress: z.string().nullable().openapi({
      description:
        "The invoice's own address: send exactly the amount there with a plain transfer (any wallet, an exchange withdrawal); the service sweeps it into the escrow. Null on deployments without deposit addresses",
    }),
    depositUri: z.string().nullable().openapi({
      description: "EIP-681 link of that plain transfer, one per invoice (`ethereum:<token>@<chainId>/transfer?address=…&uint256=…`, or `ethereum:<address>@<chainId>?value=…` for ETH), for a QR code",
    }),
  })
  .openapi("EvmPayment");

export const EvmDepositSchema = z
  .object({
    address: z.string(),
    waitingAmount: z.string().openapi({ description: "At the deposit address now, not yet swept into the escrow" }),
    dueAmount: z.string().openapi({ description: "Still missing before the invoice can be swept (underpaid); 0 once enough arrived or once paid" }),
    excessAmount: z.string().openapi({ description: "Above the amount: waiting at the address, or held by the escrow for the refund address after the sweep" }),
    refundAddress: z.string().nullable().openapi({ description: "Where deposit money goes back (signed payer, or the one set on-chain); null while unknown" }),
    observedBlock: z.number().int().nullable().openapi({ description: "The block the deposit watcher read the address at: `waitingAmount` is as of it" }),
  })
  .openapi("EvmDeposit");

export const BtcPaymentSchema = z
  .object({
    network: z.string().openapi({ example: "bip122:000000000019d6689c085ae165831e93" }),
    address: z.string().openapi({ description: "This invoice's own receive address in the merchant's wallet" }),
    amountSats: z.string().openapi({ example: "150000" }),
    uri: z.string().openapi({ description: "BIP21 payment URI (for a QR code)", example: "bitcoin:bc1q…?amount=0.0015" }),
    custody: z.literal("merchant_wallet").openapi({
      description: "Bitcoin payments go straight to the merchant's own wallet: no escrow holds them, so there is no hold, release or dispute, and refunds are signed by the merchant (`POST /v1/invoices/{id}/refund` returns an unsigned PSBT)",
    }),
  })
  .openapi("BtcPayment");

const BtcReceivedSchema = z.object({
  txid: z.string(),
  vout: z.number().int(),
  amountSats: z.string(),
  confirmations: z.number().int(),
  blockHeight: z.number().int().nullable(),
  late: z.boolean().openapi({ description: "First seen after the invoice expired" }),
  status: z.enum(["unconfirmed", "confirmed", "removed"]),
  removedReason: z.string().nullable().openapi({ description: "replaced (RBF), double_spent or dropped (e.g. reorged out and gone)" }),
});

const BtcRefundSchema = z.object({
  id: z.string(),
  destination: z.string(),
  amountSats: z.string(),
  feeSats: z.string(),
  txid: z.string().openapi({ description: "Of the PSBT's transaction (segwit: signing does not change it)" }),
  status: z.enum(["awaiting_signature", "unconfirmed", "confirmed"]),
  seenTxid: z.string().nullable(),
  createdAt: z.string(),
});

export const BtcDetailsSchema = z
  .object({
    receivedSats: z.string().openapi({ description: "Everything that arrived and still counts (mempool included)" }),
    confirmedSats: z.string(),
    dueSats: z.string().openapi({ description: "Still missing (underpaid); 0 once enough arrived" }),
    overpaidSats: z.string(),
    paidLate: z.boolean(),
    refundedSats: z.string(),
    refundAddress: z.string().nullable(),
    payments: z.array(BtcReceivedSchema),
    refunds: z.array(BtcRefundSchema),
    indexedHeight: z.number().int().nullable().openapi({ description: "The last block the watcher processed: the status is as of that block" }),
  })
  .openapi("BtcInvoiceDetails");

export const InvoiceSchema = z
  .object({
    id: z.string(),
    status: z.enum(INVOICE_STATUSES),
    amount: z.string().openapi({ example: "25.00" }),
    amountBaseUnits: z.string().openapi({ example: "25000000" }),
    currency: z.string().openapi({ example: "USDC" }),
    token: z.string().nullable().openapi({ description: "Token address; the zero address is ETH; null for BTC" }),
    decimals: z.number().int(),
    chainId: z.number().int().nullable().openapi({ description: "EVM chain id; null for BTC (see `network`)" }),
    network: z.string().openapi({ description: "CAIP-2 id of the chain: `eip155:<chainId>`, or `bip122:<genesis>` for Bitcoin", example: "eip155:31337" }),
    createdAt: z.string(),
    expiresAt: z.string(),
    description: z.string().nullable(),
    lineItems: z.array(LineItemSchema),
    customer: CustomerSchema.nullable(),
    metadata: z.record(z.string(), z.string()),
    allowedPayer: z.string().nullable().openapi({ description: "Only this wallet may pay; null = anyone" }),
    arbiter: z.string().nullable(),
    holdSeconds: z.number().int(),
    fulfillBy: z.string().nullable(),
    maxFeeBps: z.number().int().openapi({ description: "Highest protocol fee (basis points) signed into the terms" }),
    fulfilled: z.boolean(),
    voidedAt: z.string().nullable().openapi({ description: "Block time of the indexed void transaction" }),
    payer: z.string().nullable().openapi({ description: "The wallet that paid" }),
    paidAt: z.string().nullable(),
    paidTransaction: z.string().nullable(),
    confirmations: z
      .number()
      .int()
      .nullable()
      .openapi({ description: "Blocks including and on top of the payment's block (0 while unpaid; null if the node is unreachable)" }),
    confirmationsRequired: z.number().int().openapi({ description: "Confirmations after which `invoice.confirmed` is sent (the merchant's policy for this chain)" }),
    releaseAt: z.string().nullable().openapi({ description: "When the hold ends" }),
    heldAmount: z.string().openapi({ description: "Still in escrow" }),
    refundedAmount: z.string(),
    releasedAmount: z.string().openapi({ description: "Paid out to the merchant, after the protocol fee" }),
    feeAmount: z.string(),
    disputeDeadline: z.string().nullable(),
    invoiceKey: z.string().nullable().openapi({ description: "EIP-712 digest of the terms (null for BTC)" }),
    detailsHash: z.string(),
    payment: z.object({ evm: EvmPaymentSchema.optional(), btc: BtcPaymentSchema.optional() }).openapi({ description: "`evm` for ETH and token invoices, `btc` for BTC invoices" }),
    bitcoin: BtcDetailsSchema.nullable().openapi({ description: "BTC invoices: what arrived, refunds, exceptions (null for EVM invoices)" }),
    deposit: EvmDepositSchema.nullable().openapi({ description: "EVM invoices with a deposit address: what arrived there (null for BTC and for deployments without deposit addresses)" }),
    price: PriceSchema.nullable().openapi({
      description: "Fiat-priced invoices: the fiat amount and the locked rate it was converted at; other invoices: their value in the merchant's fiat currency at creation (`fiatAmount` null), when a fresh rate existed",
    }),
    paymentLinkId: z.string().nullable().openapi({ description: "The payment link this invoice is a use of" }),
    checkout: z
      .object({
        url: z.string().openapi({ description: "The hosted checkout page (a path on this API's address): send the customer there to pay", example: "/pay/inv_9sJc2m1kQ0aZ3xYt" }),
        successUrl: z.string().nullable(),
        cancelUrl: z.string().nullable(),
      })
      .openapi("InvoiceCheckout", { description: "The hosted checkout: its page, and where it sends the customer back" }),
  })
  .openapi("Invoice");

export type InvoiceView = z.infer<typeof InvoiceSchema>;

export const InvoiceListSchema = z
  .object({
    data: z.array(InvoiceSchema),
    hasMore: z.boolean(),
    nextCursor: z.string().nullable().openapi({ description: "Pass as `cursor` for the next page" }),
  })
  .openapi("InvoiceList");

export const InvoiceActionSchema = z
  .object({
    transactionHash: z.string(),
    invoice: InvoiceSchema,
  })
  .openapi("InvoiceAction");
