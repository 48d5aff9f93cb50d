/**
 * The merchant's on-chain actions on an invoice — void, refund, mark fulfilled — sent with its operator key
 * through `deps.operator` (simulated in the operator's queue, contract errors mapped to problems). The indexed
 * state gives the clear early answers; the contract's simulation is the final word when the index lags. The
 * response is the invoice as indexed after the transaction was mined (waited for up to `INDEXER_WAIT_MS`): an
 * effect is shown once the chain shows it, never before.
 */
import { getAddress, isAddress, type Hex } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { chainNow } from "../clock";
import type { ApiDeps, MerchantRecord } from "../env";
import type { IndexedInvoice } from "../indexed";
import { formatAmount } from "../money";
import type { RevertMapping } from "../operator";
import { problem, ProblemError, type FieldError } from "../problems";
import type { InvoiceStatus } from "../status";
import { amountIn } from "./create";
import { termsOf } from "./instructions";
import type { InvoiceRow } from "./rows";
import type { InvoiceView } from "./schemas";
import { statusOf, viewInvoice } from "./view";

/** How long an action waits for the indexer to show its effect before answering with what is indexed. */
const INDEXER_WAIT_MS = 5_000;

const iso = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString();

export interface ActionResult {
  transactionHash: Hex;
  invoice: InvoiceView;
}

const statusName = ["none", "held", "disputed", "released", "refunded", "voided"];

function notHeld(row: InvoiceRow, slug: "invoice-not-held" | "invoice-not-refundable") {
  return (args: readonly unknown[]) =>
    problem.conflict(slug, `Invoice ${row.id} is no longer held in the escrow (it is ${statusName[Number(args[0])] ?? "settled"} on-chain).`);
}

/** The escrow's custom errors every invoice action can meet, in the API's terms. */
function escrowErrors(row: InvoiceRow): RevertMapping {
  return {
    InvoiceNotPayable: (args) =>
      problem.conflict("invoice-not-open", `Invoice ${row.id} is ${statusName[Number(args[0])] ?? "settled"} on-chain: only an open invoice can be voided.`),
    NotHeld: notHeld(row, "invoice-not-held"),
    RefundExceedsHeld: (args) =>
      problem.conflict(
        "refund-exceeds-held",
        `Invoice ${row.id} holds ${formatAmount(args[1] as bigint, row.decimals)} ${row.currency}; a refund of ${formatAmount(args[0] as bigint, row.decimals)} ${row.currency} is more than that.`,
        { heldAmount: formatAmount(args[1] as bigint, row.decimals) },
      ),
    AlreadyFulfilled: () => problem.conflict("already-fulfilled", `Invoice ${row.id} is already marked fulfilled.`),
    FulfillmentDeadlinePassed: () =>
      problem.conflict("fulfillment-deadline-passed", `Invoice ${row.id} had to be fulfilled by ${iso(row.fulfillBy)}; the payer may now take a full refund.`),
    RefundAddressUnknown: () =>
      problem.conflict(
        "refund-address-missing",
        `Invoice ${row.id} was paid to its deposit address and nobody is known to refund: set the customer's address with PUT /v1/invoices/${row.id}/refund-address, then retry.`,
      ),
    RefundAddressAlreadySet: (args) =>
      problem.conflict("refund-address-locked", `Invoice ${row.id} already has a refund address on-chain (${String(args[0])}); it can be set only once.`, { refundAddress: String(args[0]) }),
    InvalidRecipient: (args) =>
      problem.validation([{ field: "address", message: `cannot receive refunds: ${String(args[0])} is a chainbill contract or the invoice's own deposit address` }]),
  };
}

async function sendEscrowCall(
  deps: ApiDeps,
  merchant: MerchantRecord,
  row: InvoiceRow,
  call: { functionName: "voidInvoice" | "markFulfilled" | "refund" | "release" | "setRefundAddress"; args: readonly unknown[]; action: string },
  requestId: string | undefined,
  errors: RevertMapping = {},
) {
  const chain = deps.chains.get(row.chainId);
  if (!chain) throw problem.unavailable(`Chain ${row.chainId} is not served by this API any more.`);
  return deps.operator.call({
    chain,
    merchant,
    to: row.escrowAddress as Hex,
    abi: billingEscrowAbi,
    functionName: call.functionName,
    args: call.args,
    action: call.action,
    errors: { ...escrowErrors(row), ...errors },
    requestId,
  });
}

/** Polls the indexed record until `done` holds or `INDEXER_WAIT_MS` passes. */
async function awaitIndexed(deps: ApiDeps, row: InvoiceRow, done: (onchain: IndexedInvoice | undefined) => boolean): Promise<void> {
  const deadline = Date.now() + INDEXER_WAIT_MS;
  while (Date.now() < deadline) {
    if (done(await deps.indexed.invoice(row.chainId, row.invoiceKey as Hex))) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function notPaid(row: InvoiceRow, status: InvoiceStatus, action: string): ProblemError {
  return problem.conflict("invoice-not-paid", `Invoice ${row.id} is ${status}: only a paid invoice can be ${action}.`, { invoiceStatus: status });
}

async function indexedState(deps: ApiDeps, row: InvoiceRow) {
  const onchain = await deps.indexed.invoice(row.chainId, row.invoiceKey as Hex);
  const now = await chainNow(deps.chains.get(row.chainId));
  return { onchain, now, status: statusOf(row, onchain, now) };
}

export async function voidInvoice(deps: ApiDeps, merchant: MerchantRecord, row: InvoiceRow, requestId?: string): Promise<ActionResult> {
  const { status } = await indexedState(deps, row);
  if (status !== "open") {
    const detail =
      status === "void"
        ? `Invoice ${row.id} is already void.`
        : status === "expired"
          ? `Invoice ${row.id} has expired: it can no longer be paid, so there is nothing to void.`
          : `Invoice ${row.id} is ${status}: a paid invoice cannot be voided; refund it instead.`;
    throw problem.conflict("invoice-not-open", detail, { invoiceStatus: status });
  }
  const receipt = await sendEscrowCall(deps, merchant, row, { functionName: "voidInvoice", args: [termsOf(row)], action: `void invoice ${row.id}` }, requestId);
  await awaitIndexed(deps, row, (current) => current?.status === "voided");
  return { transactionHash: receipt.transactionHash, invoice: await viewInvoice(deps, row) };
}

export async function refundInvoice(
  deps: ApiDeps,
  merchant: MerchantRecord,
  row: InvoiceRow,
  amountText: string | undefined,
  requestId?: string,
): Promise<ActionResult> {
  const { onchain, status } = await indexedState(deps, row);
  const token = { symbol: row.currency, address: row.token as Hex, decimals: row.decimals };
  let requested: bigint | undefined;
  if (amountText !== undefined) {
    const errors: FieldError[] = [];
    requested = amountIn(amountText, token, "amount", errors);
    if (requested === undefined) throw problem.validation(errors);
  }
  if (!onchain || onchain.status === "voided") throw notPaid(row, status, "refunded");
  if (onchain.status !== "held" && onchain.status !== "disputed") {
    throw problem.conflict("invoice-not-refundable", `Invoice ${row.id} is ${status}: its payment is no longer held in escrow.`, { invoiceStatus: status });
  }
  const held = onchain.amount - onchain.refundedAmount;
  const amount = requested ?? held;
  if (amount > held) {
    throw problem.conflict(
      "refund-exceeds-held",
      `Invoice ${row.id} holds ${formatAmount(held, row.decimals)} ${row.currency}; a refund of ${formatAmount(amount, row.decimals)} ${row.currency} is more than that.`,
      { heldAmount: formatAmount(held, row.decimals) },
    );
  }
  const target = onchain.refundedAmount + amount;
  const receipt = await sendEscrowCall(
    deps,
    merchant,
    row,
    { functionName: "refund", args: [termsOf(row), amount], action: `refund invoice ${row.id}` },
    requestId,
    { NotHeld: notHeld(row, "invoice-not-refundable") },
  );
  await awaitIndexed(deps, row, (current) => current !== undefined && current.refundedAmount >= target);
  return { transactionHash: receipt.transactionHash, invoice: await viewInvoice(deps, row) };
}

export async function fulfillInvoice(deps: ApiDeps, merchant: MerchantRecord, row: InvoiceRow, requestId?: string): Promise<ActionResult> {
  const { onchain, status } = await indexedState(deps, row);
  if (row.fulfillBy === 0n) {
    throw problem.conflict("no-fulfillment-deadline", `Invoice ${row.id} was created without \`fulfillBy\`, so there is nothing to mark fulfilled.`);
  }
  if (!onchain || onchain.status === "voided") throw notPaid(row, status, "marked fulfilled");
  if (onchain.status !== "held" && onchain.status !== "disputed") {
    throw problem.conflict("invoice-not-held", `Invoice ${row.id} is ${status}.`, { invoiceStatus: status });
  }
  if (onchain.fulfilled) throw problem.conflict("already-fulfilled", `Invoice ${row.id} is already marked fulfilled.`);
  // Whether `fulfillBy` has passed is the chain's call: the simulation maps FulfillmentDeadlinePassed.
  const receipt = await sendEscrowCall(deps, merchant, row, { functionName: "markFulfilled", args: [termsOf(row)], action: `mark invoice ${row.id} fulfilled` }, requestId);
  await awaitIndexed(deps, row, (current) => current?.fulfilled === true);
  return { transactionHash: receipt.transactionHash, invoice: await viewInvoice(deps, row) };
}

/**
 * Releases a held payment to the merchant's payout address (minus the protocol fee), sent with the operator key:
 * anyone may release once the hold is over and, for an invoice with `fulfillBy`, once it was marked fulfilled.
 */
export async function releaseInvoice(deps: ApiDeps, merchant: MerchantRecord, row: InvoiceRow, requestId?: string): Promise<ActionResult> {
  const { onchain, status } = await indexedState(deps, row);
  if (!onchain || onchain.status === "voided") throw notPaid(row, status, "released");
  if (onchain.status === "disputed") {
    throw problem.conflict("invoice-disputed", `Invoice ${row.id} is disputed: it cannot be released until the dispute is settled.`, { invoiceStatus: status });
  }
  if (onchain.status !== "held") throw problem.conflict("invoice-not-held", `Invoice ${row.id} is ${status}: nothing is held to release.`, { invoiceStatus: status });
  // Whether the hold is over is the chain's call (its clock, not ours): the simulation below answers it.
  if (row.fulfillBy !== 0n && !onchain.fulfilled) {
    throw problem.conflict("not-fulfilled", `Invoice ${row.id} must be marked fulfilled before it is released.`);
  }
  const receipt = await sendEscrowCall(
    deps,
    merchant,
    row,
    { functionName: "release", args: [termsOf(row)], action: `release invoice ${row.id}` },
    requestId,
    {
      HoldNotEnded: (args) => {
        const releaseAt = iso(BigInt(args[0] as number | bigint));
        return problem.conflict("hold-not-ended", `Invoice ${row.id} is held until ${releaseAt}; it can be released from then on.`, { releaseAt });
      },
      PaymentDisputed: () => problem.conflict("invoice-disputed", `Invoice ${row.id} is disputed: it cannot be released until the dispute is settled.`),
      NotFulfilled: () => problem.conflict("not-fulfilled", `Invoice ${row.id} must be marked fulfilled before it is released.`),
    },
  );
  await awaitIndexed(deps, row, (current) => current?.status === "released");
  return { transactionHash: receipt.transactionHash, invoice: await viewInvoice(deps, row) };
}

/**
 * Names where an EVM invoice's deposit money goes back (and the payer of a deposit payment swept without one):
 * `setRefundAddress` on-chain, sent with the operator key, once. The customer gives the address (checkout,
 * support); the request is in the audit log. The answer shows it once the chain does.
 */
export async function setEvmRefundAddress(deps: ApiDeps, merchant: MerchantRecord, row: InvoiceRow, address: string, requestId?: string): Promise<ActionResult> {
  if (!isAddress(address, { strict: false }) || /^0x0{40}$/i.test(address)) {
    throw problem.validation([{ field: "address", message: "must be an EVM address (0x and 40 hex digits), not the zero address" }]);
  }
  if (!row.depositAddress) {
    throw problem.conflict("invoice-no-deposit-address", `Invoice ${row.id} has no deposit address (its escrow predates them): refunds go to the wallet that paid.`);
  }
  const refundTo = getAddress(address);
  const receipt = await sendEscrowCall(deps, merchant, row, { functionName: "setRefundAddress", args: [termsOf(row), refundTo], action: `set the refund address of invoice ${row.id}` }, requestId);
  const deadline = Date.now() + INDEXER_WAIT_MS;
  while (Date.now() < deadline) {
    const account = (await deps.indexed.depositAccounts(row.chainId, [row.invoiceKey as Hex])).get(row.invoiceKey.toLowerCase());
    if (account?.refundTo) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { transactionHash: receipt.transactionHash, invoice: await viewInvoice(deps, row, merchant) };
}
