/**
 * Listing a merchant's invoices, newest first, with filters and cursor pagination. Status is derived from the
 * indexed chain and the clock, so a status filter is applied after reading, batch by batch.
 */
import { requiredConfirmations } from "../webhooks/confirmations";
import { and, desc, eq, gt, lt, type SQL } from "drizzle-orm";
import type { Hex } from "viem";
import { decodeCursor, encodeCursor } from "../cursor";
import type { ApiDeps, MerchantRecord } from "../env";
import type { IndexedInvoice } from "../indexed";
import { problem } from "../problems";
import type { InvoiceStatus } from "../status";
import { btcInvoices, invoices } from "../store/schema";
import { viewBtcInvoices } from "../bitcoin/invoices";
import type { InvoiceRow } from "./rows";
import type { InvoiceView } from "./schemas";
import { chainState, depositStates, invoiceView, needsClock, type ChainState } from "./view";

export interface ListFilters {
  status?: InvoiceStatus;
  paymentLinkId?: string;
  customerId?: string;
  chainId?: number;
  createdAfter?: string;
  createdBefore?: string;
  limit: number;
  cursor?: string;
}

/** With a status filter, at most this many invoices are examined per page (a page may then be short). */
const MAX_SCAN = 2_000;
const SCAN_BATCH = 200;

function cursorSequence(cursor: string): number {
  const parts = decodeCursor(cursor, 1);
  const sequence = parts && /^[1-9]\d{0,15}$/.test(parts[0]) ? Number(parts[0]) : NaN;
  if (!Number.isSafeInteger(sequence)) {
    throw problem.validation([{ field: "cursor", message: "is not a cursor returned by this list (pass the previous page's `nextCursor`)" }]);
  }
  return sequence;
}

async function indexedFor(deps: ApiDeps, rows: InvoiceRow[], merchant: MerchantRecord) {
  const byChain = new Map<number, InvoiceRow[]>();
  for (const row of rows) byChain.set(row.chainId, [...(byChain.get(row.chainId) ?? []), row]);
  const onchain = new Map<string, IndexedInvoice>();
  const refundTo = new Map<string, string | null>();
  const states = new Map<number, ChainState>();
  const withDeposit = rows.filter((row) => row.depositAddress !== null);
  const deposits = await depositStates(deps, withDeposit.map((row) => row.id));
  await Promise.all(
    [...byChain.entries()].map(async ([chainId, chainRows]) => {
      const keys = chainRows.map((row) => row.invoiceKey as Hex);
      const [found, accounts] = await Promise.all([
        deps.indexed.invoices(chainId, keys),
        deps.indexed.depositAccounts(chainId, chainRows.filter((row) => row.depositAddress !== null).map((row) => row.invoiceKey as Hex)),
      ]);
      for (const [key, value] of found) onchain.set(`${chainId}:${key}`, value);
      for (const [key, value] of accounts) refundTo.set(`${chainId}:${key}`, value.refundTo);
      const wantClock = chainRows.some((row) => needsClock(found.get(row.invoiceKey.toLowerCase())));
      states.set(chainId, { ...(await chainState(deps.chains.get(chainId), wantClock)), confirmationsRequired: requiredConfirmations(merchant, chainId) });
    }),
  );
  return {
    onchain: (row: InvoiceRow) => onchain.get(`${row.chainId}:${row.invoiceKey.toLowerCase()}`),
    state: (row: InvoiceRow) => states.get(row.chainId)!,
    deposit: (row: InvoiceRow) => deposits.get(row.id),
    refundTo: (row: InvoiceRow) => refundTo.get(`${row.chainId}:${row.invoiceKey.toLowerCase()}`),
  };
}

export async function listInvoices(
  deps: ApiDeps,
  merchant: MerchantRecord,
  filters: ListFilters,
): Promise<{ data: InvoiceView[]; hasMore: boolean; nextCursor: string | null }> {
  const conditions: SQL[] = [eq(invoices.merchantId, merchant.id)];
  if (filters.customerId !== undefined) conditions.push(eq(invoices.customerId, filters.customerId));
  if (filters.paymentLinkId !== undefined) conditions.push(eq(invoices.paymentLinkId, filters.paymentLinkId));
  if (filters.chainId !== undefined) conditions.push(eq(invoices.chainId, filters.chainId));
  if (filters.createdAfter !== undefined) conditions.push(gt(invoices.createdAt, new Date(filters.createdAfter)));
  if (filters.createdBefore !== undefined) conditions.push(lt(invoices.createdAt, new Date(filters.createdBefore)));
  let cursor = filters.cursor !== undefined ? cursorSequence(filters.cursor) : undefined;

  const btcConditions: SQL[] = [eq(btcInvoices.merchantId, merchant.id)];
  if (filters.customerId !== undefined) btcConditions.push(eq(btcInvoices.customerId, filters.customerId));
  if (filters.paymentLinkId !== undefined) btcConditions.push(eq(btcInvoices.paymentLinkId, filters.paymentLinkId));
  if (filters.createdAfter !== undefined) btcConditions.push(gt(btcInvoices.createdAt, new Date(filters.createdAfter)));
  if (filters.createdBefore !== undefined) btcConditions.push(lt(btcInvoices.createdAt, new Date(filters.createdBefore)));

  /** The next `count` invoices (EVM and BTC share one sequence) before `after`, newest first, with their views. */
  const fetchViews = async (count: number, after: number | undefined): Promise<{ sequence: number; view: InvoiceView }[]> => {
    const [evmRows, btcRows] = await Promise.all([
      deps.store.db
        .select()
        .from(invoices)
        .where(and(...conditions, after !== undefined ? lt(invoices.sequence, after) : undefined))
        .orderBy(desc(invoices.sequence))
        .limit(count),
      // A chain filter names an EVM chain: BTC invoices are not on one.
      filters.chainId !== undefined
        ? Promise.resolve([])
        : deps.store.db
            .select()
            .from(btcInvoices)
            .where(and(...btcConditions, after !== undefined ? lt(btcInvoices.sequence, after) : undefined))
            .orderBy(desc(btcInvoices.sequence))
            .limit(count),
    ]);
    const merged = [...evmRows.map((row) => ({ sequence: row.sequence, evm: row, btc: undefined })), ...btcRows.map((row) => ({ sequence: row.sequence, evm: undefined, btc: row }))]
      .sort((a, b) => b.sequence - a.sequence)
      .slice(0, count);
    const evmPage = merged.flatMap((entry) => (entry.evm ? [entry.evm] : []));
    const btcPage = merged.flatMap((entry) => (entry.btc ? [entry.btc] : []));
    const [lookup, btcViews] = await Promise.all([indexedFor(deps, evmPage, merchant), viewBtcInvoices(deps.store.db, merchant, btcPage)]);
    return merged.map((entry) => ({
      sequence: entry.sequence,
      view: entry.evm ? invoiceView(entry.evm, lookup.onchain(entry.evm), lookup.state(entry.evm), lookup.deposit(entry.evm), lookup.refundTo(entry.evm)) : btcViews.get(entry.btc!.id)!,
    }));
  };

  if (filters.status === undefined) {
    const rows = await fetchViews(filters.limit + 1, cursor);
    const page = rows.slice(0, filters.limit);
    const hasMore = rows.length > filters.limit;
    return {
      data: page.map((entry) => entry.view),
      hasMore,
      nextCursor: hasMore ? encodeCursor([page[page.length - 1].sequence]) : null,
    };
  }

  const matched: InvoiceView[] = [];
  let matchedLast: number | undefined;
  let scanned = 0;
  let exhausted = false;
  while (matched.length <= filters.limit && scanned < MAX_SCAN) {
    const rows = await fetchViews(SCAN_BATCH, cursor);
    if (rows.length === 0) {
      exhausted = true;
      break;
    }
    for (const { sequence, view } of rows) {
      scanned += 1;
      cursor = sequence;
      if (view.status !== filters.status) continue;
      matched.push(view);
      if (matched.length === filters.limit) matchedLast = sequence;
      if (matched.length > filters.limit) break;
    }
    if (rows.length < SCAN_BATCH && matched.length <= filters.limit) {
      exhausted = true;
      break;
    }
  }
  if (matched.length > filters.limit) {
    return { data: matched.slice(0, filters.limit), hasMore: true, nextCursor: encodeCursor([matchedLast!]) };
  }
  if (exhausted || cursor === undefined) return { data: matched, hasMore: false, nextCursor: null };
  // The scan budget ran out: a short page, and the cursor continues after the last invoice examined.
  return { data: matched, hasMore: true, nextCursor: encodeCursor([cursor]) };
}
