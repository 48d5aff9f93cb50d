/**
 * Invoices: creation (terms signed with the merchant's operator key), the merchant-facing view (status from the
 * indexed on-chain record, see api/status.ts), listing, and the operator's on-chain actions (void, refund,
 * mark fulfilled). Every store query names the merchant, so an id of another merchant is simply not found.
 */
import { and, desc, eq, gt, lt, type SQL } from "drizzle-orm";
import {
  BaseError,
  ContractFunctionRevertedError,
  encodeFunctionData,
  getAddress,
  keccak256,
  stringToBytes,
  zeroAddress,
  type Address,
  type Hex,
  type TransactionReceipt,
} from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { billingEscrowDomain, buildInvoice, signInvoiceAndKey } from "../../contracts/invoice";
import { newId } from "../auth";
import type { ChainRuntime, TokenInfo } from "../chains";
import type { ApiDeps, MerchantRecord } from "../env";
import type { StoreTx, RememberedResponse } from "../idempotency";
import type { IndexedInvoice } from "../indexed";
import { AMOUNT_ERROR_MESSAGES, formatAmount, parseAmount } from "../money";
import { operatorAccount, sendAsOperator } from "../operator";
import { problem, ProblemError, type FieldError } from "../problems";
import { confirmations, invoiceStatus, type InvoiceStatus } from "../status";
import { invoices } from "../store/schema";
import { chainNow } from "./clock";
import { detailsHash, type InvoiceDetails } from "./details";
import { paymentInstructions, termsOf } from "./instructions";
import type { CreateInvoiceInput, InvoiceView } from "./schemas";
import { resolveCurrency } from "./tokens";

export type InvoiceRow = typeof invoices.$inferSelect;

const MAX_ID_LENGTH = 64;
/** How long an action waits for the indexer to show its effect before answering with what is indexed. */
const INDEXER_WAIT_MS = 5_000;

const iso = (seconds: bigint | null | undefined) => (seconds === null || seconds === undefined ? null : new Date(Number(seconds) * 1000).toISOString());
const checksum = (address: string | null | undefined) => (address ? getAddress(address) : null);
const noneIfZero = (address: string) => (address.toLowerCase() === zeroAddress ? null : getAddress(address));

// ------------------------------------------------------------------------------------------------ view

export interface ChainState {
  /** Chain time (unix seconds). */
  now: bigint;
  /** Head block, or undefined when the node could not be reached. */
  head: bigint | undefined;
}

function needsClock(row: InvoiceRow, onchain: IndexedInvoice | undefined): boolean {
  return !onchain && row.voidedAt === null;
}

export function statusOf(row: InvoiceRow, onchain: IndexedInvoice | undefined, now: bigint): InvoiceStatus {
  return invoiceStatus(onchain, { expiresAt: row.expiresAt, voided: row.voidedAt !== null }, now);
}

export function invoiceView(row: InvoiceRow, onchain: IndexedInvoice | undefined, state: ChainState): InvoiceView {
  const amount = BigInt(row.amount);
  const format = (value: bigint) => formatAmount(value, row.decimals);
  const amountText = format(amount);
  const paid = onchain !== undefined && onchain.status !== "voided";
  const refunded = paid ? onchain.refundedAmount : 0n;
  const released = paid ? onchain.releasedAmount : 0n;
  const fee = paid ? onchain.feeAmount : 0n;
  const held = paid && (onchain.status === "held" || onchain.status === "disputed") ? onchain.amount - refunded : 0n;
  return {
    id: row.id,
    status: statusOf(row, onchain, state.now),
    amount: amountText,
    amountBaseUnits: row.amount,
    currency: row.currency,
    token: getAddress(row.token),
    decimals: row.decimals,
    chainId: row.chainId,
    createdAt: row.createdAt.toISOString(),
    expiresAt: iso(row.expiresAt)!,
    description: row.description ?? null,
    lineItems: row.lineItems ?? [],
    customer: row.customerId === null ? null : { id: row.customerId, ...(row.customerEmail ? { email: row.customerEmail } : {}) },
    metadata: row.metadata ?? {},
    allowedPayer: noneIfZero(row.payer),
    arbiter: noneIfZero(row.arbiter),
    holdSeconds: row.holdDuration,
    fulfillBy: row.fulfillBy === 0n ? null : iso(row.fulfillBy),
    fulfilled: paid ? onchain.fulfilled : false,
    voidedAt: row.voidedAt ? row.voidedAt.toISOString() : null,
    payer: paid ? checksum(onchain.payer) : null,
    paidAt: paid ? iso(onchain.paidAt) : null,
    paidTransaction: paid ? (onchain.paidTransaction ?? null) : null,
    confirmations: state.head === undefined ? (paid ? null : 0) : confirmations(paid ? onchain : undefined, state.head),
    releaseAt: paid ? iso(onchain.releaseAt) : null,
    heldAmount: format(held),
    refundedAmount: format(refunded),
    releasedAmount: format(released),
    feeAmount: format(fee),
    disputeDeadline: paid ? iso(onchain.disputeDeadline) : null,
    invoiceKey: row.invoiceKey,
    detailsHash: row.detailsHash,
    payment: { evm: paymentInstructions(row, amountText, row.currency) },
  };
}

async function chainState(deps: ApiDeps, chainId: number, wantClock: boolean): Promise<ChainState> {
  const chain = deps.chains.get(chainId);
  const wall = BigInt(Math.floor(Date.now() / 1000));
  if (!chain) return { now: wall, head: undefined };
  const head = await chain.headBlock().catch(() => undefined);
  return { now: wantClock ? await chainNow(chain) : wall, head };
}

/** One invoice of `merchant`, or a 404 problem (also for other merchants' invoices). */
/**
 * Stored invoices are immutable but for `voidedAt`, so reads are cached briefly: this process forgets a row as
 * soon as it voids it, and another replica sees a void within `ROW_CACHE_MS` (the on-chain void is indexed too).
 */
const ROW_CACHE_MS = 5_000;
const ROW_CACHE_LIMIT = 10_000;
const rowCache = new Map<string, { row: InvoiceRow; expires: number }>();

export function forgetInvoiceRow(id: string): void {
  rowCache.delete(id);
}

export async function loadInvoice(deps: ApiDeps, merchant: MerchantRecord, id: string): Promise<InvoiceRow> {
  if (id.length > MAX_ID_LENGTH) throw problem.notFound(`Invoice ${id.slice(0, MAX_ID_LENGTH)}…`);
  const cached = rowCache.get(id);
  if (cached && cached.expires > Date.now()) {
    // The merchant check applies to cached rows too: another merchant's id is simply not found.
    if (cached.row.merchantId !== merchant.id) throw problem.notFound(`Invoice ${id}`);
    return cached.row;
  }
  const rows = await deps.store.db
    .select()
    .from(invoices)
    .where(and(eq(invoices.id, id), eq(invoices.merchantId, merchant.id)))
    .limit(1);
  if (!rows[0]) throw problem.notFound(`Invoice ${id}`);
  if (rowCache.size >= ROW_CACHE_LIMIT) rowCache.clear();
  rowCache.set(id, { row: rows[0], expires: Date.now() + ROW_CACHE_MS });
  return rows[0];
}

/** The view of one stored invoice: one indexed read, the cached head block, and the chain clock if unpaid. */
export async function viewInvoice(deps: ApiDeps, row: InvoiceRow): Promise<InvoiceView> {
  const chain = deps.chains.get(row.chainId);
  const [onchain, head] = await Promise.all([
    deps.indexed.invoice(row.chainId, row.invoiceKey as Hex),
    chain ? chain.headBlock().catch(() => undefined) : Promise.resolve(undefined),
  ]);
  const now = needsClock(row, onchain) ? await chainNow(chain) : BigInt(Math.floor(Date.now() / 1000));
  return invoiceView(row, onchain, { now, head });
}

// ------------------------------------------------------------------------------------------------ create

function amountIn(text: string, token: TokenInfo, field: string, errors: FieldError[], allowZero = false): bigint | undefined {
  if (allowZero && /^0(\.0+)?$/.test(text)) {
    const fraction = text.split(".")[1] ?? "";
    if (fraction.length > token.decimals) {
      errors.push({ field, message: AMOUNT_ERROR_MESSAGES.too_precise(token.decimals) });
      return undefined;
    }
    return 0n;
  }
  const parsed = parseAmount(text, token.decimals);
  if (!parsed.ok) {
    errors.push({ field, message: AMOUNT_ERROR_MESSAGES[parsed.error](token.decimals) });
    return undefined;
  }
  return parsed.value;
}

/**
 * Validates what needs the chain (currency, precision, dates, registration), signs the terms and stores the
 * invoice. `remember` records the idempotent response in the same transaction as the invoice.
 */
export async function createInvoice(
  deps: ApiDeps,
  merchant: MerchantRecord,
  body: CreateInvoiceInput,
  remember: (tx: StoreTx, response: RememberedResponse) => Promise<void>,
): Promise<RememberedResponse> {
  const configured = [...deps.chains.keys()];
  const chainId = body.chainId ?? (configured.length === 1 ? configured[0] : undefined);
  if (chainId === undefined) {
    throw problem.validation([{ field: "chainId", message: `is required: this API serves chains ${configured.join(", ")}` }]);
  }
  const chain = deps.chains.get(chainId);
  if (!chain) {
    throw problem.validation([
      { field: "chainId", message: `is not a chain this API serves (it serves ${configured.join(", ") || "none"})` },
    ]);
  }

  const token = await resolveCurrency(chain, body.currency);
  const errors: FieldError[] = [];
  const amount = amountIn(body.amount, token, "amount", errors);
  (body.lineItems ?? []).forEach((item, index) => amountIn(item.unitAmount, token, `lineItems.${index}.unitAmount`, errors, true));
  const now = await chainNow(chain);
  let fulfillBy = 0n;
  if (body.fulfillBy !== undefined) {
    fulfillBy = BigInt(Math.floor(Date.parse(body.fulfillBy) / 1000));
    if (fulfillBy <= now) {
      errors.push({ field: "fulfillBy", message: `must be in the future (it is now ${iso(now)} on chain ${chain.id})` });
    }
  }
  if (body.payer !== undefined && body.payer === zeroAddress) {
    errors.push({ field: "payer", message: "must not be the zero address (omit it to let anyone pay)" });
  }
  if (errors.length > 0 || amount === undefined) throw problem.validation(errors);

  const registration = (await deps.indexed.merchantsBySigner(merchant.signerAddress as Address)).find((row) => row.chainId === chain.id);
  if (!registration) {
    throw problem.conflict(
      "merchant-not-registered",
      "Merchant not registered on this chain",
      `The merchant is not registered in the BillingEscrow on chain ${chain.id} (or its operator key is not the registered signer), so payers could not pay its invoices. Send the \`registrationTransaction\` listed for chain ${chain.id} in GET /v1/merchants/me from the owner wallet, wait until \`registered\` is true, then retry.`,
      { chainId: chain.id },
    );
  }

  const expiresIn = BigInt(body.expiresInSeconds ?? deps.config.defaultExpirySeconds);
  const holdSeconds = body.holdSeconds ?? deps.config.defaultHoldSeconds;
  const details: InvoiceDetails = {
    description: body.description ?? null,
    lineItems: body.lineItems ?? [],
    customer: body.customer ? { id: body.customer.id, ...(body.customer.email !== undefined ? { email: body.customer.email } : {}) } : null,
    metadata: body.metadata ?? {},
  };
  const id = newId("inv");
  const terms = buildInvoice({
    merchantId: registration.merchantId,
    invoiceId: keccak256(stringToBytes(id)),
    token: token.address,
    amount,
    payer: body.payer ?? zeroAddress,
    arbiter: body.arbiter ?? zeroAddress,
    expiresAt: now + expiresIn,
    holdDuration: holdSeconds,
    fulfillBy,
    detailsHash: detailsHash(details),
  });
  const domain = billingEscrowDomain(chain.id, chain.escrow);
  const { key, signature } = await signInvoiceAndKey(operatorAccount(merchant, deps.config.operatorKeySecret), domain, terms);
  const head = await chain.headBlock().catch(() => undefined);

  return deps.store.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(invoices)
      .values({
        id,
        merchantId: merchant.id,
        chainId: chain.id,
        onchainMerchantId: terms.merchantId,
        invoiceRef: terms.invoiceId,
        invoiceKey: key,
        escrowAddress: chain.escrow,
        currency: token.symbol,
        token: token.address,
        decimals: token.decimals,
        amount: terms.amount.toString(),
        payer: terms.payer,
        arbiter: terms.arbiter,
        expiresAt: terms.expiresAt,
        holdDuration: terms.holdDuration,
        fulfillBy: terms.fulfillBy,
        detailsHash: terms.detailsHash,
        signature,
        description: body.description ?? null,
        lineItems: body.lineItems ?? null,
        customerId: body.customer?.id ?? null,
        customerEmail: body.customer?.email ?? null,
        metadata: body.metadata ?? null,
        // Millisecond precision, as shown in responses, so `createdAfter=<createdAt>` excludes this invoice.
        createdAt: new Date(),
      })
      .returning();
    const response = { status: 201, body: JSON.stringify(invoiceView(row, undefined, { now, head })) };
    await remember(tx, response);
    return response;
  });
}

// ------------------------------------------------------------------------------------------------ list

export interface ListFilters {
  status?: InvoiceStatus;
  customerId?: string;
  chainId?: number;
  createdAfter?: string;
  createdBefore?: string;
  limit: number;
  cursor?: string;
}

const CURSOR_PREFIX = "cur_";
/** With a status filter, at most this many invoices are examined per page (a page may then be short). */
const MAX_SCAN = 2_000;
const SCAN_BATCH = 200;

function encodeCursor(sequence: number): string {
  return CURSOR_PREFIX + Buffer.from(JSON.stringify({ s: sequence })).toString("base64url");
}

function decodeCursor(cursor: string): number {
  if (cursor.startsWith(CURSOR_PREFIX)) {
    try {
      const value = JSON.parse(Buffer.from(cursor.slice(CURSOR_PREFIX.length), "base64url").toString("utf8")) as { s?: unknown };
      if (typeof value.s === "number" && Number.isSafeInteger(value.s) && value.s > 0) return value.s;
    } catch {
      // fall through
    }
  }
  throw problem.validation([{ field: "cursor", message: "is not a cursor returned by this API (use `nextCursor`)" }]);
}

async function indexedFor(deps: ApiDeps, rows: InvoiceRow[]) {
  const byChain = new Map<number, InvoiceRow[]>();
  for (const row of rows) byChain.set(row.chainId, [...(byChain.get(row.chainId) ?? []), row]);
  const onchain = new Map<string, IndexedInvoice>();
  const states = new Map<number, ChainState>();
  await Promise.all(
    [...byChain.entries()].map(async ([chainId, chainRows]) => {
      const found = await deps.indexed.invoices(chainId, chainRows.map((row) => row.invoiceKey as Hex));
      for (const [key, value] of found) onchain.set(`${chainId}:${key}`, value);
      const wantClock = chainRows.some((row) => needsClock(row, found.get(row.invoiceKey.toLowerCase())));
      states.set(chainId, await chainState(deps, chainId, wantClock));
    }),
  );
  return {
    onchain: (row: InvoiceRow) => onchain.get(`${row.chainId}:${row.invoiceKey.toLowerCase()}`),
    state: (row: InvoiceRow) => states.get(row.chainId)!,
  };
}

export async function listInvoices(
  deps: ApiDeps,
  merchant: MerchantRecord,
  filters: ListFilters,
): Promise<{ data: InvoiceView[]; hasMore: boolean; nextCursor: string | null }> {
  const conditions: SQL[] = [eq(invoices.merchantId, merchant.id)];
  if (filters.customerId !== undefined) conditions.push(eq(invoices.customerId, filters.customerId));
  if (filters.chainId !== undefined) conditions.push(eq(invoices.chainId, filters.chainId));
  if (filters.createdAfter !== undefined) conditions.push(gt(invoices.createdAt, new Date(filters.createdAfter)));
  if (filters.createdBefore !== undefined) conditions.push(lt(invoices.createdAt, new Date(filters.createdBefore)));
  let cursor = filters.cursor !== undefined ? decodeCursor(filters.cursor) : undefined;

  const fetchRows = (count: number, after: number | undefined) =>
    deps.store.db
      .select()
      .from(invoices)
      .where(and(...conditions, after !== undefined ? lt(invoices.sequence, after) : undefined))
      .orderBy(desc(invoices.sequence))
      .limit(count);

  if (filters.status === undefined) {
    const rows = await fetchRows(filters.limit + 1, cursor);
    const page = rows.slice(0, filters.limit);
    const lookup = await indexedFor(deps, page);
    const hasMore = rows.length > filters.limit;
    return {
      data: page.map((row) => invoiceView(row, lookup.onchain(row), lookup.state(row))),
      hasMore,
      nextCursor: hasMore ? encodeCursor(page[page.length - 1].sequence) : null,
    };
  }

  // Status is derived from on-chain data and the clock, so it is filtered after reading, batch by batch.
  const matched: InvoiceView[] = [];
  let matchedLast: number | undefined;
  let scanned = 0;
  let exhausted = false;
  while (matched.length <= filters.limit && scanned < MAX_SCAN) {
    const rows = await fetchRows(SCAN_BATCH, cursor);
    if (rows.length === 0) {
      exhausted = true;
      break;
    }
    const lookup = await indexedFor(deps, rows);
    for (const row of rows) {
      scanned += 1;
      cursor = row.sequence;
      const view = invoiceView(row, lookup.onchain(row), lookup.state(row));
      if (view.status !== filters.status) continue;
      matched.push(view);
      if (matched.length === filters.limit) matchedLast = row.sequence;
      if (matched.length > filters.limit) break;
    }
    if (rows.length < SCAN_BATCH && matched.length <= filters.limit) {
      exhausted = true;
      break;
    }
  }
  if (matched.length > filters.limit) {
    return { data: matched.slice(0, filters.limit), hasMore: true, nextCursor: encodeCursor(matchedLast!) };
  }
  if (exhausted || cursor === undefined) return { data: matched, hasMore: false, nextCursor: null };
  // The scan budget ran out: a short page, and the cursor continues after the last invoice examined.
  return { data: matched, hasMore: true, nextCursor: encodeCursor(cursor) };
}

// ------------------------------------------------------------------------------------------------ actions

/**
 * Sends an escrow call with the merchant's operator key. It is simulated first so a call the escrow would
 * refuse becomes a 409 naming the contract's error instead of a failed transaction.
 */
async function sendEscrowCall(
  deps: ApiDeps,
  merchant: MerchantRecord,
  row: InvoiceRow,
  call: { functionName: "voidInvoice" | "markFulfilled"; args: [ReturnType<typeof termsOf>] } | { functionName: "refund"; args: [ReturnType<typeof termsOf>, bigint] },
  beforeSend?: () => Promise<void>,
): Promise<TransactionReceipt> {
  const chain = deps.chains.get(row.chainId);
  if (!chain) throw problem.unavailable(`Chain ${row.chainId} is not served by this API any more.`);
  const account = operatorAccount(merchant, deps.config.operatorKeySecret);
  const escrow = row.escrowAddress as Address;
  const data = encodeFunctionData({ abi: billingEscrowAbi, ...call } as Parameters<typeof encodeFunctionData<typeof billingEscrowAbi>>[0]);
  // The simulation runs in the operator's turn, so it sees the state the transaction will meet.
  return sendAsOperator(chain, account, { to: escrow, data }, async () => {
    try {
      await chain.client.simulateContract({ account, address: escrow, abi: billingEscrowAbi, ...call } as Parameters<ChainRuntime["client"]["simulateContract"]>[0]);
    } catch (error) {
      const revert = error instanceof BaseError ? error.walk((cause) => cause instanceof ContractFunctionRevertedError) : null;
      if (revert instanceof ContractFunctionRevertedError) {
        const name = revert.data?.errorName ?? revert.reason ?? "a revert";
        throw problem.conflict(
          "chain-rejected",
          "The escrow refused the operation",
          `BillingEscrow.${call.functionName} would fail with ${name} for invoice ${row.id}.`,
          { reason: name },
        );
      }
      // Anything else (gas, node) surfaces from the send with its own explanation.
    }
    await beforeSend?.();
  });
}

/** Polls the indexed record until `done` holds or `INDEXER_WAIT_MS` passes. */
async function awaitIndexed(deps: ApiDeps, row: InvoiceRow, done: (onchain: IndexedInvoice | undefined) => boolean): Promise<void> {
  const deadline = Date.now() + INDEXER_WAIT_MS;
  while (Date.now() < deadline) {
    if (done(await deps.indexed.invoice(row.chainId, row.invoiceKey as Hex))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface ActionResult {
  transactionHash: Hex;
  invoice: InvoiceView;
}

function notPaid(row: InvoiceRow, status: InvoiceStatus, action: string): ProblemError {
  return problem.conflict(
    "invoice-not-paid",
    "Invoice not paid",
    `Invoice ${row.id} is ${status}: only a paid invoice can be ${action}.`,
    { invoiceStatus: status },
  );
}

export async function voidInvoice(deps: ApiDeps, merchant: MerchantRecord, row: InvoiceRow): Promise<ActionResult> {
  const onchain = await deps.indexed.invoice(row.chainId, row.invoiceKey as Hex);
  const now = await chainNow(deps.chains.get(row.chainId));
  // Judge the invoice as if it had not been voided in the store: a void whose transaction failed can be retried.
  const status = invoiceStatus(onchain, { expiresAt: row.expiresAt, voided: false }, now);
  if (status !== "open") {
    const detail =
      status === "void"
        ? `Invoice ${row.id} is already void.`
        : status === "expired"
          ? `Invoice ${row.id} has expired: it can no longer be paid, so there is nothing to void.`
          : `Invoice ${row.id} is ${status}: a paid invoice cannot be voided; refund it instead.`;
    throw problem.conflict("invoice-not-open", "Invoice not open", detail, { invoiceStatus: status });
  }
  const receipt = await sendEscrowCall(deps, merchant, row, { functionName: "voidInvoice", args: [termsOf(row)] }, async () => {
    if (row.voidedAt === null) {
      const [updated] = await deps.store.db
        .update(invoices)
        .set({ voidedAt: new Date() })
        .where(and(eq(invoices.id, row.id), eq(invoices.merchantId, merchant.id)))
        .returning();
      forgetInvoiceRow(row.id);
      if (updated) row = updated;
    }
  });
  await awaitIndexed(deps, row, (current) => current?.status === "voided");
  return { transactionHash: receipt.transactionHash, invoice: await viewInvoice(deps, row) };
}

export async function refundInvoice(
  deps: ApiDeps,
  merchant: MerchantRecord,
  row: InvoiceRow,
  amountText: string | undefined,
): Promise<ActionResult> {
  const onchain = await deps.indexed.invoice(row.chainId, row.invoiceKey as Hex);
  const now = await chainNow(deps.chains.get(row.chainId));
  const status = statusOf(row, onchain, now);
  if (!onchain || onchain.status === "voided") throw notPaid(row, status, "refunded");
  if (onchain.status !== "held" && onchain.status !== "disputed") {
    throw problem.conflict(
      "invoice-not-refundable",
      "Nothing left to refund",
      `Invoice ${row.id} is ${status}: its payment is no longer held in escrow.`,
      { invoiceStatus: status },
    );
  }
  const held = onchain.amount - onchain.refundedAmount;
  const token = { symbol: row.currency, address: row.token as Address, decimals: row.decimals };
  let amount = held;
  if (amountText !== undefined) {
    const errors: FieldError[] = [];
    const parsed = amountIn(amountText, token, "amount", errors);
    if (parsed === undefined) throw problem.validation(errors);
    amount = parsed;
  }
  if (amount > held) {
    throw problem.conflict(
      "refund-exceeds-held",
      "Refund larger than what is held",
      `Invoice ${row.id} holds ${formatAmount(held, row.decimals)} ${row.currency}; a refund of ${formatAmount(amount, row.decimals)} ${row.currency} is more than that.`,
      { heldAmount: formatAmount(held, row.decimals) },
    );
  }
  const target = onchain.refundedAmount + amount;
  const receipt = await sendEscrowCall(deps, merchant, row, { functionName: "refund", args: [termsOf(row), amount] });
  await awaitIndexed(deps, row, (current) => current !== undefined && current.refundedAmount >= target);
  return { transactionHash: receipt.transactionHash, invoice: await viewInvoice(deps, row) };
}

export async function fulfillInvoice(deps: ApiDeps, merchant: MerchantRecord, row: InvoiceRow): Promise<ActionResult> {
  const onchain = await deps.indexed.invoice(row.chainId, row.invoiceKey as Hex);
  const now = await chainNow(deps.chains.get(row.chainId));
  const status = statusOf(row, onchain, now);
  if (row.fulfillBy === 0n) {
    throw problem.conflict(
      "no-fulfillment-deadline",
      "Invoice has no fulfilment deadline",
      `Invoice ${row.id} was created without \`fulfillBy\`, so there is nothing to mark fulfilled.`,
    );
  }
  if (!onchain || onchain.status === "voided") throw notPaid(row, status, "marked fulfilled");
  if (onchain.status !== "held" && onchain.status !== "disputed") {
    throw problem.conflict("invoice-not-held", "Invoice no longer held", `Invoice ${row.id} is ${status}.`, { invoiceStatus: status });
  }
  if (onchain.fulfilled) {
    throw problem.conflict("already-fulfilled", "Already fulfilled", `Invoice ${row.id} is already marked fulfilled.`);
  }
  if (now > row.fulfillBy) {
    throw problem.conflict(
      "fulfillment-deadline-passed",
      "Fulfilment deadline passed",
      `Invoice ${row.id} had to be fulfilled by ${iso(row.fulfillBy)}; the payer may now take a full refund.`,
    );
  }
  const receipt = await sendEscrowCall(deps, merchant, row, { functionName: "markFulfilled", args: [termsOf(row)] });
  await awaitIndexed(deps, row, (current) => current?.fulfilled === true);
  return { transactionHash: receipt.transactionHash, invoice: await viewInvoice(deps, row) };
}
