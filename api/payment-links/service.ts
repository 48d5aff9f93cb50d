/**
 * Payment links: reusable (or single-use) prices that create an invoice per use. A link is priced in fiat
 * (USD, EUR, CNY: converted into the currency the customer picks at the rate of the moment, locked for the
 * merchant's `rateLockSeconds`) or in a currency paid directly (ETH, a token). Every use is a concrete, signed
 * invoice (api/invoices/create.ts) carrying the link's id, line item, checkout URLs and metadata.
 *
 * Single-use links ("an invoice for one customer"): used up once one of their invoices is paid (410
 * `payment-link-used`), and at most one open invoice at a time — a second use while one is open returns that
 * invoice when it is in the same currency, else 409 `payment-link-busy` until it expires (the link row is
 * locked while deciding, so two uses at once never make two open invoices).
 *
 * Abuse: anyone can use a link and each use signs an invoice, so uses are limited per client address
 * (`LINK_INVOICES_PER_CLIENT_PER_MINUTE`, default 10) and per link (`LINK_INVOICES_PER_LINK_PER_MINUTE`, 30
 * invoices created in the last minute, counted in the store so every replica shares it).
 */
import { and, count, desc, eq, gt, lt, sql, type SQL } from "drizzle-orm";
import type { Hex } from "viem";
import { newId } from "../auth";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import { decodeCursor, encodeCursor } from "../cursor";
import type { ApiDeps, MerchantRecord } from "../env";
import type { Remember, StoreTx } from "../idempotency";
import { amountIn, convertFiat, convertFiatToBtc, fiatAmountIn, insertInvoice, invoiceChain, prepareInvoice } from "../invoices/create";
import { formatAmount, MAX_BASE_UNITS } from "../money";
import { formatFiat } from "../prices/math";
import { isFiat, type FiatCurrency } from "../prices/types";
import { problem, ProblemError, type FieldError } from "../problems";
import { btcInvoices, invoices, merchants, paymentLinks, type InvoicePrice } from "../store/schema";
import { findToken, resolveCurrency, type TokenInfo } from "../tokens";
import { BTC_DECIMALS, bitcoinChainState, btcRecords, createBtcInvoice, isBitcoin, stateOf } from "../bitcoin/invoices";
import { PAID_STATUSES } from "../bitcoin/state";
import { activeWallet } from "../bitcoin/wallets";
import type { InvoiceView } from "../invoices/schemas";
import type { CreatePaymentLinkInput, PaymentLinkView, UsePaymentLinkInput } from "./schemas";

export type PaymentLinkRow = typeof paymentLinks.$inferSelect;

const invalid = (field: string, message: string): FieldError => ({ field, message });
const iso = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString();

/** Whether the merchant can take BTC on a fiat link of `chain`: Bitcoin on, an account key, a BTC rate on that chain. */
async function btcPayable(deps: ApiDeps, merchant: MerchantRecord, chain: ChainRuntime, fiat: FiatCurrency): Promise<string | undefined> {
  if (!deps.config.bitcoin) return "BTC is not enabled on this API";
  if (!deps.prices?.canPrice(chain.id, "BTC", fiat)) return `there is no BTC/${fiat} price feed on chain ${chain.id}`;
  if (!(await activeWallet(deps.store.db, merchant.id))) return "register your Bitcoin account key first (PUT /v1/merchants/me/bitcoin)";
  return undefined;
}

/** The link's currencies the customer may pay in on its chain: symbols with a price feed (fiat links), and BTC when it can be taken. */
async function payableCurrencies(deps: ApiDeps, merchant: MerchantRecord, chain: ChainRuntime, fiat: FiatCurrency): Promise<string[]> {
  const symbols = [...new Set(chain.tokens.map((token) => token.symbol))].filter((symbol) => deps.prices?.canPrice(chain.id, symbol, fiat));
  return (await btcPayable(deps, merchant, chain, fiat)) === undefined ? [...symbols, "BTC"] : symbols;
}

/** The amount of a link's price in its currency: cents for fiat, base units for a token. */
function linkAmount(text: string, fiat: boolean, token: TokenInfo | undefined, field: string, errors: FieldError[]): bigint | undefined {
  return fiat ? fiatAmountIn(text, field, errors) : amountIn(text, token!, field, errors);
}

function formatLinkAmount(value: bigint, fiat: boolean, token: TokenInfo | undefined): string {
  return fiat ? formatFiat(value) : formatAmount(value, token!.decimals);
}

/**
 * Validates and stores a new link; `respond` renders the response, which `remember` (idempotency) stores in
 * the same transaction as the link.
 */
export async function createPaymentLink(
  deps: ApiDeps,
  merchant: MerchantRecord,
  body: CreatePaymentLinkInput,
  respond: (row: PaymentLinkRow) => string,
  remember: Remember | undefined,
): Promise<string> {
  const chain = invoiceChain(deps, body.chainId);
  const errors: FieldError[] = [];
  const fiat = isFiat(body.price.currency) ? (body.price.currency.toUpperCase() as FiatCurrency) : undefined;
  let token: TokenInfo | undefined;
  let accept: string[] | null = null;
  if (fiat) {
    if (body.accept) {
      accept = [];
      for (const [index, currency] of body.accept.entries()) {
        if (isBitcoin(currency)) {
          const why = await btcPayable(deps, merchant, chain, fiat);
          if (why) errors.push(invalid(`accept.${index}`, `cannot be BTC: ${why}`));
          else if (!accept.includes("BTC")) accept.push("BTC");
          continue;
        }
        const found = /^[A-Za-z0-9.]{1,16}$/.test(currency) ? findToken(chain, currency) : undefined;
        if (!found) errors.push(invalid(`accept.${index}`, `is not a currency known on chain ${chain.id} (known: ${[...new Set(chain.tokens.map((t) => t.symbol))].join(", ")})`));
        else if (!deps.prices?.canPrice(chain.id, found.symbol, fiat)) errors.push(invalid(`accept.${index}`, `has no price feed for ${found.symbol}/${fiat} on chain ${chain.id} (see docs/PRICES.md)`));
        else if (!accept.includes(found.symbol)) accept.push(found.symbol);
      }
    } else {
      accept = await payableCurrencies(deps, merchant, chain, fiat);
      if (accept.length === 0) errors.push(invalid("price.currency", `no currency can be priced in ${fiat} on chain ${chain.id}: no price feeds are configured (see docs/PRICES.md)`));
    }
  } else {
    if (isBitcoin(body.price.currency)) throw problem.validation([invalid("price.currency", "cannot be BTC: price the link in USD, EUR or CNY and accept BTC, or price it in ETH or a token")]);
    token = await resolveCurrency(chain, body.price.currency).catch((error: unknown) => {
      if (error instanceof ProblemError && error.status === 422) throw problem.validation(((error.extensions.errors as FieldError[]) ?? []).map((entry) => ({ ...entry, field: "price.currency" })));
      throw error;
    });
    if (body.accept) errors.push(invalid("accept", `is only for fiat prices: this link is paid in ${token.symbol} directly`));
  }
  let amount: bigint | undefined;
  let minimum: bigint | undefined;
  let maximum: bigint | undefined;
  if (body.price.type === "fixed") {
    amount = linkAmount(body.price.amount, !!fiat, token, "price.amount", errors);
  } else {
    minimum = linkAmount(body.price.minimum, !!fiat, token, "price.minimum", errors);
    if (body.price.maximum !== undefined) {
      maximum = linkAmount(body.price.maximum, !!fiat, token, "price.maximum", errors);
      if (minimum !== undefined && maximum !== undefined && maximum < minimum) errors.push(invalid("price.maximum", "must be at least the minimum"));
    }
    if (body.quantity && body.quantity.maximum > 1) errors.push(invalid("quantity", "is only for fixed prices (the customer chooses the whole amount)"));
  }
  const maxQuantity = body.quantity?.maximum ?? 1;
  if (amount !== undefined && (fiat ? amount * BigInt(maxQuantity) > 10n ** 14n : amount * BigInt(maxQuantity) > MAX_BASE_UNITS)) {
    errors.push(invalid("quantity.maximum", "times the price is too large"));
  }
  if (errors.length > 0) throw problem.validation(errors);

  return deps.store.db.transaction(async (tx) => {
    const [row] = await tx
      .insert(paymentLinks)
      .values({
        id: newId("link"),
        merchantId: merchant.id,
        name: body.name,
        description: body.description ?? null,
        pricing: body.price.type,
        // A registry token by its symbol; any other ERC-20 by its address.
        currency: fiat ?? (findToken(chain, token!.symbol)?.address === token!.address ? token!.symbol : token!.address),
        amount: amount !== undefined ? formatLinkAmount(amount, !!fiat, token) : null,
        minimumAmount: minimum !== undefined ? formatLinkAmount(minimum, !!fiat, token) : null,
        maximumAmount: maximum !== undefined ? formatLinkAmount(maximum, !!fiat, token) : null,
        maxQuantity,
        accept,
        chainId: chain.id,
        singleUse: body.singleUse ?? false,
        lineItemDescription: body.lineItemDescription ?? null,
        checkout: body.successUrl || body.cancelUrl ? { ...(body.successUrl ? { successUrl: body.successUrl } : {}), ...(body.cancelUrl ? { cancelUrl: body.cancelUrl } : {}) } : null,
        metadata: body.metadata ?? null,
        createdAt: new Date(),
      })
      .returning();
    const text = respond(row);
    await remember?.(tx, { status: 201, body: text });
    return text;
  });
}

/** What the link shows its merchant; `origin` makes the absolute `url` of its public page. */
export function linkView(row: PaymentLinkRow, origin: string): PaymentLinkView {
  return {
    id: row.id,
    url: new URL(`/l/${row.id}`, origin).toString(),
    name: row.name,
    description: row.description,
    pricing: row.pricing as "fixed" | "customer_chosen",
    currency: row.currency,
    amount: row.amount,
    minimum: row.minimumAmount,
    maximum: row.maximumAmount,
    maxQuantity: row.maxQuantity,
    accept: row.accept ?? [row.currency],
    chainId: row.chainId!,
    singleUse: row.singleUse,
    lineItemDescription: row.lineItemDescription,
    checkout: { successUrl: row.checkout?.successUrl ?? null, cancelUrl: row.checkout?.cancelUrl ?? null },
    metadata: row.metadata ?? {},
    active: row.active,
    deactivatedAt: row.deactivatedAt?.toISOString() ?? null,
    createdAt: row.createdAt.toISOString(),
  };
}

export async function loadLink(deps: ApiDeps, merchantId: string | undefined, id: string): Promise<PaymentLinkRow> {
  const [row] = await deps.store.db
    .select()
    .from(paymentLinks)
    .where(merchantId === undefined ? eq(paymentLinks.id, id) : and(eq(paymentLinks.id, id), eq(paymentLinks.merchantId, merchantId)))
    .limit(1);
  if (!row) throw problem.notFound(`Payment link ${id}`);
  return row;
}

export async function listLinks(deps: ApiDeps, merchant: MerchantRecord, query: { active?: "true" | "false"; limit: number; cursor?: string }, origin: string) {
  const conditions: SQL[] = [eq(paymentLinks.merchantId, merchant.id)];
  if (query.active !== undefined) conditions.push(eq(paymentLinks.active, query.active === "true"));
  if (query.cursor !== undefined) {
    const parts = decodeCursor(query.cursor, 1);
    if (!parts || !/^[1-9]\d{0,15}$/.test(parts[0])) throw problem.validation([invalid("cursor", "is not a cursor returned by this list (pass the previous page's `nextCursor`)")]);
    conditions.push(lt(paymentLinks.sequence, Number(parts[0])));
  }
  const rows = await deps.store.db.select().from(paymentLinks).where(and(...conditions)).orderBy(desc(paymentLinks.sequence)).limit(query.limit + 1);
  const page = rows.slice(0, query.limit);
  const hasMore = rows.length > query.limit;
  return { data: page.map((row) => linkView(row, origin)), hasMore, nextCursor: hasMore ? encodeCursor([page[page.length - 1].sequence]) : null };
}

interface LinkInvoiceState {
  id: string;
  currency: string;
  amount: bigint;
  decimals: number;
  expiresAt: bigint;
  state: "paid" | "open" | "void" | "expired";
}

/** The invoices of a link with what the chain says of them (paid, void) and the clock (open, expired). */
async function linkInvoiceStates(deps: ApiDeps, db: Pick<StoreTx, "select">, link: PaymentLinkRow): Promise<LinkInvoiceState[]> {
  const [rows, btcRows] = await Promise.all([
    db
      .select({ id: invoices.id, chainId: invoices.chainId, key: invoices.invoiceKey, currency: invoices.currency, amount: invoices.amount, decimals: invoices.decimals, expiresAt: invoices.expiresAt })
      .from(invoices)
      .where(eq(invoices.paymentLinkId, link.id)),
    db.select().from(btcInvoices).where(eq(btcInvoices.paymentLinkId, link.id)),
  ]);
  const btcStates: LinkInvoiceState[] = [];
  if (btcRows.length > 0) {
    const records = await btcRecords(db, btcRows.map((row) => row.id));
    const chains = new Map<string, Awaited<ReturnType<typeof bitcoinChainState>>>();
    for (const row of btcRows) {
      if (!chains.has(row.network)) chains.set(row.network, await bitcoinChainState(db, row.network));
      const chainState = chains.get(row.network)!;
      const { status } = stateOf(row, records.get(row.id)!, { ...chainState, policy: 1 });
      // Money on its way (pending, underpaid) keeps the invoice open: the link is not free for another.
      const state = PAID_STATUSES.has(status) ? "paid" : status === "expired" ? "expired" : "open";
      btcStates.push({ id: row.id, currency: "BTC", amount: row.amountSats, decimals: BTC_DECIMALS, expiresAt: row.expiresAt, state });
    }
  }
  if (rows.length === 0) return btcStates;
  const onchain = new Map<string, { status: string }>();
  const chainIds = [...new Set(rows.map((row) => row.chainId))];
  for (const chainId of chainIds) {
    const keys = rows.filter((row) => row.chainId === chainId).map((row) => row.key as Hex);
    for (let start = 0; start < keys.length; start += 1_000) {
      for (const [key, value] of await deps.indexed.invoices(chainId, keys.slice(start, start + 1_000))) onchain.set(`${chainId}:${key}`, value);
    }
  }
  const now = await chainNow(deps.chains.get(link.chainId!));
  return [
    ...rows.map((row): LinkInvoiceState => {
      const found = onchain.get(`${row.chainId}:${row.key.toLowerCase()}`);
      const state = found ? (found.status === "voided" ? "void" : "paid") : row.expiresAt > now ? "open" : "expired";
      return { id: row.id, currency: row.currency, amount: BigInt(row.amount), decimals: row.decimals, expiresAt: row.expiresAt, state };
    }),
    ...btcStates,
  ];
}

export async function linkStats(deps: ApiDeps, link: PaymentLinkRow): Promise<NonNullable<PaymentLinkView["stats"]>> {
  const states = await linkInvoiceStates(deps, deps.store.db, link);
  const totals = new Map<string, { amount: bigint; decimals: number; count: number }>();
  for (const entry of states.filter((state) => state.state === "paid")) {
    const total = totals.get(entry.currency) ?? { amount: 0n, decimals: entry.decimals, count: 0 };
    total.amount += entry.amount;
    total.count += 1;
    totals.set(entry.currency, total);
  }
  return {
    invoices: states.length,
    paid: states.filter((state) => state.state === "paid").length,
    open: states.filter((state) => state.state === "open").length,
    totals: [...totals.entries()].map(([currency, total]) => ({ currency, amount: formatAmount(total.amount, total.decimals), amountBaseUnits: total.amount.toString(), count: total.count })),
  };
}

export async function setLinkActive(deps: ApiDeps, merchant: MerchantRecord, id: string, active: boolean): Promise<PaymentLinkRow> {
  await loadLink(deps, merchant.id, id);
  const [row] = await deps.store.db
    .update(paymentLinks)
    .set(active ? { active: true, deactivatedAt: null } : { active: false, deactivatedAt: sql`coalesce(${paymentLinks.deactivatedAt}, now())` })
    .where(and(eq(paymentLinks.id, id), eq(paymentLinks.merchantId, merchant.id)))
    .returning();
  return row;
}

// ------------------------------------------------------------------------------------------------ public side

export async function publicLinkView(deps: ApiDeps, link: PaymentLinkRow) {
  const chain = deps.chains.get(link.chainId!);
  const [owner] = await deps.store.db.select({ name: merchants.name }).from(merchants).where(eq(merchants.id, link.merchantId)).limit(1);
  const symbols = link.accept ?? [link.currency];
  const accept = chain
    ? symbols.flatMap((symbol): { currency: string; chainId: number | null; decimals: number }[] => {
        if (symbol === "BTC") return deps.config.bitcoin ? [{ currency: "BTC", chainId: null, decimals: BTC_DECIMALS }] : [];
        const token = findToken(chain, symbol);
        return token ? [{ currency: token.symbol, chainId: chain.id, decimals: token.decimals }] : [];
      })
    : [];
  const used = link.singleUse ? (await linkInvoiceStates(deps, deps.store.db, link)).some((state) => state.state === "paid") : false;
  return {
    id: link.id,
    name: link.name,
    description: link.description,
    merchant: { name: owner?.name ?? "" },
    pricing: link.pricing as "fixed" | "customer_chosen",
    currency: link.currency,
    amount: link.amount,
    minimum: link.minimumAmount,
    maximum: link.maximumAmount,
    maxQuantity: link.maxQuantity,
    accept,
    active: link.active,
    singleUse: link.singleUse,
    used,
  };
}

export interface UseResult {
  status: 200 | 201;
  body: {
    invoiceId: string;
    checkoutUrl: string;
    expiresAt: string;
    amount: string;
    currency: string;
    chainId: number | null;
    fiatAmount: string | null;
    fiatCurrency: string | null;
    rate: string | null;
  };
}

const inactive = () => new ProblemError("payment-link-inactive", "The merchant deactivated this payment link: it creates no more invoices.");
const usedUp = () => new ProblemError("payment-link-used", "This single-use payment link was already paid: it creates no more invoices.");

function linkRateLimited(detail: string, retryAfter: number): ProblemError {
  return new ProblemError("rate-limited", detail, { retryAfter }, { "Retry-After": String(retryAfter) });
}

/**
 * Single-use rules, inside the transaction that holds the link's row: paid → 410; an open invoice in the same
 * currency is the answer; in another currency → 409.
 */
async function singleUseCheck(deps: ApiDeps, tx: StoreTx, link: PaymentLinkRow, symbol: string): Promise<LinkInvoiceState | undefined> {
  const states = await linkInvoiceStates(deps, tx, link);
  if (states.some((state) => state.state === "paid")) throw usedUp();
  const open = states.find((state) => state.state === "open");
  if (!open) return undefined;
  if (open.currency === symbol) return open;
  throw new ProblemError(
    "payment-link-busy",
    `This single-use link already has an open invoice in ${open.currency} (${open.id}), locked until ${iso(open.expiresAt)}: pay it, or use the link again after it expires.`,
    { invoiceId: open.id, expiresAt: iso(open.expiresAt) },
  );
}

function useResult(
  status: 200 | 201,
  row: { id: string; expiresAt: bigint; amount: string; decimals: number; currency: string; chainId: number | null; price: { fiatAmount?: string; fiatCurrency: string; rate: string } | null },
): UseResult {
  const fiat = row.price?.fiatAmount !== undefined;
  return {
    status,
    body: {
      invoiceId: row.id,
      checkoutUrl: `/pay/${row.id}`,
      expiresAt: iso(row.expiresAt),
      amount: formatAmount(BigInt(row.amount), row.decimals),
      currency: row.currency,
      chainId: row.chainId,
      fiatAmount: fiat ? row.price!.fiatAmount! : null,
      fiatCurrency: fiat ? row.price!.fiatCurrency : null,
      rate: fiat ? row.price!.rate : null,
    },
  };
}

/** One use of a link: validates the customer's choice, prices it, signs the invoice and stores it. */
export async function useLink(deps: ApiDeps, link: PaymentLinkRow, body: UsePaymentLinkInput): Promise<UseResult> {
  if (!link.active) throw inactive();
  const chain = deps.chains.get(link.chainId!);
  if (!chain) throw problem.unavailable(`Chain ${link.chainId} of this payment link is not served by this API any more.`);
  const errors: FieldError[] = [];
  if (body.chainId !== undefined && body.chainId !== chain.id) errors.push(invalid("chainId", `this link is paid on chain ${chain.id}`));
  const fiat = isFiat(link.currency) ? (link.currency as FiatCurrency) : undefined;
  const allowed = link.accept ?? [link.currency];
  const wanted = allowed.find((symbol) => symbol.toLowerCase() === body.currency.toLowerCase());
  const btc = wanted === "BTC" && deps.config.bitcoin !== undefined && fiat !== undefined;
  const payToken = btc ? BTC_TOKEN : wanted && wanted !== "BTC" ? (findToken(chain, wanted) ?? (await resolveCurrency(chain, wanted).catch(() => undefined))) : undefined;
  const offered = allowed.filter((symbol) => symbol !== "BTC" || deps.config.bitcoin);
  if (!wanted || !payToken) errors.push(invalid("currency", `is not accepted by this link: pay in ${offered.map((symbol) => findToken(chain, symbol)?.symbol ?? symbol).join(", ")}`));
  const priceToken = fiat ? undefined : payToken;
  const quantity = body.quantity ?? 1;
  if (quantity > link.maxQuantity) errors.push(invalid("quantity", link.maxQuantity === 1 ? "cannot be chosen on this link" : `must be at most ${link.maxQuantity}`));
  let unit: bigint | undefined;
  if (link.pricing === "fixed") {
    if (body.amount !== undefined) errors.push(invalid("amount", "cannot be chosen: this link has a fixed price"));
    else if (priceToken || fiat) unit = linkAmount(link.amount!, !!fiat, priceToken, "amount", errors);
  } else if (body.amount === undefined) {
    errors.push(invalid("amount", `is required: choose an amount of at least ${link.minimumAmount} ${link.currency}`));
  } else if (priceToken || fiat) {
    unit = linkAmount(body.amount, !!fiat, priceToken, "amount", errors);
    if (unit !== undefined) {
      const minimum = linkAmount(link.minimumAmount!, !!fiat, priceToken, "amount", []);
      const maximum = link.maximumAmount !== null ? linkAmount(link.maximumAmount, !!fiat, priceToken, "amount", []) : undefined;
      if (minimum !== undefined && unit < minimum) errors.push(invalid("amount", `must be at least ${link.minimumAmount} ${link.currency}`));
      else if (maximum !== undefined && unit > maximum) errors.push(invalid("amount", `must be at most ${link.maximumAmount} ${link.currency}`));
    }
  }
  if (errors.length > 0 || unit === undefined || !payToken) throw problem.validation(errors);
  const total = unit * BigInt(quantity);

  // A single-use link: answer from the store before signing anything (checked again under the lock below).
  if (link.singleUse) {
    const existing = await deps.store.db.transaction((tx) => singleUseCheck(deps, tx, link, payToken.symbol));
    if (existing) return existingInvoice(deps.store.db, existing.id);
  }
  const limit = deps.config.paymentLinks.invoicesPerLinkPerMinute;
  const since = new Date(Date.now() - 60_000);
  const [[{ evm }], [{ bitcoin }]] = await Promise.all([
    deps.store.db.select({ evm: count() }).from(invoices).where(and(eq(invoices.paymentLinkId, link.id), gt(invoices.createdAt, since))),
    deps.store.db.select({ bitcoin: count() }).from(btcInvoices).where(and(eq(btcInvoices.paymentLinkId, link.id), gt(btcInvoices.createdAt, since))),
  ]);
  const recent = evm + bitcoin;
  if (recent >= limit) throw linkRateLimited(`This payment link created ${recent} invoices in the last minute (at most ${limit}): retry in a minute.`, 60);

  const [merchant] = await deps.store.db.select().from(merchants).where(eq(merchants.id, link.merchantId)).limit(1);
  const itemText = link.lineItemDescription ?? link.name;
  const unitText = formatLinkAmount(unit, !!fiat, priceToken);
  if (btc) return useLinkInBtc(deps, link, merchant, fiat!, total, { quantity, itemText, unitText });
  const now = await chainNow(chain);
  let amount = total;
  let price;
  let expiresAt = now + BigInt(deps.config.defaultExpirySeconds);
  if (fiat) {
    expiresAt = now + BigInt(merchant.rateLockSeconds);
    ({ amount, price } = await convertFiat(deps, chain, payToken, fiat, total, expiresAt));
  }
  const values = await prepareInvoice(deps, merchant, {
    chain,
    token: payToken,
    amount,
    now,
    expiresAt,
    description: quantity > 1 ? `${link.name} × ${quantity}` : link.name,
    lineItems: [{ description: itemText, quantity, unitAmount: unitText }],
    customer: body.customer?.email !== undefined ? { email: body.customer.email } : undefined,
    metadata: { ...(link.metadata ?? {}), paymentLinkId: link.id },
    paymentLinkId: link.id,
    price,
    checkout: link.checkout ?? undefined,
  });
  return deps.store.db.transaction(async (tx) => {
    // The link's row is the lock: uses of one link are decided one at a time.
    const [current] = await tx.select().from(paymentLinks).where(eq(paymentLinks.id, link.id)).for("update");
    if (!current?.active) throw inactive();
    if (current.singleUse) {
      const existing = await singleUseCheck(deps, tx, current, payToken.symbol);
      if (existing) return existingInvoice(tx, existing.id);
    }
    const { row } = await insertInvoice(deps, tx, merchant, values, now);
    return useResult(201, row);
  });
}

/** The answer for an invoice a link already made (EVM or BTC). */
async function existingInvoice(db: Pick<StoreTx, "select">, id: string): Promise<UseResult> {
  const [row] = await db.select().from(invoices).where(eq(invoices.id, id));
  if (row) return useResult(200, row);
  const [btc] = await db.select().from(btcInvoices).where(eq(btcInvoices.id, id));
  return useResult(200, { ...btc, amount: btc.amountSats.toString(), decimals: BTC_DECIMALS, currency: "BTC", chainId: null });
}

/** Unpaid, unexpired BTC invoices a reusable link may hold at once (each takes one of the merchant's addresses). */
export const MAX_OPEN_BTC_PER_LINK = 5;

/** BTC stands in the currency checks for a link's BTC choice (it is no token: the invoice is a BTC invoice). */
const BTC_TOKEN: TokenInfo = { symbol: "BTC", address: "0x0000000000000000000000000000000000000000", decimals: BTC_DECIMALS };

/**
 * A fiat link's use paid in BTC: the price converted at the BTC rate read on the link's chain, locked for the
 * merchant's window, a BTC invoice on the merchant's Bitcoin account (api/bitcoin/invoices.ts) — decided under
 * the same row lock as an EVM use.
 */
async function useLinkInBtc(
  deps: ApiDeps,
  link: PaymentLinkRow,
  merchant: MerchantRecord,
  fiat: FiatCurrency,
  minor: bigint,
  item: { quantity: number; itemText: string; unitText: string },
): Promise<UseResult> {
  const { now } = await bitcoinChainState(deps.store.db, deps.config.bitcoin!.network);
  const expiresAt = now + BigInt(merchant.rateLockSeconds);
  const { amountSats, price } = await convertFiatToBtc(deps, fiat, minor, expiresAt, link.chainId!);
  let replayed: UseResult | undefined;
  const response = await createBtcInvoice(
    deps,
    merchant,
    {
      amount: formatAmount(amountSats, BTC_DECIMALS),
      currency: "BTC",
      description: item.quantity > 1 ? `${link.name} × ${item.quantity}` : link.name,
      lineItems: [{ description: item.itemText, quantity: item.quantity, unitAmount: item.unitText }],
      metadata: { ...(link.metadata ?? {}), paymentLinkId: link.id },
    },
    undefined,
    {
      amountSats,
      expiresAt,
      price,
      paymentLinkId: link.id,
      checkout: link.checkout ?? undefined,
      inTransaction: async (tx) => {
        const [current] = await tx.select().from(paymentLinks).where(eq(paymentLinks.id, link.id)).for("update");
        if (!current?.active) throw inactive();
        if (!current.singleUse) {
          // Each BTC invoice takes an address of the merchant's account, and wallets stop scanning after the gap
          // limit of unused ones: a link never holds more than a few unpaid BTC invoices at once.
          const open = (await linkInvoiceStates(deps, tx, current)).filter((state) => state.currency === "BTC" && state.state === "open").length;
          if (open >= MAX_OPEN_BTC_PER_LINK) {
            throw linkRateLimited(`This payment link already has ${open} unpaid BTC invoices (at most ${MAX_OPEN_BTC_PER_LINK}, to keep the merchant's Bitcoin addresses within the gap limit): pay in another currency, or retry once one is paid or expired.`, 60);
          }
          return undefined;
        }
        const existing = await singleUseCheck(deps, tx, current, "BTC");
        if (!existing) return undefined;
        replayed = await existingInvoice(tx, existing.id);
        return { status: 200, body: "" };
      },
    },
  );
  if (replayed) return replayed;
  const view = JSON.parse(response.body) as InvoiceView;
  return useResult(201, { id: view.id, expiresAt, amount: view.amountBaseUnits, decimals: BTC_DECIMALS, currency: "BTC", chainId: null, price: price as InvoicePrice });
}
