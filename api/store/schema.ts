/**
 * The API's own store: merchants, API keys, invoices as created (terms, signature, off-chain details) and
 * idempotency records. On-chain state is never stored here: it is read from the indexer's tables (a void, a
 * refund or a fulfilment exists once its transaction is indexed, never because the API sent it).
 */
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
  createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
});

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
  ],
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
