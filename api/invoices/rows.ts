/**
 * Stored invoices (the terms as signed, the off-chain details): one merchant's invoice by id, cached briefly.
 * A stored invoice never changes after creation (every later state is on-chain), so a cached row is always
 * right; the merchant check applies to cached rows exactly as to the query, so another merchant's id is simply
 * not found on every path.
 */
import { and, eq } from "drizzle-orm";
import type { MerchantRecord } from "../env";
import { problem } from "../problems";
import type { StoreDb } from "../store";
import { invoices } from "../store/schema";

export type InvoiceRow = typeof invoices.$inferSelect;

const MAX_ID_LENGTH = 64;
const CACHE_MS = 30_000;
const CACHE_LIMIT = 10_000;

export function createInvoiceRows(db: StoreDb) {
  const cache = new Map<string, { row: InvoiceRow; expires: number }>();

  return {
    /** One invoice of `merchant`, or a 404 problem (also for another merchant's invoice). */
    async load(merchant: MerchantRecord, id: string): Promise<InvoiceRow> {
      if (id.length > MAX_ID_LENGTH) throw problem.notFound(`Invoice ${id.slice(0, MAX_ID_LENGTH)}…`);
      const cached = cache.get(id);
      if (cached && cached.expires > Date.now()) {
        if (cached.row.merchantId !== merchant.id) throw problem.notFound(`Invoice ${id}`);
        return cached.row;
      }
      const [row] = await db
        .select()
        .from(invoices)
        .where(and(eq(invoices.id, id), eq(invoices.merchantId, merchant.id)))
        .limit(1);
      if (!row) throw problem.notFound(`Invoice ${id}`);
      if (cache.size >= CACHE_LIMIT) cache.clear();
      cache.set(id, { row, expires: Date.now() + CACHE_MS });
      return row;
    },
  };
}

export type InvoiceRows = ReturnType<typeof createInvoiceRows>;
