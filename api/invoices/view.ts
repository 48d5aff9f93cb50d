/**
 * What the API shows of an invoice: the stored terms and details, and everything that needs a transaction —
 * paid, refunded, released, disputed, fulfilled, void — from the indexed chain only (api/status.ts derives the
 * status). A state the service asked for but the chain has not shown yet is never shown.
 */
import { getAddress, zeroAddress, type Hex } from "viem";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { ApiDeps } from "../env";
import type { IndexedInvoice } from "../indexed";
import { formatAmount } from "../money";
import { confirmations, invoiceStatus, type InvoiceStatus } from "../status";
import { paymentInstructions } from "./instructions";
import type { InvoiceRow } from "./rows";
import type { InvoiceView } from "./schemas";
import { defaultConfirmations, requiredConfirmations } from "../webhooks/confirmations";
import type { MerchantRecord } from "../env";
import { evmDeposits, merchants } from "../store/schema";
import { eq, inArray } from "drizzle-orm";
import { priceView } from "../prices/record";
import type { CheckoutFields, InvoicePrice } from "../store/schema";

/** The fields fiat prices and payment links added to every invoice (EVM and BTC). */
export function linkFields(row: { id: string; price: InvoicePrice | null; paymentLinkId: string | null; checkout: CheckoutFields | null }): Pick<InvoiceView, "price" | "paymentLinkId" | "checkout"> {
  return {
    price: priceView(row.price),
    paymentLinkId: row.paymentLinkId ?? null,
    checkout: { url: `/pay/${row.id}`, successUrl: row.checkout?.successUrl ?? null, cancelUrl: row.checkout?.cancelUrl ?? null },
  };
}

/** What the deposit watcher last read at an invoice's deposit address, and the refund address the chain names. */
export interface DepositState {
  balance: bigint;
  block: bigint;
}

export interface ChainState {
  /** Chain time (unix seconds). */
  now: bigint;
  /** Head block, or undefined when the node could not be reached. */
  head: bigint | undefined;
  /** The merchant's confirmations for `invoice.confirmed` on this chain (default: the chain's). */
  confirmationsRequired?: number;
}

const iso = (seconds: bigint | null | undefined) => (seconds === null || seconds === undefined ? null : new Date(Number(seconds) * 1000).toISOString());
const checksum = (address: string | null | undefined) => (address ? getAddress(address) : null);
const noneIfZero = (address: string) => (address.toLowerCase() === zeroAddress ? null : getAddress(address));

/** Whether the status of `row` depends on the clock (unpaid: it may expire). */
export function needsClock(onchain: IndexedInvoice | undefined): boolean {
  return !onchain;
}

/**
 * The status, with what the deposit address adds: money waiting there makes an open invoice `pending` (enough
 * to sweep) or `underpaid`; a paid invoice with an excess held for the refund address is `overpaid` until it is
 * returned. Everything else is the escrow's record (api/status.ts).
 */
export function statusOf(row: InvoiceRow, onchain: IndexedInvoice | undefined, now: bigint, deposit?: DepositState): InvoiceStatus {
  const status = invoiceStatus(onchain, { expiresAt: row.expiresAt }, now);
  if (status === "open" && deposit && deposit.balance > 0n) return deposit.balance >= BigInt(row.amount) ? "pending" : "underpaid";
  if (status === "paid" && onchain && onchain.depositHeld > 0n) return "overpaid";
  return status;
}

function depositView(row: InvoiceRow, onchain: IndexedInvoice | undefined, deposit: DepositState | undefined, refundTo: string | null | undefined, format: (value: bigint) => string): InvoiceView["deposit"] {
  if (!row.depositAddress) return null;
  const amount = BigInt(row.amount);
  const paid = onchain !== undefined && onchain.status !== "voided";
  // A reading from before the indexed sweep is superseded by it: the sweep took everything there was.
  const stale = deposit !== undefined && paid && onchain.paidBlock !== null && deposit.block < onchain.paidBlock;
  const waiting = stale ? 0n : (deposit?.balance ?? 0n);
  const signedPayer = noneIfZero(row.payer);
  return {
    address: getAddress(row.depositAddress),
    waitingAmount: format(waiting),
    dueAmount: format(paid || waiting >= amount || waiting === 0n ? 0n : amount - waiting),
    excessAmount: format(paid ? onchain.depositHeld : waiting > amount ? waiting - amount : 0n),
    refundAddress: signedPayer ?? (refundTo ? getAddress(refundTo) : null),
    observedBlock: deposit ? Number(stale ? onchain!.paidBlock! : deposit.block) : null,
  };
}

export function invoiceView(
  row: InvoiceRow,
  onchain: IndexedInvoice | undefined,
  state: ChainState,
  deposit?: DepositState,
  refundTo?: string | null,
): InvoiceView {
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
    status: statusOf(row, onchain, state.now, deposit),
    amount: amountText,
    amountBaseUnits: row.amount,
    currency: row.currency,
    token: getAddress(row.token),
    decimals: row.decimals,
    chainId: row.chainId,
    network: `eip155:${row.chainId}`,
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
    maxFeeBps: row.maxFeeBps,
    fulfilled: paid ? onchain.fulfilled : false,
    voidedAt: onchain?.status === "voided" ? iso(onchain.updatedAt) : null,
    payer: paid && onchain.payer ? noneIfZero(onchain.payer) : null,
    paidAt: paid ? iso(onchain.paidAt) : null,
    paidTransaction: paid ? (onchain.paidTransaction ?? null) : null,
    confirmations: state.head === undefined ? (paid ? null : 0) : confirmations(paid ? onchain : undefined, state.head),
    confirmationsRequired: state.confirmationsRequired ?? defaultConfirmations(row.chainId),
    releaseAt: paid ? iso(onchain.releaseAt) : null,
    heldAmount: format(held),
    refundedAmount: format(refunded),
    releasedAmount: format(released),
    feeAmount: format(fee),
    disputeDeadline: paid ? iso(onchain.disputeDeadline) : null,
    invoiceKey: row.invoiceKey,
    detailsHash: row.detailsHash,
    payment: { evm: paymentInstructions(row, amountText, row.currency) },
    bitcoin: null,
    deposit: depositView(row, onchain, deposit, refundTo, format),
    ...linkFields(row),
  };
}

/** Chain time and head of `chain` (wall clock and no head when the API does not serve it any more). */
export async function chainState(chain: ChainRuntime | undefined, wantClock: boolean): Promise<ChainState> {
  const wall = BigInt(Math.floor(Date.now() / 1000));
  if (!chain) return { now: wall, head: undefined };
  const head = await chain.headBlock().catch(() => undefined);
  return { now: wantClock ? await chainNow(chain) : wall, head };
}

/** The view of one stored invoice: one indexed read, the cached head block, and the chain clock if unpaid. */
export async function viewInvoice(deps: ApiDeps, row: InvoiceRow, merchant?: Pick<MerchantRecord, "confirmationPolicy">): Promise<InvoiceView> {
  const chain = deps.chains.get(row.chainId);
  const [onchain, head, owner, deposit, account] = await Promise.all([
    deps.indexed.invoice(row.chainId, row.invoiceKey as Hex),
    chain ? chain.headBlock().catch(() => undefined) : Promise.resolve(undefined),
    merchant ??
      deps.store.db
        .select({ confirmationPolicy: merchants.confirmationPolicy })
        .from(merchants)
        .where(eq(merchants.id, row.merchantId))
        .then((rows) => rows[0]),
    row.depositAddress ? depositStates(deps, [row.id]).then((found) => found.get(row.id)) : Promise.resolve(undefined),
    row.depositAddress ? deps.indexed.depositAccounts(row.chainId, [row.invoiceKey as Hex]).then((found) => found.get(row.invoiceKey.toLowerCase())) : Promise.resolve(undefined),
  ]);
  const now = needsClock(onchain) ? await chainNow(chain) : BigInt(Math.floor(Date.now() / 1000));
  return invoiceView(row, onchain, { now, head, confirmationsRequired: owner ? requiredConfirmations(owner, row.chainId) : undefined }, deposit, account?.refundTo);
}

/** The deposit watcher's last readings for these invoices (api/deposits/watcher.ts). */
export async function depositStates(deps: Pick<ApiDeps, "store">, invoiceIds: string[]): Promise<Map<string, DepositState>> {
  if (invoiceIds.length === 0) return new Map();
  const rows = await deps.store.db.select().from(evmDeposits).where(inArray(evmDeposits.invoiceId, invoiceIds));
  return new Map(rows.map((row) => [row.invoiceId, { balance: BigInt(row.balance), block: row.block }]));
}
