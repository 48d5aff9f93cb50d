/**
 * The indexed model of chainbill: one table per on-chain concept, chain id in every key, and a ledger with one
 * row per balance movement from the merchant's point of view. Statements are computed from the ledger.
 * Amounts are bigint base units; timestamps are unix seconds (bigint) from the block.
 */
import { index, onchainTable, primaryKey } from "ponder";

/** Merchants registered in BillingEscrow's registry. */
export const merchant = onchainTable(
  "merchant",
  (t) => ({
    chainId: t.integer().notNull(),
    merchantId: t.bigint().notNull(),
    owner: t.hex().notNull(),
    payout: t.hex().notNull(),
    signer: t.hex().notNull(),
    registeredAt: t.bigint().notNull(),
    registeredBlock: t.bigint().notNull(),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.chainId, table.merchantId] }),
    byOwnerSigner: index().on(table.chainId, table.owner, table.signer),
  }),
);

/**
 * On-chain state of a paid (or voided) invoice, keyed by its EIP-712 digest.
 * status: held | disputed | released | refunded | voided.
 */
export const invoice = onchainTable(
  "invoice",
  (t) => ({
    chainId: t.integer().notNull(),
    key: t.hex().notNull(),
    merchantId: t.bigint().notNull(),
    invoiceId: t.hex().notNull(),
    status: t.text().notNull(),
    payer: t.hex(),
    token: t.hex(),
    amount: t.bigint().notNull().default(0n),
    feeBps: t.integer().notNull().default(0),
    refundedAmount: t.bigint().notNull().default(0n),
    releasedAmount: t.bigint().notNull().default(0n),
    feeAmount: t.bigint().notNull().default(0n),
    fulfilled: t.boolean().notNull().default(false),
    releaseAt: t.bigint(),
    fulfillBy: t.bigint(),
    disputeDeadline: t.bigint(),
    /** The invoice's latest dispute row, if it was ever disputed. */
    lastDisputeId: t.text(),
    paidAt: t.bigint(),
    paidBlock: t.bigint(),
    paidTransaction: t.hex(),
    /** Swept from the deposit address beyond the amount, held for the refund address (DepositHeld). */
    depositHeld: t.bigint().notNull().default(0n),
    updatedAt: t.bigint().notNull(),
    updatedBlock: t.bigint().notNull(),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.chainId, table.key] }),
    byMerchantInvoice: index().on(table.chainId, table.merchantId, table.invoiceId),
    byPayer: index().on(table.payer),
  }),
);

/**
 * Refund addresses named with `setRefundAddress` (for invoices paid, or to be paid, through their deposit address
 * with no known payer), and what `returnDeposit` sent back to them.
 */
export const depositAccount = onchainTable(
  "deposit_account",
  (t) => ({
    chainId: t.integer().notNull(),
    key: t.hex().notNull(),
    merchantId: t.bigint().notNull(),
    refundTo: t.hex(),
    refundToSetBy: t.hex(),
    refundToSetAt: t.bigint(),
    returned: t.bigint().notNull().default(0n),
    lastReturnTransaction: t.hex(),
    recovered: t.integer().notNull().default(0),
    updatedAt: t.bigint().notNull(),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.chainId, table.key] }),
  }),
);

/** One row per InvoicePaid event. */
export const payment = onchainTable(
  "payment",
  (t) => ({
    id: t.text().primaryKey(),
    chainId: t.integer().notNull(),
    key: t.hex().notNull(),
    merchantId: t.bigint().notNull(),
    invoiceId: t.hex().notNull(),
    payer: t.hex().notNull(),
    token: t.hex().notNull(),
    amount: t.bigint().notNull(),
    feeBps: t.integer().notNull(),
    releaseAt: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
    blockNumber: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
  }),
  (table) => ({ byKey: index().on(table.chainId, table.key) }),
);

/** One row per InvoiceRefunded event. reason: merchant | unfulfilled | dispute_expired | arbiter. */
export const refund = onchainTable(
  "refund",
  (t) => ({
    id: t.text().primaryKey(),
    chainId: t.integer().notNull(),
    key: t.hex().notNull(),
    merchantId: t.bigint().notNull(),
    payer: t.hex().notNull(),
    token: t.hex().notNull(),
    amount: t.bigint().notNull(),
    totalRefunded: t.bigint().notNull(),
    reason: t.text().notNull(),
    timestamp: t.bigint().notNull(),
    blockNumber: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
  }),
  (table) => ({ byKey: index().on(table.chainId, table.key) }),
);

/** One row per InvoiceReleased event. */
export const release = onchainTable(
  "release",
  (t) => ({
    id: t.text().primaryKey(),
    chainId: t.integer().notNull(),
    key: t.hex().notNull(),
    merchantId: t.bigint().notNull(),
    payout: t.hex().notNull(),
    token: t.hex().notNull(),
    amount: t.bigint().notNull(),
    fee: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
    blockNumber: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
  }),
  (table) => ({ byKey: index().on(table.chainId, table.key) }),
);

/** One row per dispute. status: open | withdrawn | resolved | expired | refunded. */
export const dispute = onchainTable(
  "dispute",
  (t) => ({
    id: t.text().primaryKey(),
    chainId: t.integer().notNull(),
    key: t.hex().notNull(),
    merchantId: t.bigint().notNull(),
    payer: t.hex().notNull(),
    status: t.text().notNull(),
    deadline: t.bigint().notNull(),
    openedAt: t.bigint().notNull(),
    closedAt: t.bigint(),
    arbiter: t.hex(),
    /** The arbiter's ruling: the share of what was held that went back to the payer, in basis points. */
    refundShareBps: t.integer(),
    refunded: t.bigint(),
    released: t.bigint(),
  }),
  (table) => ({ byKey: index().on(table.chainId, table.key) }),
);

/** Subscription plans. */
export const plan = onchainTable(
  "plan",
  (t) => ({
    chainId: t.integer().notNull(),
    planId: t.integer().notNull(),
    merchantId: t.bigint().notNull(),
    token: t.hex().notNull(),
    price: t.bigint().notNull(),
    period: t.integer().notNull(),
    trial: t.integer().notNull(),
    gracePeriod: t.integer().notNull(),
    active: t.boolean().notNull(),
    createdAt: t.bigint().notNull(),
    createdTransaction: t.hex().notNull(),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.chainId, table.planId] }),
    byMerchant: index().on(table.chainId, table.merchantId),
  }),
);

/** Subscriptions. status: trialing | active | past_due | canceled | lapsed. */
export const subscription = onchainTable(
  "subscription",
  (t) => ({
    chainId: t.integer().notNull(),
    subscriptionId: t.bigint().notNull(),
    planId: t.integer().notNull(),
    merchantId: t.bigint().notNull(),
    subscriber: t.hex().notNull(),
    token: t.hex().notNull(),
    status: t.text().notNull(),
    maxPrice: t.bigint().notNull(),
    trialEndsAt: t.bigint(),
    /** The plan has a trial, but this wallet had used it: the subscription started charged. */
    trialAlreadyUsed: t.boolean().notNull().default(false),
    currentPeriodStart: t.bigint(),
    currentPeriodEnd: t.bigint(),
    retryUntil: t.bigint(),
    lastFailure: t.text(),
    chargeCount: t.integer().notNull().default(0),
    createdAt: t.bigint().notNull(),
    canceledAt: t.bigint(),
    updatedAt: t.bigint().notNull(),
  }),
  (table) => ({
    pk: primaryKey({ columns: [table.chainId, table.subscriptionId] }),
    byMerchant: index().on(table.chainId, table.merchantId),
    bySubscriber: index().on(table.subscriber),
  }),
);

/** One row per period charged. kind: initial | renewal | plan_change. */
export const charge = onchainTable(
  "charge",
  (t) => ({
    id: t.text().primaryKey(),
    chainId: t.integer().notNull(),
    subscriptionId: t.bigint().notNull(),
    merchantId: t.bigint().notNull(),
    subscriber: t.hex().notNull(),
    token: t.hex().notNull(),
    amount: t.bigint().notNull(),
    kind: t.text().notNull(),
    periodStart: t.bigint().notNull(),
    periodEnd: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
    blockNumber: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
  }),
  (table) => ({ bySubscription: index().on(table.chainId, table.subscriptionId) }),
);

/**
 * One row per movement of a merchant's balance held in the contracts (escrow or subscriptions), signed from the
 * merchant's point of view. kind: payment | refund | release | fee | subscription_charge | subscription_refund |
 * withdrawal. Sum of amounts per (chain, merchant, token) == what the contracts hold for the merchant.
 */
export const ledger = onchainTable(
  "ledger",
  (t) => ({
    id: t.text().primaryKey(),
    chainId: t.integer().notNull(),
    merchantId: t.bigint().notNull(),
    counterparty: t.hex().notNull(),
    token: t.hex().notNull(),
    amount: t.bigint().notNull(),
    kind: t.text().notNull(),
    /** Invoice key or subscription id this movement belongs to. */
    reference: t.text().notNull(),
    timestamp: t.bigint().notNull(),
    blockNumber: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
    logIndex: t.integer().notNull(),
  }),
  (table) => ({
    byMerchantTime: index().on(table.chainId, table.merchantId, table.timestamp),
    byReference: index().on(table.reference),
  }),
);

/**
 * One row per payout that could not be delivered (`deferred`: the amount became claimable by `account`) and per
 * claim of such a balance (`claimed`: sent to `to`), in either contract.
 */
export const claimEvent = onchainTable(
  "claim_event",
  (t) => ({
    id: t.text().primaryKey(),
    chainId: t.integer().notNull(),
    contract: t.hex().notNull(),
    kind: t.text().notNull(),
    account: t.hex().notNull(),
    token: t.hex().notNull(),
    to: t.hex(),
    amount: t.bigint().notNull(),
    timestamp: t.bigint().notNull(),
    blockNumber: t.bigint().notNull(),
    transactionHash: t.hex().notNull(),
  }),
  (table) => ({ byAccount: index().on(table.chainId, table.account) }),
);

/** Payouts that could not be delivered and wait to be claimed, per contract, account and token. */
export const claimable = onchainTable(
  "claimable",
  (t) => ({
    chainId: t.integer().notNull(),
    contract: t.hex().notNull(),
    account: t.hex().notNull(),
    token: t.hex().notNull(),
    balance: t.bigint().notNull(),
    updatedAt: t.bigint().notNull(),
  }),
  (table) => ({ pk: primaryKey({ columns: [table.chainId, table.contract, table.account, table.token] }) }),
);

/** Protocol administration (fees, pause, ownership), one row per event, arguments as JSON. */
export const protocolEvent = onchainTable("protocol_event", (t) => ({
  id: t.text().primaryKey(),
  chainId: t.integer().notNull(),
  contract: t.hex().notNull(),
  name: t.text().notNull(),
  args: t.json().notNull(),
  timestamp: t.bigint().notNull(),
  blockNumber: t.bigint().notNull(),
  transactionHash: t.hex().notNull(),
}));

/**
 * What happened, one row per event a merchant is told about (the source of webhooks and GET /v1/events).
 * `type` is the webhook event type (`invoice.paid`, `subscription.renewed`…); `reference` the invoice key or the
 * subscription id; `data` the event's own fields as strings. The id binds the block hash, so a transaction the
 * chain re-includes in another block after a reorg is a new event, and a reorged row is rolled back by Ponder.
 */
export const activity = onchainTable(
  "activity",
  (t) => ({
    id: t.text().primaryKey(),
    chainId: t.integer().notNull(),
    merchantId: t.bigint().notNull(),
    type: t.text().notNull(),
    reference: t.text().notNull(),
    data: t.json().notNull(),
    timestamp: t.bigint().notNull(),
    blockNumber: t.bigint().notNull(),
    blockHash: t.hex().notNull(),
    transactionHash: t.hex().notNull(),
    logIndex: t.integer().notNull(),
  }),
  (table) => ({ byChainBlock: index().on(table.chainId, table.blockNumber) }),
);
