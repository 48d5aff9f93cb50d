/**
 * BillingEscrow handlers: merchants, invoices and their payments, refunds, releases and disputes, plus the
 * ledger movements. Pure functions of the event and the database, so Ponder can replay them after a reorg.
 */
import { ponder } from "ponder:registry";
import { depositAccount, dispute, invoice, merchant, payment, refund, release } from "ponder:schema";
import { eventId, locate, recordMovement } from "./ledger";
import { recordActivity } from "./activity";
import { recordClaimable, recordClaimEvent, recordProtocolEvent } from "./shared";

const REFUND_REASONS = ["merchant", "unfulfilled", "dispute_expired", "arbiter"] as const;

ponder.on("BillingEscrow:MerchantRegistered", async ({ event, context }) => {
  await context.db.insert(merchant).values({
    chainId: context.chain.id,
    merchantId: event.args.merchantId,
    owner: event.args.owner,
    payout: event.args.payout,
    signer: event.args.signer,
    registeredAt: event.block.timestamp,
    registeredBlock: event.block.number,
  });
});

ponder.on("BillingEscrow:MerchantPayoutChanged", async ({ event, context }) => {
  await context.db
    .update(merchant, { chainId: context.chain.id, merchantId: event.args.merchantId })
    .set({ payout: event.args.payout });
});

ponder.on("BillingEscrow:MerchantSignerChanged", async ({ event, context }) => {
  await context.db
    .update(merchant, { chainId: context.chain.id, merchantId: event.args.merchantId })
    .set({ signer: event.args.signer });
});

ponder.on("BillingEscrow:MerchantOwnershipTransferred", async ({ event, context }) => {
  await context.db
    .update(merchant, { chainId: context.chain.id, merchantId: event.args.merchantId })
    .set({ owner: event.args.owner });
});

ponder.on("BillingEscrow:MerchantOwnershipTransferStarted", async ({ event, context }) => {
  await recordProtocolEvent(context, event, "MerchantOwnershipTransferStarted");
});

ponder.on("BillingEscrow:InvoicePaid", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { key, merchantId, payer, invoiceId, token, amount, releaseAt, fulfillBy, feeBps } = event.args;
  await context.db.insert(invoice).values({
    chainId: at.chainId,
    key,
    merchantId,
    invoiceId,
    status: "held",
    payer,
    token,
    amount,
    feeBps,
    releaseAt: BigInt(releaseAt),
    fulfillBy: fulfillBy === 0n ? null : fulfillBy,
    paidAt: at.timestamp,
    paidBlock: at.blockNumber,
    paidTransaction: at.transactionHash,
    updatedAt: at.timestamp,
    updatedBlock: at.blockNumber,
  });
  await context.db.insert(payment).values({
    id: eventId(at),
    chainId: at.chainId,
    key,
    merchantId,
    invoiceId,
    payer,
    token,
    amount,
    feeBps,
    releaseAt: BigInt(releaseAt),
    timestamp: at.timestamp,
    blockNumber: at.blockNumber,
    transactionHash: at.transactionHash,
  });
  await recordMovement(context.db, at, { merchantId, counterparty: payer, token, amount, kind: "payment", reference: key });
  await recordActivity(context, event, "invoice.paid", merchantId, key, { payer, token, amount, feeBps, releaseAt, fulfillBy });
});

ponder.on("BillingEscrow:InvoiceReleased", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { key, merchantId, payout, token, amount, fee } = event.args;
  await context.db.update(invoice, { chainId: at.chainId, key }).set((row) => ({
    status: "released",
    releasedAmount: row.releasedAmount + amount,
    feeAmount: row.feeAmount + fee,
    updatedAt: at.timestamp,
    updatedBlock: at.blockNumber,
  }));
  await context.db.insert(release).values({
    id: eventId(at),
    chainId: at.chainId,
    key,
    merchantId,
    payout,
    token,
    amount,
    fee,
    timestamp: at.timestamp,
    blockNumber: at.blockNumber,
    transactionHash: at.transactionHash,
  });
  await recordMovement(context.db, at, { merchantId, counterparty: payout, token, amount: -amount, kind: "release", reference: key });
  await recordMovement(
    context.db,
    at,
    { merchantId, counterparty: event.log.address, token, amount: -fee, kind: "fee", reference: key },
    1,
  );
  await recordActivity(context, event, "invoice.released", merchantId, key, { payout, token, amount, fee });
});

ponder.on("BillingEscrow:InvoiceRefunded", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { key, merchantId, payer, token, amount, totalRefunded, reason } = event.args;
  const reasonName = REFUND_REASONS[reason] ?? "merchant";
  const current = await context.db.find(invoice, { chainId: at.chainId, key });
  const fullyRefunded = current !== null && totalRefunded === current.amount;
  const latestDispute = current?.lastDisputeId ? await context.db.find(dispute, { id: current.lastDisputeId }) : null;
  if (latestDispute?.status === "open" && (fullyRefunded || reasonName === "dispute_expired")) {
    await context.db.update(dispute, { id: latestDispute.id }).set({
      status: reasonName === "dispute_expired" ? "expired" : "refunded",
      closedAt: at.timestamp,
      refunded: amount,
    });
  }
  await context.db.update(invoice, { chainId: at.chainId, key }).set({
    refundedAmount: totalRefunded,
    ...(fullyRefunded ? { status: "refunded" } : {}),
    updatedAt: at.timestamp,
    updatedBlock: at.blockNumber,
  });
  await context.db.insert(refund).values({
    id: eventId(at),
    chainId: at.chainId,
    key,
    merchantId,
    payer,
    token,
    amount,
    totalRefunded,
    reason: reasonName,
    timestamp: at.timestamp,
    blockNumber: at.blockNumber,
    transactionHash: at.transactionHash,
  });
  await recordMovement(context.db, at, { merchantId, counterparty: payer, token, amount: -amount, kind: "refund", reference: key });
  await recordActivity(context, event, "invoice.refunded", merchantId, key, {
    payer,
    token,
    amount,
    totalRefunded,
    reason: reasonName,
    full: fullyRefunded,
  });
});

ponder.on("BillingEscrow:InvoiceDisputed", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const id = eventId(at);
  await context.db.insert(dispute).values({
    id,
    chainId: at.chainId,
    key: event.args.key,
    merchantId: event.args.merchantId,
    payer: event.args.payer,
    status: "open",
    deadline: BigInt(event.args.deadline),
    openedAt: at.timestamp,
  });
  await context.db.update(invoice, { chainId: at.chainId, key: event.args.key }).set({
    status: "disputed",
    disputeDeadline: BigInt(event.args.deadline),
    lastDisputeId: id,
    updatedAt: at.timestamp,
    updatedBlock: at.blockNumber,
  });
  await recordActivity(context, event, "invoice.disputed", event.args.merchantId, event.args.key, {
    payer: event.args.payer,
    deadline: event.args.deadline,
  });
});

ponder.on("BillingEscrow:DisputeWithdrawn", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const current = await context.db.find(invoice, { chainId: at.chainId, key: event.args.key });
  if (current?.lastDisputeId) {
    await context.db.update(dispute, { id: current.lastDisputeId }).set({ status: "withdrawn", closedAt: at.timestamp });
  }
  await context.db.update(invoice, { chainId: at.chainId, key: event.args.key }).set({
    status: "held",
    disputeDeadline: null,
    updatedAt: at.timestamp,
    updatedBlock: at.blockNumber,
  });
  await recordActivity(context, event, "invoice.dispute_resolved", event.args.merchantId, event.args.key, { outcome: "withdrawn" });
});

ponder.on("BillingEscrow:DisputeResolved", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const current = await context.db.find(invoice, { chainId: at.chainId, key: event.args.key });
  if (current?.lastDisputeId) {
    await context.db.update(dispute, { id: current.lastDisputeId }).set({
      status: "resolved",
      closedAt: at.timestamp,
      arbiter: event.args.arbiter,
      refundShareBps: event.args.refundShareBps,
      refunded: event.args.refunded,
      released: event.args.released,
    });
  }
  await recordActivity(context, event, "invoice.dispute_resolved", event.args.merchantId, event.args.key, {
    outcome: "resolved",
    arbiter: event.args.arbiter,
    refundShareBps: event.args.refundShareBps,
    refunded: event.args.refunded,
    released: event.args.released,
  });
});

ponder.on("BillingEscrow:InvoiceFulfilled", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  await context.db
    .update(invoice, { chainId: at.chainId, key: event.args.key })
    .set({ fulfilled: true, updatedAt: at.timestamp, updatedBlock: at.blockNumber });
});

ponder.on("BillingEscrow:InvoiceVoided", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  await context.db.insert(invoice).values({
    chainId: at.chainId,
    key: event.args.key,
    merchantId: event.args.merchantId,
    invoiceId: event.args.invoiceId,
    status: "voided",
    updatedAt: at.timestamp,
    updatedBlock: at.blockNumber,
  });
  await recordActivity(context, event, "invoice.voided", event.args.merchantId, event.args.key, { invoiceRef: event.args.invoiceId });
});

// ------------------------------------------------------------------------------------------------ deposit addresses

ponder.on("BillingEscrow:RefundAddressSet", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { key, merchantId, refundTo, setBy } = event.args;
  await context.db
    .insert(depositAccount)
    .values({ chainId: at.chainId, key, merchantId, refundTo, refundToSetBy: setBy, refundToSetAt: at.timestamp, updatedAt: at.timestamp })
    .onConflictDoUpdate({ refundTo, refundToSetBy: setBy, refundToSetAt: at.timestamp, updatedAt: at.timestamp });
  // A payment swept before the address was known had no payer: refunds now go here.
  const paid = await context.db.find(invoice, { chainId: at.chainId, key });
  if (paid) await context.db.update(invoice, { chainId: at.chainId, key }).set({ payer: refundTo, updatedAt: at.timestamp, updatedBlock: at.blockNumber });
  await recordProtocolEvent(context, event, "RefundAddressSet");
});

ponder.on("BillingEscrow:DepositHeld", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { key, merchantId, token, amount, total } = event.args;
  await context.db.update(invoice, { chainId: at.chainId, key }).set({ depositHeld: total, updatedAt: at.timestamp, updatedBlock: at.blockNumber });
  await recordActivity(context, event, "invoice.overpaid", merchantId, key, { token, excess: amount, excessHeld: total });
});

ponder.on("BillingEscrow:DepositReturned", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { key, merchantId, to, token, amount } = event.args;
  await context.db
    .insert(depositAccount)
    .values({ chainId: at.chainId, key, merchantId, returned: amount, lastReturnTransaction: at.transactionHash, updatedAt: at.timestamp })
    .onConflictDoUpdate((row) => ({ returned: row.returned + amount, lastReturnTransaction: at.transactionHash, updatedAt: at.timestamp }));
  const paid = await context.db.find(invoice, { chainId: at.chainId, key });
  if (paid) await context.db.update(invoice, { chainId: at.chainId, key }).set({ depositHeld: 0n, updatedAt: at.timestamp, updatedBlock: at.blockNumber });
  await recordActivity(context, event, "invoice.deposit_returned", merchantId, key, { to, token, returned: amount });
});

ponder.on("BillingEscrow:DepositRecovered", async ({ event, context }) => {
  const at = locate(context.chain.id, event);
  const { key, merchantId } = event.args;
  await context.db
    .insert(depositAccount)
    .values({ chainId: at.chainId, key, merchantId, recovered: 1, updatedAt: at.timestamp })
    .onConflictDoUpdate((row) => ({ recovered: row.recovered + 1, updatedAt: at.timestamp }));
  await recordProtocolEvent(context, event, "DepositRecovered");
});

ponder.on("BillingEscrow:PayoutDeferred", async ({ event, context }) => {
  await recordClaimable(context, event, event.args.account, event.args.token, event.args.amount);
  await recordClaimEvent(context, event, "deferred", event.args.account, event.args.token, event.args.amount);
});

ponder.on("BillingEscrow:Claimed", async ({ event, context }) => {
  await recordClaimable(context, event, event.args.account, event.args.token, -event.args.amount);
  await recordClaimEvent(context, event, "claimed", event.args.account, event.args.token, event.args.amount, event.args.to);
});

for (const name of [
  "FeeChanged",
  "FeeRecipientChanged",
  "PausedSet",
  "FeesWithdrawn",
  "OwnershipTransferred",
  "OwnershipTransferStarted",
  "EIP712DomainChanged",
] as const) {
  ponder.on(`BillingEscrow:${name}`, async ({ event, context }) => {
    await recordProtocolEvent(context, event, name);
  });
}
