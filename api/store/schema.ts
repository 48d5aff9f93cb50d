/**
 * The API's own store: merchants, API keys, invoices as created (terms, signature, off-chain details) and
 * idempotency records. On-chain state is never stored here: it is read from the indexer's tables (a void, a
 * refund or a fulfilment exists once its transaction is indexed, never because the API sent it).
 */
import { sql } from "drizzle-orm";
import { bigint, boolean, index, integer, jsonb, pgSchema, primaryKey, text, timestamp, uniqueIndex } from "drizzle-orm/pg-core";

export const apiSchema = pgSchema("chainbill_api");

export const merchants = apiSchema.table("merchants", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  /** The merchant's hot key on every chain: signs invoices, sends refunds and plan transactions. */
  signerAddress: text("signer_address").notNull(),
  /** AES-256-GCM encrypted private key of the signer (iv | tag | ciphertext, hex). */
  signerKeyEncrypted: text("signer_key_encrypted").notNull(),
  payoutAddress: text("payout_address").notNull(),
  ownerAddress: text("owner_address").notNull(),
  /**
   * How often the keeper pays out subscription income to the payout address (seconds since the last payout);
   * 0: never automatically (the merchant withdraws).
   */
  subscriptionPayoutIntervalSeconds: integer("subscription_payout_interval_seconds").notNull().default(86_400),
  /** Blocks after which a payment is `invoice.confirmed`, per chain id (a chain not listed: the chain's default). */
  confirmationPolicy: jsonb("confirmation_policy").$type<Record<string, number>>().notNull().default({}),
  /** The fiat currency statements are read in and fiat prices default to (USD, EUR or CNY). */
  fiatCurrency: text("fiat_currency").notNull().default("USD"),
  /** Seconds a fiat price converted to a token stays locked (the invoice's expiry). Default 15 minutes. */
  rateLockSeconds: integer("rate_lock_seconds").notNull().default(900),
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * The conversion recorded on an invoice priced in fiat (or valued in the merchant's fiat currency at creation):
 * `rate` is the price of one whole unit of the paid currency in `fiatCurrency`, as a decimal string, read from
 * `source` (a Chainlink feed address and round, or a derived pair) at `observedAt`.
 */
export interface InvoicePrice {
  fiatCurrency: string;
  /** The fiat amount the invoice was priced at (decimal string), when priced in fiat; absent when only valued. */
  fiatAmount?: string;
  rate: string;
  source: string;
  feeds: { address: string; roundId: string; answer: string; decimals: number; updatedAt: number }[];
  observedAt: number;
  lockedUntil?: number;
}

/** Checkout fields an invoice may carry (both EVM and BTC invoices). */
export interface CheckoutFields {
  successUrl?: string;
  cancelUrl?: string;
}

export const apiKeys = apiSchema.table(
  "api_keys",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    name: text("name").notNull(),
    /** First characters of the key, shown in listings so a merchant can tell keys apart. */
    prefix: text("prefix").notNull(),
    /** SHA-256 of the whole key (keys are 256-bit random, so no salt or slow hash is needed). */
    hash: text("hash").notNull(),
    scopes: jsonb("scopes").$type<string[]>().notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
  },
  (table) => [uniqueIndex("api_keys_hash").on(table.hash), index("api_keys_merchant").on(table.merchantId)],
);

export const invoices = apiSchema.table(
  "invoices",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    chainId: integer("chain_id").notNull(),
    onchainMerchantId: bigint("onchain_merchant_id", { mode: "bigint" }).notNull(),
    /** bytes32 invoice id in the signed terms. */
    invoiceRef: text("invoice_ref").notNull(),
    /** EIP-712 digest of the terms: the escrow's key. */
    invoiceKey: text("invoice_key").notNull(),
    escrowAddress: text("escrow_address").notNull(),
    currency: text("currency").notNull(),
    token: text("token").notNull(),
    decimals: integer("decimals").notNull(),
    amount: text("amount").notNull(),
    payer: text("payer").notNull(),
    arbiter: text("arbiter").notNull(),
    expiresAt: bigint("expires_at", { mode: "bigint" }).notNull(),
    holdDuration: integer("hold_duration").notNull(),
    fulfillBy: bigint("fulfill_by", { mode: "bigint" }).notNull(),
    /** Highest protocol fee (basis points) signed into the terms. */
    maxFeeBps: integer("max_fee_bps").notNull().default(0),
    detailsHash: text("details_hash").notNull(),
    signature: text("signature").notNull(),
    /**
     * The invoice's deposit address (CREATE2 by the escrow, salt = the key), when its escrow supports deposits;
     * null on deployments older than deposit addresses (they must not advertise an address nobody sweeps).
     */
    depositAddress: text("deposit_address"),
    /** The payment link this invoice is a use of. */
    paymentLinkId: text("payment_link_id"),
    /** The fiat price and the rate it was converted at (see InvoicePrice). */
    price: jsonb("price").$type<InvoicePrice>(),
    /** Where the hosted checkout sends the customer back. */
    checkout: jsonb("checkout").$type<CheckoutFields>(),
    description: text("description"),
    lineItems: jsonb("line_items").$type<{ description: string; quantity: number; unitAmount: string }[]>(),
    customerId: text("customer_id"),
    customerEmail: text("customer_email"),
    metadata: jsonb("metadata").$type<Record<string, string>>(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** Monotonic sequence for stable cursor pagination. */
    sequence: bigint("sequence", { mode: "number" }).generatedAlwaysAsIdentity(),
  },
  (table) => [
    uniqueIndex("invoices_key").on(table.chainId, table.invoiceKey),
    index("invoices_merchant_sequence").on(table.merchantId, table.sequence),
    index("invoices_customer").on(table.merchantId, table.customerId),
    index("invoices_deposit_watch").on(table.chainId, table.expiresAt).where(sql`${table.depositAddress} IS NOT NULL`),
    index("invoices_payment_link").on(table.paymentLinkId, table.sequence).where(sql`${table.paymentLinkId} IS NOT NULL`),
  ],
);

/**
 * What the deposit watcher last read at an EVM invoice's deposit address (its currency's balance there, not yet
 * swept), one row per invoice that ever had money waiting. Cleared to zero when a sweep or a return empties it.
 */
export const evmDeposits = apiSchema.table("evm_deposits", {
  invoiceId: text("invoice_id").primaryKey(),
  chainId: integer("chain_id").notNull(),
  /** Base units at the address at `block` (the invoice's currency). */
  balance: text("balance").notNull(),
  /** The block the balance was read at. */
  block: bigint("block", { mode: "bigint" }).notNull(),
  firstSeenAt: timestamp("first_seen_at", { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

/**
 * Reusable payment links: a price (fixed, or chosen by the customer above a minimum) in fiat or in a currency
 * paid directly, optionally times a quantity the customer picks. Each use creates an invoice
 * (`invoices.payment_link_id`). `singleUse` links accept one paid invoice (an invoice sent to one customer).
 */
export const paymentLinks = apiSchema.table(
  "payment_links",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    name: text("name").notNull(),
    description: text("description"),
    /** "fixed" | "customer_chosen". */
    pricing: text("pricing").notNull(),
    /** USD / EUR / CNY, or a currency paid directly (ETH, a token symbol). */
    currency: text("currency").notNull(),
    /** Fixed price per unit (decimal string), when pricing is fixed. */
    amount: text("amount"),
    /** Lowest amount the customer may choose, when pricing is customer_chosen. */
    minimumAmount: text("minimum_amount"),
    /** Highest amount the customer may choose (optional). */
    maximumAmount: text("maximum_amount"),
    /** Largest quantity a customer may pick (1: no quantity choice). */
    maxQuantity: integer("max_quantity").notNull().default(1),
    /** What the customer may pay in (currency symbols), for fiat-priced links. */
    accept: jsonb("accept").$type<string[]>(),
    chainId: integer("chain_id"),
    singleUse: boolean("single_use").notNull().default(false),
    lineItemDescription: text("line_item_description"),
    checkout: jsonb("checkout").$type<CheckoutFields>(),
    metadata: jsonb("metadata").$type<Record<string, string>>(),
    active: boolean("active").notNull().default(true),
    deactivatedAt: timestamp("deactivated_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    sequence: bigint("sequence", { mode: "number" }).generatedAlwaysAsIdentity(),
  },
  (table) => [index("payment_links_merchant_sequence").on(table.merchantId, table.sequence)],
);

export const idempotencyRecords = apiSchema.table(
  "idempotency_records",
  {
    merchantId: text("merchant_id").notNull(),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    statusCode: integer("status_code"),
    responseBody: jsonb("response_body"),
    completed: boolean("completed").notNull().default(false),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.merchantId, table.key] })],
);

// ------------------------------------------------------------------------------------------------ webhooks

/** A merchant's webhook endpoint. Secrets are `whsec_…` (Standard Webhooks), encrypted at rest. */
export const webhookEndpoints = apiSchema.table(
  "webhook_endpoints",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    url: text("url").notNull(),
    description: text("description"),
    /** Event types delivered; empty: every type. */
    eventTypes: jsonb("event_types").$type<string[]>().notNull(),
    secretEncrypted: text("secret_encrypted").notNull(),
    /** The secret before the last rotation, still signing (beside the new one) until `previousSecretExpiresAt`. */
    previousSecretEncrypted: text("previous_secret_encrypted"),
    previousSecretExpiresAt: timestamp("previous_secret_expires_at", { withTimezone: true }),
    /** `npm run listen` endpoints: deleted when they expire. */
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    disabledAt: timestamp("disabled_at", { withTimezone: true }),
    disabledReason: text("disabled_reason"),
    /** Start of the current run of failed attempts (null: the last attempt succeeded). */
    failingSince: timestamp("failing_since", { withTimezone: true }),
    consecutiveFailures: integer("consecutive_failures").notNull().default(0),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index("webhook_endpoints_merchant").on(table.merchantId)],
);

/**
 * Events for merchants (the outbox): derived from the indexed `activity` rows, from confirmations, expiries and
 * reorgs, and from alerts. The id is a hash of what the event reports, so deriving it again never duplicates it.
 */
export const webhookEvents = apiSchema.table(
  "webhook_events",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    type: text("type").notNull(),
    /** The whole body delivered: `{ id, type, timestamp, data }`. */
    payload: jsonb("payload").$type<Record<string, unknown>>().notNull(),
    /** Events with the same key are delivered in order to each endpoint (an invoice, a subscription). */
    orderKey: text("order_key").notNull(),
    chainId: integer("chain_id"),
    /** The indexed activity row this event reports, with its block (to notice a reorg). */
    sourceId: text("source_id"),
    blockNumber: bigint("block_number", { mode: "bigint" }),
    blockHash: text("block_hash"),
    /** Set when the block that carried the event left the chain (a reorg). */
    revertedAt: timestamp("reverted_at", { withTimezone: true }),
    /** `invoice.paid` only: when its `invoice.confirmed` was stored. */
    confirmedAt: timestamp("confirmed_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    sequence: bigint("sequence", { mode: "number" }).generatedAlwaysAsIdentity(),
  },
  (table) => [
    index("webhook_events_merchant_sequence").on(table.merchantId, table.sequence),
    index("webhook_events_chain_block").on(table.chainId, table.blockNumber),
    index("webhook_events_unconfirmed")
      .on(table.chainId, table.blockNumber)
      .where(sql`${table.type} = 'invoice.paid' AND ${table.confirmedAt} IS NULL AND ${table.revertedAt} IS NULL`),
  ],
);

/** One event to one endpoint: pending until a 2xx answer, failed after the retry schedule. */
export const webhookDeliveries = apiSchema.table(
  "webhook_deliveries",
  {
    id: bigint("id", { mode: "number" }).generatedAlwaysAsIdentity().primaryKey(),
    eventId: text("event_id").notNull(),
    endpointId: text("endpoint_id").notNull(),
    merchantId: text("merchant_id").notNull(),
    orderKey: text("order_key").notNull(),
    eventSequence: bigint("event_sequence", { mode: "number" }).notNull(),
    /** pending | succeeded | failed */
    status: text("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }).notNull().defaultNow(),
    /** A worker holds the delivery until then (a crashed worker's lease runs out and another one retries). */
    lockedUntil: timestamp("locked_until", { withTimezone: true }),
    lockedBy: text("locked_by"),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    completedAt: timestamp("completed_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [
    uniqueIndex("webhook_deliveries_endpoint_event").on(table.endpointId, table.eventId),
    index("webhook_deliveries_due").on(table.status, table.nextAttemptAt),
    index("webhook_deliveries_order").on(table.endpointId, table.orderKey, table.eventSequence),
  ],
);

/** The delivery log: every attempt with its answer. */
export const webhookAttempts = apiSchema.table(
  "webhook_attempts",
  {
    id: bigint("id", { mode: "number" }).generatedAlwaysAsIdentity().primaryKey(),
    deliveryId: bigint("delivery_id", { mode: "number" }).notNull(),
    endpointId: text("endpoint_id").notNull(),
    eventId: text("event_id").notNull(),
    attempt: integer("attempt").notNull(),
    /** HTTP status, or null when no answer came (refused, timeout, blocked address). */
    statusCode: integer("status_code"),
    latencyMs: integer("latency_ms").notNull(),
    responseExcerpt: text("response_excerpt"),
    error: text("error"),
    worker: text("worker").notNull(),
    attemptedAt: timestamp("attempted_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index("webhook_attempts_endpoint").on(table.endpointId, table.id), index("webhook_attempts_event").on(table.eventId)],
);

/** Where the event deriver stands, per source (e.g. `activity:<chainId>`, `expiry:<chainId>`). */
export const eventCursors = apiSchema.table("event_cursors", {
  name: text("name").primaryKey(),
  position: bigint("position", { mode: "bigint" }).notNull(),
  updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
});

// ------------------------------------------------------------------------------------------------ audit and alerts

/**
 * Append-only audit log of administrative actions. Each entry's `hash` is SHA-256 over the previous entry's
 * hash and the entry itself, so removing or changing one breaks the chain; a trigger refuses UPDATE and DELETE.
 */
export const auditLog = apiSchema.table(
  "audit_log",
  {
    sequence: bigint("sequence", { mode: "number" }).primaryKey(),
    merchantId: text("merchant_id"),
    /** merchant | admin | keeper | system */
    actor: text("actor").notNull(),
    apiKeyId: text("api_key_id"),
    requestId: text("request_id"),
    action: text("action").notNull(),
    target: text("target"),
    details: jsonb("details").$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull(),
    previousHash: text("previous_hash").notNull(),
    hash: text("hash").notNull(),
  },
  (table) => [index("audit_log_merchant").on(table.merchantId, table.sequence)],
);

/** A merchant's alert rules (`rule` names a built-in rule; `settings` its thresholds). */
export const alertRules = apiSchema.table(
  "alert_rules",
  {
    merchantId: text("merchant_id").notNull(),
    rule: text("rule").notNull(),
    enabled: boolean("enabled").notNull().default(true),
    settings: jsonb("settings").$type<Record<string, string | number>>().notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.merchantId, table.rule] })],
);

/** Alerts raised (each also an `alert.raised` event). */
export const alerts = apiSchema.table(
  "alerts",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    rule: text("rule").notNull(),
    message: text("message").notNull(),
    details: jsonb("details").$type<Record<string, unknown>>().notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    sequence: bigint("sequence", { mode: "number" }).generatedAlwaysAsIdentity(),
  },
  (table) => [index("alerts_merchant_sequence").on(table.merchantId, table.sequence)],
);

/** Client addresses each API key was used from (the `new client address` alert). */
export const apiKeyClients = apiSchema.table(
  "api_key_clients",
  {
    apiKeyId: text("api_key_id").notNull(),
    client: text("client").notNull(),
    firstSeenAt: timestamp("first_seen_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [primaryKey({ columns: [table.apiKeyId, table.client] })],
);

// ------------------------------------------------------------------------------------------------ bitcoin

/**
 * A merchant's Bitcoin account: the public account key (as its canonical descriptor; never a private key) whose
 * receive addresses invoices are paid to. Replacing the key retires the old account; its addresses stay watched.
 */
export const btcWallets = apiSchema.table(
  "btc_wallets",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    network: text("network").notNull(),
    script: text("script").notNull(),
    /** `wpkh([origin]xpub/0/*)#checksum` or `tr(...)`: public data only. */
    descriptor: text("descriptor").notNull(),
    gapLimit: integer("gap_limit").notNull().default(20),
    /** Confirmations after which a payment is `invoice.confirmed`: 0, 1, 2 or 6. */
    confirmations: integer("confirmations").notNull().default(1),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    retiredAt: timestamp("retired_at", { withTimezone: true }),
  },
  (table) => [uniqueIndex("btc_wallets_active").on(table.merchantId).where(sql`${table.retiredAt} IS NULL`)],
);

/** Receive addresses handed out, by index; `invoiceId` is the invoice it was last given to. */
export const btcAddresses = apiSchema.table(
  "btc_addresses",
  {
    walletId: text("wallet_id").notNull(),
    index: integer("index").notNull(),
    address: text("address").notNull(),
    /** Output script (hex): what the watcher matches in transactions. */
    script: text("script").notNull(),
    invoiceId: text("invoice_id").notNull(),
    /** Set by the watcher the first time anything arrives: such an address is never given to another invoice. */
    receivedAt: timestamp("received_at", { withTimezone: true }),
  },
  (table) => [primaryKey({ columns: [table.walletId, table.index] }), uniqueIndex("btc_addresses_script").on(table.script)],
);

/** BTC invoices: paid straight to the merchant's wallet (no escrow), watched by api/bitcoin/watcher.ts. */
export const btcInvoices = apiSchema.table(
  "btc_invoices",
  {
    id: text("id").primaryKey(),
    merchantId: text("merchant_id").notNull(),
    walletId: text("wallet_id").notNull(),
    network: text("network").notNull(),
    address: text("address").notNull(),
    addressIndex: integer("address_index").notNull(),
    script: text("script").notNull(),
    amountSats: bigint("amount_sats", { mode: "bigint" }).notNull(),
    expiresAt: bigint("expires_at", { mode: "bigint" }).notNull(),
    detailsHash: text("details_hash").notNull(),
    description: text("description"),
    lineItems: jsonb("line_items").$type<{ description: string; quantity: number; unitAmount: string }[]>(),
    customerId: text("customer_id"),
    customerEmail: text("customer_email"),
    metadata: jsonb("metadata").$type<Record<string, string>>(),
    /** Where a refund goes: given at creation, or later by the merchant. */
    refundAddress: text("refund_address"),
    paymentLinkId: text("payment_link_id"),
    price: jsonb("price").$type<InvoicePrice>(),
    checkout: jsonb("checkout").$type<CheckoutFields>(),
    /** What the watcher last announced (webhooks are sent on changes of these). */
    notified: jsonb("notified").$type<{ status?: string; confirmed?: boolean; refundedSats?: string; generation?: number }>().notNull().default({}),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** Shares the invoices' sequence, so one cursor pages EVM and BTC invoices together. */
    sequence: bigint("sequence", { mode: "number" })
      .notNull()
      .default(sql`nextval('chainbill_api.invoices_sequence_seq')`),
  },
  (table) => [
    index("btc_invoices_merchant_sequence").on(table.merchantId, table.sequence),
    index("btc_invoices_script").on(table.script, table.sequence),
    index("btc_invoices_network_sequence").on(table.network, table.sequence),
    // The watcher's two scans (api/bitcoin/watcher.ts settle): paid but not yet confirmed; open (to expire).
    index("btc_invoices_unconfirmed")
      .on(table.network)
      .where(sql`(${table.notified} ->> 'status') IN ('paid', 'partially_refunded', 'refunded') AND (${table.notified} ->> 'confirmed') IS DISTINCT FROM 'true'`),
    index("btc_invoices_open").on(table.network, table.expiresAt).where(sql`coalesce(${table.notified} ->> 'status', 'open') = 'open'`),
    index("btc_invoices_customer").on(table.merchantId, table.customerId),
  ],
);

/** Outputs paying a watched address, from the mempool or a block. `removedAt`: replaced, double-spent or reorged out. */
export const btcPayments = apiSchema.table(
  "btc_payments",
  {
    txid: text("txid").notNull(),
    vout: integer("vout").notNull(),
    invoiceId: text("invoice_id").notNull(),
    merchantId: text("merchant_id").notNull(),
    amountSats: bigint("amount_sats", { mode: "bigint" }).notNull(),
    /** The transaction's inputs (`txid:index`), to notice a conflicting spend. */
    inputs: jsonb("inputs").$type<string[]>().notNull(),
    rbf: boolean("rbf").notNull(),
    blockHash: text("block_hash"),
    blockHeight: integer("block_height"),
    blockTime: bigint("block_time", { mode: "number" }),
    /** Chain time (unix seconds) when first seen. */
    firstSeen: bigint("first_seen", { mode: "number" }).notNull(),
    late: boolean("late").notNull(),
    removedAt: timestamp("removed_at", { withTimezone: true }),
    removedReason: text("removed_reason"),
  },
  (table) => [primaryKey({ columns: [table.txid, table.vout] }), index("btc_payments_invoice").on(table.invoiceId)],
);

/** Refund PSBTs handed to merchants, and the transaction that carried each out once the watcher saw it. */
export const btcRefunds = apiSchema.table(
  "btc_refunds",
  {
    id: text("id").primaryKey(),
    invoiceId: text("invoice_id").notNull(),
    merchantId: text("merchant_id").notNull(),
    destination: text("destination").notNull(),
    destinationScript: text("destination_script").notNull(),
    amountSats: bigint("amount_sats", { mode: "bigint" }).notNull(),
    feeSats: bigint("fee_sats", { mode: "bigint" }).notNull(),
    /** txid of the PSBT's transaction (final for segwit: signing does not change it). */
    txid: text("txid").notNull(),
    inputs: jsonb("inputs").$type<string[]>().notNull(),
    psbt: text("psbt").notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    /** The transaction seen paying it (the PSBT's, or a fee-bumped replacement spending the same inputs). */
    seenTxid: text("seen_txid"),
    paidSats: bigint("paid_sats", { mode: "bigint" }),
    blockHash: text("block_hash"),
    blockHeight: integer("block_height"),
    blockTime: bigint("block_time", { mode: "number" }),
  },
  (table) => [index("btc_refunds_invoice").on(table.invoiceId)],
);

/** The watcher's cursor: the blocks it has processed (a window, to find the fork point of a reorg). */
export const btcBlocks = apiSchema.table(
  "btc_blocks",
  {
    network: text("network").notNull(),
    height: integer("height").notNull(),
    hash: text("hash").notNull(),
    time: bigint("time", { mode: "number" }).notNull(),
  },
  (table) => [primaryKey({ columns: [table.network, table.height] })],
);

/**
 * Plans priced in fiat (api/subscriptions/fiat.ts): the fiat price of an on-chain plan and the rate its token
 * price was last set at. The repricer keeps the on-chain price within the threshold of the fiat price at the
 * current rate; `price` is the record of the rate in force (the one the on-chain price was computed from).
 */
export const planPrices = apiSchema.table(
  "plan_prices",
  {
    chainId: integer("chain_id").notNull(),
    planId: integer("plan_id").notNull(),
    merchantId: text("merchant_id").notNull(),
    fiatCurrency: text("fiat_currency").notNull(),
    /** The fiat price per period (decimal string, two decimals). */
    fiatAmount: text("fiat_amount").notNull(),
    /** The paying currency's symbol and token address. */
    payCurrency: text("pay_currency").notNull(),
    token: text("token").notNull(),
    /** The token price (base units) set on-chain from `price`. */
    priceUnits: text("price_units").notNull(),
    price: jsonb("price").$type<InvoicePrice>().notNull(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    /** The repricer's last look, and why it could not reprice then (a stale, deviating or de-pegged rate). */
    checkedAt: timestamp("checked_at", { withTimezone: true }),
    rateUnavailable: text("rate_unavailable"),
  },
  (table) => [primaryKey({ columns: [table.chainId, table.planId] }), index("plan_prices_merchant").on(table.merchantId)],
);

/** Every token price a fiat plan was given (creation, repricing, a merchant's change), with its rate record. */
export const planPriceChanges = apiSchema.table(
  "plan_price_changes",
  {
    id: bigint("id", { mode: "number" }).generatedAlwaysAsIdentity().primaryKey(),
    chainId: integer("chain_id").notNull(),
    planId: integer("plan_id").notNull(),
    /** created | repriced | changed */
    reason: text("reason").notNull(),
    fiatAmount: text("fiat_amount").notNull(),
    previousUnits: text("previous_units"),
    priceUnits: text("price_units").notNull(),
    price: jsonb("price").$type<InvoicePrice>().notNull(),
    transactionHash: text("transaction_hash").notNull(),
    /** Chain time of the rate's reading (the statement looks up the rate in force at a charge by it). */
    observedAt: bigint("observed_at", { mode: "number" }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (table) => [index("plan_price_changes_plan").on(table.chainId, table.planId, table.observedAt)],
);
