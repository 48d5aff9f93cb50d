/**
 * BTC statements. No escrow holds Bitcoin: a BTC statement's balance is what BTC invoices brought into the
 * merchant's own wallet, net of the refunds it sent back. Entries are mined payments (+, at their block's
 * time; a payment reorged out or replaced is not an entry) and mined refunds (−, what the customer received).
 * Same shape as an EVM chain's statement (api/statements/ledger.ts), with `chainId` null and `network` set.
 */
import { sql, type SQL } from "drizzle-orm";
import type { StoreDb } from "../store";
import { formatAmount } from "../money";
import { isoFromSeconds } from "../subscriptions/ids";
import { csvField, CSV_COLUMNS } from "../statements/csv";
import type { Period } from "../statements/period";
import { BTC_DECIMALS } from "./invoices";
import type { BitcoinNetwork } from "./keys";
import { CAIP2 } from "./wallets";
import { formatFiat, unitsToFiatMinor } from "../prices/math";
import type { InvoicePrice } from "../store/schema";

export interface BtcLedgerCursor {
  timestamp: bigint;
  id: string;
}

interface Row {
  id: string;
  ts: string;
  kind: "payment" | "refund";
  amount: string;
  counterparty: string;
  invoice_id: string;
  txid: string;
  height: number;
  /** The invoice's recorded rate (api/prices): entries are valued at it. */
  price: InvoicePrice | string | null;
}

const rowsOf = <T>(result: unknown): T[] => ((result as { rows?: T[] }).rows ?? []) as T[];

/** Every mined movement of the merchant's BTC invoices on `network`, as one relation. */
function entries(merchantId: string, network: string): SQL {
  return sql`(
    SELECT p.txid || ':' || p.vout AS id, p.block_time AS ts, 'payment' AS kind, p.amount_sats AS amount,
           i.address AS counterparty, i.id AS invoice_id, p.txid AS txid, p.block_height AS height, i.price AS price
    FROM chainbill_api.btc_payments p JOIN chainbill_api.btc_invoices i ON i.id = p.invoice_id
    WHERE i.merchant_id = ${merchantId} AND i.network = ${network} AND p.block_height IS NOT NULL AND p.removed_at IS NULL
    UNION ALL
    SELECT 'refund:' || r.id, r.block_time, 'refund', -r.paid_sats, r.destination, r.invoice_id, r.seen_txid, r.block_height, i.price
    FROM chainbill_api.btc_refunds r JOIN chainbill_api.btc_invoices i ON i.id = r.invoice_id
    WHERE i.merchant_id = ${merchantId} AND i.network = ${network} AND r.block_height IS NOT NULL
  ) AS entries`;
}

async function page(db: StoreDb, merchantId: string, network: string, period: Period, limit: number, cursor?: BtcLedgerCursor): Promise<Row[]> {
  const after = cursor ? sql`AND (ts, id) > (${cursor.timestamp.toString()}::bigint, ${cursor.id})` : sql``;
  return rowsOf<Row>(
    await db.execute(sql`SELECT * FROM ${entries(merchantId, network)}
      WHERE ts >= ${period.from.toString()}::bigint AND ts < ${period.to.toString()}::bigint ${after}
      ORDER BY ts, id LIMIT ${limit}`),
  );
}

function entryView(row: Row, network: string) {
  return {
    id: row.id,
    chainId: null,
    network,
    timestamp: isoFromSeconds(BigInt(row.ts)),
    kind: row.kind,
    amount: formatAmount(BigInt(row.amount), BTC_DECIMALS),
    amountBaseUnits: BigInt(row.amount).toString(),
    counterparty: row.counterparty,
    reference: row.invoice_id,
    invoiceId: row.invoice_id,
    transactionHash: row.txid,
    blockNumber: String(row.height),
    ...btcFiat(row),
  };
}

/** The entry's value at its invoice's recorded rate (as EVM entries: api/statements/ledger.ts `fiatOf`). */
function btcFiat(row: Row) {
  const price = typeof row.price === "string" ? (JSON.parse(row.price) as InvoicePrice) : row.price;
  if (!price) return { fiatValue: null, fiatCurrency: null, fiatRate: null, fiatRateAt: null };
  return {
    fiatValue: formatFiat(unitsToFiatMinor(BigInt(row.amount), price.rate, BTC_DECIMALS)),
    fiatCurrency: price.fiatCurrency,
    fiatRate: price.rate,
    fiatRateAt: new Date(price.observedAt * 1000).toISOString(),
  };
}

/** The merchant's BTC statement over `period` with a page of its entries. */
export async function btcStatement(db: StoreDb, merchantId: string, network: BitcoinNetwork, period: Period, paging: { limit: number; cursor?: BtcLedgerCursor }) {
  const [totals] = rowsOf<{ opening: string | null; paid: string | null; refunded: string | null; count: string }>(
    await db.execute(sql`SELECT
        sum(amount) FILTER (WHERE ts < ${period.from.toString()}::bigint) AS opening,
        sum(amount) FILTER (WHERE ts >= ${period.from.toString()}::bigint AND ts < ${period.to.toString()}::bigint AND kind = 'payment') AS paid,
        -sum(amount) FILTER (WHERE ts >= ${period.from.toString()}::bigint AND ts < ${period.to.toString()}::bigint AND kind = 'refund') AS refunded,
        count(*) FILTER (WHERE ts >= ${period.from.toString()}::bigint AND ts < ${period.to.toString()}::bigint) AS count
      FROM ${entries(merchantId, network)}`),
  );
  const opening = BigInt(totals?.opening ?? 0);
  const paid = BigInt(totals?.paid ?? 0);
  const refunded = BigInt(totals?.refunded ?? 0);
  const rows = await page(db, merchantId, network, period, paging.limit + 1, paging.cursor);
  const shown = rows.slice(0, paging.limit);
  const last = shown.at(-1);
  const format = (value: bigint) => formatAmount(value, BTC_DECIMALS);
  const closing = opening + paid - refunded;
  return {
    chainId: null,
    network: CAIP2[network],
    onchainMerchantId: null,
    currency: "BTC",
    token: null,
    decimals: BTC_DECIMALS,
    openingBalance: format(opening),
    openingBalanceBaseUnits: opening.toString(),
    closingBalance: format(closing),
    closingBalanceBaseUnits: closing.toString(),
    totals: {
      paid: format(paid),
      paidBaseUnits: paid.toString(),
      refunded: format(refunded),
      refundedBaseUnits: refunded.toString(),
      released: format(0n),
      releasedBaseUnits: "0",
      fees: format(0n),
      feesBaseUnits: "0",
    },
    entryCount: Number(totals?.count ?? 0),
    entries: shown.map((row) => entryView(row, CAIP2[network])),
    nextCursor: rows.length > paging.limit && last ? { timestamp: BigInt(last.ts), id: last.id } : null,
  };
}

/** The BTC entries as CSV rows after the header (chain_id holds the CAIP-2 network id), streamed in batches. */
export function btcStatementCsv(db: StoreDb, merchantId: string, network: BitcoinNetwork, period: Period, batchSize = 5_000): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let cursor: BtcLedgerCursor | undefined;
  let headerSent = false;
  let done = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (!headerSent) {
          headerSent = true;
          controller.enqueue(encoder.encode(CSV_COLUMNS.join(",") + "\r\n"));
          return;
        }
        if (done) return controller.close();
        const rows = await page(db, merchantId, network, period, batchSize, cursor);
        if (rows.length < batchSize) done = true;
        else cursor = { timestamp: BigInt(rows[rows.length - 1].ts), id: rows[rows.length - 1].id };
        if (rows.length === 0) return controller.close();
        let text = "";
        for (const row of rows) {
          const entry = entryView(row, CAIP2[network]);
          text +=
            [
              entry.network,
              entry.timestamp,
              entry.kind,
              entry.amount,
              entry.amountBaseUnits,
              "BTC",
              entry.counterparty,
              csvField(entry.reference),
              entry.invoiceId,
              entry.transactionHash,
              entry.blockNumber,
              csvField(entry.id),
              entry.fiatValue ?? "",
              entry.fiatCurrency ?? "",
              entry.fiatRate ?? "",
              entry.fiatRateAt ?? "",
            ].join(",") +
            "\r\n";
        }
        controller.enqueue(encoder.encode(text));
      },
    },
    { highWaterMark: 1 },
  );
}
