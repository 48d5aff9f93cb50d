/**
 * A statement's entries as CSV (RFC 4180), streamed: the ledger is read with keyset pagination, one batch of
 * `CSV_BATCH` rows per pull of the response stream, so memory stays flat whatever the number of entries and a
 * slow client slows the reads down instead of filling a buffer. Chains follow one another (scopes in order).
 */
import type { Address } from "viem";
import type { ApiDeps } from "../env";
import type { LedgerCursor } from "../indexed";
import { entryView, invoiceRefsOf, pricesOf, type StatementScope } from "./ledger";
import type { Period } from "./period";

export const CSV_BATCH = 5_000;

export const CSV_COLUMNS = [
  "chain_id",
  "timestamp",
  "kind",
  "amount",
  "amount_base_units",
  "currency",
  "counterparty",
  "reference",
  "invoice_id",
  "transaction_hash",
  "block_number",
  "entry_id",
  "fiat_value",
  "fiat_currency",
  "fiat_rate",
  "fiat_rate_at",
] as const;

/** Quotes a field when needed, and defuses text a spreadsheet would run as a formula (a token's own symbol). */
export function csvField(value: string, { text = false } = {}): string {
  const safe = text && /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

const LINE_END = "\r\n";

export function statementCsv(
  deps: ApiDeps,
  merchantId: string,
  scopes: StatementScope[],
  period: Period,
  batchSize = CSV_BATCH,
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let scopeIndex = 0;
  let cursor: LedgerCursor | undefined;
  let headerSent = false;

  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          if (!headerSent) {
            headerSent = true;
            controller.enqueue(encoder.encode(CSV_COLUMNS.join(",") + LINE_END));
            return;
          }
          while (scopeIndex < scopes.length) {
            const scope = scopes[scopeIndex];
            const rows = await deps.indexed.ledgerPage(scope.owner, scope.token.address as Address, period.from, period.to, batchSize, cursor);
            if (rows.length < batchSize) {
              scopeIndex += 1;
              cursor = undefined;
            } else {
              const last = rows[rows.length - 1];
              cursor = { timestamp: last.timestamp, id: last.id };
            }
            if (rows.length === 0) continue;
            const refs = await invoiceRefsOf(deps, merchantId, scope.chain.id, rows);
            const invoiceIds = new Map([...refs].map(([key, ref]) => [key, ref.id]));
            const prices = pricesOf(refs);
            let text = "";
            for (const row of rows) {
              const entry = entryView(row, scope.token, invoiceIds, prices);
              text +=
                [
                  String(entry.chainId),
                  entry.timestamp,
                  entry.kind,
                  entry.amount,
                  entry.amountBaseUnits,
                  csvField(scope.token.symbol, { text: true }),
                  entry.counterparty,
                  csvField(entry.reference, { text: true }),
                  entry.invoiceId ?? "",
                  entry.transactionHash,
                  entry.blockNumber,
                  csvField(entry.id),
                  entry.fiatValue ?? "",
                  entry.fiatCurrency ?? "",
                  entry.fiatRate ?? "",
                  entry.fiatRateAt ?? "",
                ].join(",") + LINE_END;
            }
            controller.enqueue(encoder.encode(text));
            return;
          }
          controller.close();
        } catch (error) {
          // The status line is already sent: the only honest signal left is to abort the body.
          deps.logger.error({ err: error, merchantId }, "statement CSV stream failed");
          controller.error(error);
        }
      },
    },
    { highWaterMark: 1 },
  );
}
