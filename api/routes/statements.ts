/**
 * Statements: the merchant's ledger over a period per chain (opening balance, entries, totals, closing
 * balance) as JSON with paged entries or as a streamed CSV of every entry; and a customer's billing status.
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { currentMerchant, requireScope } from "../auth";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import { encodeCursor, requireCursor } from "../cursor";
import type { ApiDeps, AppEnv, MerchantRecord } from "../env";
import type { LedgerCursor } from "../indexed";
import { validationHook } from "../middleware";
import { problem, ProblemError } from "../problems";
import { BEARER, problemResponses, queryInteger } from "../schemas";
import { statementCsv } from "../statements/csv";
import { CustomerStatementSchema, customerStatement } from "../statements/customer";
import { LEDGER_KINDS, chainStatement, type StatementScope } from "../statements/ledger";
import { statementPeriod } from "../statements/period";
import { isoFromSeconds } from "../subscriptions/ids";
import { notRegistered, onchainIdentities } from "../merchants/identity";
import { resolveCurrency, type TokenInfo } from "../tokens";
import type { Context } from "hono";
import { bitcoinChainState, isBitcoin } from "../bitcoin/invoices";
import { btcStatement, btcStatementCsv } from "../bitcoin/ledger";

/** BTC statements page with the same cursor codec; chain 0 stands for the Bitcoin network. */
const BTC_CURSOR_CHAIN = 0;

const MAX_JSON_ENTRIES = 1_000;

const StatementQuery = z.object({
  currency: z.string().trim().min(1).max(64).openapi({ example: "USDC", description: "Token symbol or address (ETH for native ether)" }),
  from: z.string().max(64).optional().openapi({ example: "2026-01-01", description: "Start, inclusive (ISO 8601). Default: 30 days before `to`" }),
  to: z.string().max(64).optional().openapi({ example: "2026-02-01", description: "End, exclusive (ISO 8601). Default: now (including the latest block)" }),
  chainId: queryInteger(1, Number.MAX_SAFE_INTEGER).optional().openapi({ description: "Only this chain (default: every chain where the merchant is registered)" }),
  limit: queryInteger(1, MAX_JSON_ENTRIES)
    .default(100)
    .openapi({ description: `JSON only: entries per chain in this page (max ${MAX_JSON_ENTRIES}); CSV always has every entry` }),
  cursor: z.string().max(600).optional().openapi({ description: "JSON only: a chain's `nextCursor`, for that chain's next page of entries" }),
  format: z.enum(["json", "csv"]).optional().openapi({ description: "Overrides the Accept header" }),
});

const Money = (description?: string) => z.string().openapi(description ? { description } : {});

const EntrySchema = z
  .object({
    id: z.string(),
    chainId: z.number().int().nullable().openapi({ description: "EVM chain id; null for BTC" }),
    network: z.string().openapi({ description: "CAIP-2 id of the chain (`eip155:<chainId>` or `bip122:<genesis>`)" }),
    timestamp: z.string(),
    kind: z.enum(LEDGER_KINDS),
    amount: Money("Signed, from the merchant's view: positive when its held balance grows"),
    amountBaseUnits: z.string(),
    counterparty: z.string().openapi({ description: "Payer, subscriber, payout address, or the escrow for fees" }),
    reference: z.string().openapi({ description: "Invoice key (0x…), subscription id (sub_…) or withdrawal id" }),
    invoiceId: z.string().nullable().openapi({ description: "The API's invoice id, when the invoice was created through the API" }),
    transactionHash: z.string(),
    blockNumber: z.string(),
    fiatValue: z.string().nullable().openapi({ description: "The amount in `fiatCurrency` at the rate its invoice recorded (the locked rate of a fiat price, or the valuation at creation), rounded half-up to the cent; null without a recorded rate" }),
    fiatCurrency: z.string().nullable(),
    fiatRate: z.string().nullable().openapi({ description: "Price of one unit of the currency in `fiatCurrency` the value uses" }),
    fiatRateAt: z.string().nullable().openapi({ description: "When that rate was read (its feeds' rounds are on the invoice's `price`)" }),
  })
  .openapi("StatementEntry");

const FiatSummarySchema = z
  .object({
    currency: z.string().openapi({ description: "The merchant's fiat currency (settings.fiatCurrency)" }),
    complete: z.boolean().openapi({ description: "Every entry of the period has a rate in this currency" }),
    totals: z
      .object({ paid: z.string(), refunded: z.string(), released: z.string(), fees: z.string(), net: z.string() })
      .nullable()
      .openapi({ description: "The period's totals in fiat (each entry at its own rate); null unless `complete`" }),
    entriesWithoutRate: z.number().int(),
    withoutRate: z.array(z.string()).openapi({ description: "Ids of entries without a rate in this currency (at most 100)" }),
    truncated: z.boolean().openapi({ description: "The period has more than 50,000 entries: no fiat totals" }),
  })
  .openapi("StatementFiat");

const ChainStatementSchema = z
  .object({
    chainId: z.number().int().nullable().openapi({ description: "EVM chain id; null for BTC (see `network`)" }),
    network: z.string().openapi({ description: "CAIP-2 id of the chain" }),
    onchainMerchantId: z.string().nullable().openapi({ description: "The merchant's id in the contracts (null for BTC)" }),
    currency: z.string(),
    token: z.string().nullable(),
    decimals: z.number().int(),
    openingBalance: Money("Held for the merchant in the contracts at `from` (BTC: what BTC invoices brought into the merchant's own wallet before `from`, net of refunds: there is no escrow)"),
    openingBalanceBaseUnits: z.string(),
    closingBalance: Money("openingBalance + every entry of the period: held at `to`"),
    closingBalanceBaseUnits: z.string(),
    totals: z.object({
      paid: Money("Invoice payments and subscription charges"),
      paidBaseUnits: z.string(),
      refunded: Money("Invoice and subscription refunds (positive)"),
      refundedBaseUnits: z.string(),
      released: Money("Releases and withdrawals to the payout address (positive)"),
      releasedBaseUnits: z.string(),
      fees: Money("Protocol fees (positive)"),
      feesBaseUnits: z.string(),
    }),
    entryCount: z.number().int().openapi({ description: "Entries in the whole period (the page may hold fewer)" }),
    entries: z.array(EntrySchema).openapi({ description: "Oldest first, at most `limit`" }),
    nextCursor: z.string().nullable(),
    fiat: FiatSummarySchema.optional().openapi({ description: "EVM statements: the period in the merchant's fiat currency" }),
  })
  .openapi("ChainStatement");

const StatementSchema = z
  .object({
    from: z.string(),
    to: z.string(),
    currency: z.string(),
    chains: z.array(ChainStatementSchema),
  })
  .openapi("Statement");

const invalid = (field: string, message: string) => problem.validation([{ field, message }]);

/** The currency on each chain in play, and the merchant's registration there. */
async function statementScopes(deps: ApiDeps, merchant: MerchantRecord, currency: string, chainId: number | undefined) {
  let chains: ChainRuntime[] = [...deps.chains.values()];
  if (chainId !== undefined) {
    const chain = deps.chains.get(chainId);
    if (!chain) throw invalid("chainId", `unknown chain; this service runs on ${[...deps.chains.keys()].join(", ")}`);
    chains = [chain];
  }
  const tokens = new Map<number, TokenInfo>();
  let unknown: ProblemError | undefined;
  for (const chain of chains) {
    try {
      tokens.set(chain.id, await resolveCurrency(chain, currency));
    } catch (error) {
      if (!(error instanceof ProblemError) || error.status !== 422) throw error;
      unknown ??= error;
    }
  }
  if (tokens.size === 0 && unknown) throw unknown;
  const scopes: StatementScope[] = (await onchainIdentities(deps, merchant))
    .filter((registration) => tokens.has(registration.chain.id))
    .map((registration) => ({ ...registration, token: tokens.get(registration.chain.id)! }));
  if (chainId !== undefined && scopes.length === 0) throw notRegistered(chainId);
  return scopes;
}

/**
 * Exclusive end of "now": one second after the latest indexed block of any chain in the statement (read now,
 * so an entry indexed a moment ago is in), or after the chain's clock and the wall clock when they are later.
 */
async function defaultEnd(deps: ApiDeps, scopes: StatementScope[]): Promise<bigint> {
  let now = await chainNow(undefined);
  const indexed = await deps.freshness.indexedTimes().catch(() => new Map<number, bigint>());
  for (const scope of scopes) {
    for (const time of [await chainNow(scope.chain), indexed.get(scope.chain.id) ?? 0n]) if (time > now) now = time;
  }
  return now + 1n;
}

function parseLedgerCursor(text: string): { chainId: number; cursor: LedgerCursor } {
  const parts = requireCursor(text, 3, ([chain, timestamp, id]) => /^\d{1,10}$/.test(chain) && /^\d{1,20}$/.test(timestamp) && id.length > 0 && id.length <= 200);
  return { chainId: Number(parts[0]), cursor: { timestamp: BigInt(parts[1]), id: parts[2] } };
}

function wantsCsv(format: "json" | "csv" | undefined, accept: string | undefined): boolean {
  if (format !== undefined) return format === "csv";
  return /(^|,)\s*text\/csv\b/i.test(accept ?? "");
}

export function statementRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });

  /** `currency=BTC`: one "chain", the API's Bitcoin network (api/bitcoin/ledger.ts). */
  async function bitcoinStatement(c: Context<AppEnv>, query: { from?: string; to?: string; limit: number; chainId?: number }, csv: boolean, paging: { chainId: number; cursor: LedgerCursor } | undefined) {
    const network = deps.config.bitcoin?.network;
    if (!network) throw invalid("currency", "BTC is not enabled on this API (its operator sets BITCOIN_ESPLORA_URL or BITCOIN_RPC_URL)");
    if (query.chainId !== undefined) throw invalid("chainId", "names an EVM chain; a BTC statement has none (leave it out)");
    if (paging && paging.chainId !== BTC_CURSOR_CHAIN) throw invalid("cursor", "belongs to another currency's statement");
    // "Now" is the Bitcoin chain's: the later of the wall clock and the last processed block's time.
    const period = statementPeriod(query, query.to === undefined ? (await bitcoinChainState(deps.store.db, network)).now + 1n : 0n);
    const merchant = currentMerchant(c);
    if (csv) {
      const day = (seconds: bigint) => isoFromSeconds(seconds).slice(0, 10);
      return new Response(btcStatementCsv(deps.store.db, merchant.id, network, period), {
        status: 200,
        headers: {
          "content-type": "text/csv; charset=utf-8",
          "content-disposition": `attachment; filename="statement-BTC-${day(period.from)}-${day(period.to)}.csv"`,
          "x-content-type-options": "nosniff",
          "cache-control": "no-store",
        },
      });
    }
    const statement = await btcStatement(deps.store.db, merchant.id, network, period, { limit: query.limit, cursor: paging?.cursor });
    const nextCursor = statement.nextCursor && encodeCursor([BTC_CURSOR_CHAIN, statement.nextCursor.timestamp, statement.nextCursor.id]);
    return c.json({ from: isoFromSeconds(period.from), to: isoFromSeconds(period.to), currency: "BTC", chains: [{ ...statement, nextCursor }] }, 200);
  }

  const getStatement = createRoute({
    method: "get",
    path: "/statements",
    tags: ["Statements"],
    summary: "The merchant's statement for a period and currency",
    description: [
      "Per chain where the merchant is registered (or the one `chainId`): the balance the contracts held for the merchant at `from` (opening), every movement in `[from, to)` — payments, refunds, releases, fees, subscription charges and refunds, withdrawals — the totals, and the closing balance (what the escrow and the subscription manager hold for the merchant at `to`).",
      "",
      "**JSON** pages the entries: at most `limit` per chain (default 100, max 1,000), oldest first; a chain's `nextCursor` (passed back as `cursor`) returns that chain's next page. Balances, totals and `entryCount` always cover the whole period.",
      "",
      "**CSV** (`Accept: text/csv` or `format=csv`) streams every entry of every chain, one row each after a header row, with flat memory whatever the size.",
      "",
      "**Fiat**: an entry of an invoice that recorded a rate (a fiat-priced invoice's locked rate, or the valuation every invoice records at creation when a fresh rate exists) has `fiatValue` at that rate, with the rate and its time (CSV: `fiat_value`, `fiat_currency`, `fiat_rate`, `fiat_rate_at`). Each chain's `fiat` gives the period's totals in the merchant's fiat currency when every entry has a rate in it, and otherwise lists the entries that lack one.",
    ].join("\n"),
    security: BEARER,
    middleware: [requireScope("statements:read")] as const,
    request: { query: StatementQuery },
    responses: {
      200: {
        description: "The statement",
        content: {
          "application/json": { schema: StatementSchema },
          "text/csv": { schema: z.string().openapi({ description: "Header row then one row per entry (RFC 4180)" }) },
        },
      },
      ...problemResponses(401, 403, 409, 422, 429),
    },
  });
  app.openapi(getStatement, async (c) => {
    const merchant = currentMerchant(c);
    const query = c.req.valid("query");
    const csv = wantsCsv(query.format, c.req.header("accept"));
    const paging = !csv && query.cursor !== undefined ? parseLedgerCursor(query.cursor) : undefined;
    if (paging && query.chainId !== undefined && paging.chainId !== query.chainId) {
      throw invalid("cursor", `belongs to chain ${paging.chainId}, not ${query.chainId}`);
    }
    if (isBitcoin(query.currency)) return bitcoinStatement(c, query, csv, paging);
    const scopes = await statementScopes(deps, merchant, query.currency, paging?.chainId ?? query.chainId);
    const period = statementPeriod(query, query.to === undefined ? await defaultEnd(deps, scopes) : 0n);

    if (csv) {
      const day = (seconds: bigint) => isoFromSeconds(seconds).slice(0, 10);
      const name = `statement-${query.currency.replace(/[^A-Za-z0-9]/g, "").slice(0, 42)}-${day(period.from)}-${day(period.to)}.csv`;
      return new Response(statementCsv(deps, merchant.id, scopes, period), {
        status: 200,
        headers: {
          "content-type": "text/csv; charset=utf-8",
          "content-disposition": `attachment; filename="${name}"`,
          "x-content-type-options": "nosniff",
          "cache-control": "no-store",
        },
      });
    }

    const chains = [];
    for (const scope of scopes) {
      const statement = await chainStatement(deps, merchant.id, scope, period, { limit: query.limit, cursor: paging?.cursor }, merchant.fiatCurrency);
      chains.push({
        ...statement,
        nextCursor: statement.nextCursor && encodeCursor([statement.nextCursor.chainId, statement.nextCursor.timestamp, statement.nextCursor.id]),
      });
    }
    return c.json({ from: isoFromSeconds(period.from), to: isoFromSeconds(period.to), currency: query.currency, chains }, 200);
  });

  const getCustomerStatement = createRoute({
    method: "get",
    path: "/customers/{id}/statement",
    tags: ["Statements"],
    summary: "A customer's billing status",
    description:
      "For a customer id you set on invoices: counts of their invoices by status, the open ones and the amount due, the payments and refunds of their invoices, and the trialing, active and past-due subscriptions of the wallets that paid them, each with its next charge.",
    security: BEARER,
    middleware: [requireScope("statements:read")] as const,
    request: { params: z.object({ id: z.string().min(1).max(100).openapi({ example: "cus_42" }) }) },
    responses: {
      200: { description: "The customer's billing status", content: { "application/json": { schema: CustomerStatementSchema } } },
      ...problemResponses(401, 403, 404, 429),
    },
  });
  app.openapi(getCustomerStatement, async (c) => {
    return c.json(await customerStatement(deps, currentMerchant(c), c.req.valid("param").id), 200);
  });

  return app;
}
