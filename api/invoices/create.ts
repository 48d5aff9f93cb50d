/**
 * Invoice creation: validates what needs the chain (currency and its precision, dates, the merchant's on-chain
 * identity, the protocol fee), signs the terms with the merchant's operator key and stores the invoice with
 * its idempotent response in one transaction. A fiat price (USD, EUR, CNY with `payCurrency`) is converted at
 * the current rate first (api/prices), locked for the merchant's `rateLockSeconds`: the stored invoice always
 * has concrete token terms. `prepareInvoice` / `insertInvoice` are shared with payment links.
 */
import { requiredConfirmations } from "../webhooks/confirmations";
import { keccak256, stringToBytes, zeroAddress, type Address } from "viem";
import { billingEscrowDomain, buildInvoice, depositAddress, signInvoiceAndKey } from "../../contracts/invoice";
import { newId } from "../auth";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { ApiDeps, MerchantRecord } from "../env";
import type { Remember, RememberedResponse, StoreTx } from "../idempotency";
import { requireIdentity } from "../merchants/identity";
import { AMOUNT_ERROR_MESSAGES, formatAmount, MAX_BASE_UNITS, parseAmount } from "../money";
import { problem, ProblemError, type FieldError } from "../problems";
import { fiatToUnits, formatFiat } from "../prices/math";
import { priceRecord } from "../prices/record";
import { FIAT_DECIMALS, isFiat, type FiatCurrency } from "../prices/types";
import { BTC_DECIMALS, bitcoinChainState, createBtcInvoice, isBitcoin } from "../bitcoin/invoices";
import { invoices, type CheckoutFields, type InvoicePrice } from "../store/schema";
import { resolveCurrency, type TokenInfo } from "../tokens";
import { detailsHash, type InvoiceDetails } from "./details";
import type { CreateInvoiceInput } from "./schemas";
import { invoiceView } from "./view";

const iso = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString();

/** A decimal amount in `token`'s base units, or an entry in `errors` (zero allowed for line items). */
export function amountIn(text: string, token: TokenInfo, field: string, errors: FieldError[], allowZero = false): bigint | undefined {
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

/** The chain an invoice is for: `chainId`, or the only chain the API serves. */
export function invoiceChain(deps: ApiDeps, chainId: number | undefined): ChainRuntime {
  const configured = [...deps.chains.keys()];
  const wanted = chainId ?? (configured.length === 1 ? configured[0] : undefined);
  if (wanted === undefined) {
    throw problem.validation([{ field: "chainId", message: `is required: this API serves chains ${configured.join(", ")}` }]);
  }
  const chain = deps.chains.get(wanted);
  if (!chain) {
    throw problem.validation([{ field: "chainId", message: `is not a chain this API serves (it serves ${configured.join(", ") || "none"})` }]);
  }
  return chain;
}

/**
 * Line items, when given, are the invoice: their total (quantity × unit amount, exact in base units) must be
 * the amount, so the signed commitment never describes a different sum than the one charged.
 */
function checkLineItems(body: CreateInvoiceInput, token: TokenInfo, amount: bigint | undefined, errors: FieldError[]): void {
  const items = body.lineItems ?? [];
  if (items.length === 0) return;
  let total = 0n;
  let readable = true;
  items.forEach((item, index) => {
    const unit = amountIn(item.unitAmount, token, `lineItems.${index}.unitAmount`, errors, true);
    if (unit === undefined) readable = false;
    else total += unit * BigInt(item.quantity);
  });
  if (readable && amount !== undefined && total !== amount) {
    errors.push({
      field: "lineItems",
      message: `add up to ${formatAmount(total, token.decimals)} ${token.symbol}, not the invoice amount ${formatAmount(amount, token.decimals)} ${token.symbol}`,
    });
  }
}

/** Everything a concrete (signed) EVM invoice is made of, whichever way it was asked for. */
export interface InvoiceDraft {
  chain: ChainRuntime;
  token: TokenInfo;
  amount: bigint;
  /** Chain time the invoice is created at. */
  now: bigint;
  expiresAt: bigint;
  description?: string | null;
  lineItems?: { description: string; quantity: number; unitAmount: string }[];
  customer?: { id?: string; email?: string };
  payer?: Address;
  arbiter?: Address;
  holdSeconds?: number;
  fulfillBy?: bigint;
  metadata?: Record<string, string>;
  paymentLinkId?: string;
  /** The fiat price and its rate; undefined: valued in the merchant's fiat currency when a fresh rate exists. */
  price?: InvoicePrice;
  checkout?: CheckoutFields;
}

export type InvoiceValues = typeof invoices.$inferInsert;

/**
 * The value in the merchant's fiat currency of a token-priced invoice, recorded at creation when a fresh rate
 * exists (statements read it). Never fails the invoice: no rate, no valuation.
 */
async function valuation(deps: ApiDeps, merchant: MerchantRecord, chain: ChainRuntime, token: TokenInfo): Promise<InvoicePrice | undefined> {
  const fiat = merchant.fiatCurrency as FiatCurrency;
  if (!deps.prices || !isFiat(fiat) || !deps.prices.canPrice(chain.id, token.symbol, fiat)) return undefined;
  try {
    return priceRecord(await deps.prices.rate(chain.id, token.symbol, fiat));
  } catch (error) {
    deps.logger.debug({ err: error, chainId: chain.id, currency: token.symbol }, "no valuation for a new invoice");
    return undefined;
  }
}

/** Signs the terms of `draft` with the merchant's operator key: the row to insert (nothing is stored yet). */
export async function prepareInvoice(deps: ApiDeps, merchant: MerchantRecord, draft: InvoiceDraft): Promise<InvoiceValues> {
  const { chain, token } = draft;
  const [registration, maxFeeBps, price] = await Promise.all([
    requireIdentity(deps, merchant, chain.id),
    chain.protocolFeeBps(),
    draft.price ? Promise.resolve(draft.price) : valuation(deps, merchant, chain, token),
  ]);
  const customer = draft.customer?.id !== undefined ? { id: draft.customer.id, ...(draft.customer.email !== undefined ? { email: draft.customer.email } : {}) } : null;
  const details: InvoiceDetails = {
    description: draft.description ?? null,
    lineItems: draft.lineItems ?? [],
    customer,
    metadata: draft.metadata ?? {},
  };
  const id = newId("inv");
  const terms = buildInvoice({
    merchantId: registration.owner.merchantId,
    invoiceId: keccak256(stringToBytes(id)),
    token: token.address,
    amount: draft.amount,
    payer: draft.payer ?? zeroAddress,
    arbiter: draft.arbiter ?? zeroAddress,
    expiresAt: draft.expiresAt,
    holdDuration: draft.holdSeconds ?? deps.config.defaultHoldSeconds,
    fulfillBy: draft.fulfillBy ?? 0n,
    maxFeeBps,
    detailsHash: detailsHash(details),
  });
  const { key, signature } = await signInvoiceAndKey(deps.operator.account(merchant), billingEscrowDomain(chain.id, chain.escrow), terms);
  const deposit = (await chain.depositsSupported()) ? depositAddress(chain.escrow, key) : null;
  return {
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
    maxFeeBps: terms.maxFeeBps,
    detailsHash: terms.detailsHash,
    signature,
    depositAddress: deposit,
    paymentLinkId: draft.paymentLinkId ?? null,
    price: price ?? null,
    checkout: draft.checkout && (draft.checkout.successUrl || draft.checkout.cancelUrl) ? draft.checkout : null,
    description: draft.description ?? null,
    lineItems: draft.lineItems && draft.lineItems.length > 0 ? draft.lineItems : null,
    customerId: draft.customer?.id ?? null,
    customerEmail: draft.customer?.email ?? null,
    metadata: draft.metadata ?? null,
    // Millisecond precision, as shown in responses, so `createdAfter=<createdAt>` excludes this invoice.
    createdAt: new Date(),
  };
}

/** Inserts a prepared invoice in `tx` and returns its stored row and its view (a new invoice: unpaid). */
export async function insertInvoice(deps: ApiDeps, tx: StoreTx, merchant: MerchantRecord, values: InvoiceValues, now: bigint) {
  const head = await deps.chains.get(values.chainId)?.headBlock().catch(() => undefined);
  const [row] = await tx.insert(invoices).values(values).returning();
  return { row, view: invoiceView(row, undefined, { now, head, confirmationsRequired: requiredConfirmations(merchant, row.chainId) }) };
}

const invalid = (field: string, message: string): FieldError => ({ field, message });

/** Largest fiat amount an invoice may be priced at (before conversion). */
export const MAX_FIAT_MINOR = 10n ** 14n; // 1,000,000,000,000.00

/** A fiat amount in minor units (cents), or a field error (at most two decimals). */
export function fiatAmountIn(text: string, field: string, errors: FieldError[], allowZero = false): bigint | undefined {
  if (allowZero && /^0(\.0+)?$/.test(text)) {
    if ((text.split(".")[1] ?? "").length > FIAT_DECIMALS) errors.push(invalid(field, AMOUNT_ERROR_MESSAGES.too_precise(FIAT_DECIMALS)));
    return 0n;
  }
  const parsed = parseAmount(text, FIAT_DECIMALS);
  if (!parsed.ok) {
    errors.push(invalid(field, AMOUNT_ERROR_MESSAGES[parsed.error](FIAT_DECIMALS)));
    return undefined;
  }
  if (parsed.value > MAX_FIAT_MINOR) {
    errors.push(invalid(field, `is too large (at most ${formatFiat(MAX_FIAT_MINOR)})`));
    return undefined;
  }
  return parsed.value;
}

/**
 * A fiat price converted into `token` at the current rate: the base units (rounded up) and the price record,
 * locked until `expiresAt`. Throws `rate-unavailable` (503) when no fresh rate exists.
 */
export async function convertFiat(deps: ApiDeps, chain: ChainRuntime, token: TokenInfo, fiat: FiatCurrency, minor: bigint, expiresAt: bigint): Promise<{ amount: bigint; price: InvoicePrice }> {
  if (!deps.prices) throw problem.rateUnavailable({ chainId: chain.id, pair: `${token.symbol}/${fiat}`, reason: "not_configured", message: "this API has no price source" });
  const reading = await deps.prices.rate(chain.id, token.symbol, fiat);
  const amount = fiatToUnits(minor, reading.rate, token.decimals);
  if (amount > MAX_BASE_UNITS) throw problem.validation([invalid("amount", "is too large once converted")]);
  return { amount, price: priceRecord(reading, { amount: formatFiat(minor), lockedUntil: expiresAt }) };
}

/** Line items of a fiat invoice: in the fiat currency, adding up to its amount in cents. */
function checkFiatLineItems(body: CreateInvoiceInput, fiat: FiatCurrency, minor: bigint | undefined, errors: FieldError[]): void {
  const items = body.lineItems ?? [];
  if (items.length === 0) return;
  let total = 0n;
  let readable = true;
  items.forEach((item, index) => {
    const unit = fiatAmountIn(item.unitAmount, `lineItems.${index}.unitAmount`, errors, true);
    if (unit === undefined) readable = false;
    else total += unit * BigInt(item.quantity);
  });
  if (readable && minor !== undefined && total !== minor) {
    errors.push(invalid("lineItems", `add up to ${formatFiat(total)} ${fiat}, not the invoice amount ${formatFiat(minor)} ${fiat} (line items of a fiat invoice are in ${fiat})`));
  }
}

/**
 * The chain whose feeds price BTC in `fiat` (BTC has no EVM chain of its own): `chainId` when given, else the
 * first served chain with the feeds; undefined when none has them.
 */
export function btcRateChain(deps: ApiDeps, fiat: FiatCurrency, chainId?: number): number | undefined {
  if (chainId !== undefined) return chainId;
  return [...deps.chains.keys()].find((id) => deps.prices?.canPrice(id, "BTC", fiat));
}

/** A fiat amount in satoshis at the current BTC rate, rounded up, with its record locked until `expiresAt`. */
export async function convertFiatToBtc(deps: ApiDeps, fiat: FiatCurrency, minor: bigint, expiresAt: bigint, chainId?: number): Promise<{ amountSats: bigint; price: InvoicePrice }> {
  const rateChain = btcRateChain(deps, fiat, chainId);
  if (rateChain === undefined || !deps.prices) {
    throw problem.rateUnavailable({ chainId: chainId ?? 0, pair: `BTC/${fiat}`, reason: "not_configured", message: "no chain served by this API has a BTC/USD price feed (see docs/PRICES.md)" });
  }
  const reading = await deps.prices.rate(rateChain, "BTC", fiat);
  return { amountSats: fiatToUnits(minor, reading.rate, BTC_DECIMALS), price: priceRecord(reading, { amount: formatFiat(minor), lockedUntil: expiresAt }) };
}

/** A BTC invoice's valuation in the merchant's fiat currency (never fails the invoice). */
async function btcValuation(deps: ApiDeps, merchant: MerchantRecord): Promise<InvoicePrice | undefined> {
  // A valuation never stands in the way of an invoice: no price source, no fiat currency, no rate → none.
  if (!deps.prices || typeof merchant.fiatCurrency !== "string") return undefined;
  const fiat = merchant.fiatCurrency as FiatCurrency;
  const chainId = isFiat(fiat) ? btcRateChain(deps, fiat) : undefined;
  if (chainId === undefined) return undefined;
  return deps.prices.rate(chainId, "BTC", fiat).then((reading) => priceRecord(reading), () => undefined);
}

/** USD/EUR/CNY paid in BTC: converted at the BTC rate, locked for the merchant's window, a BTC invoice. */
async function createFiatBtcInvoice(deps: ApiDeps, merchant: MerchantRecord, body: CreateInvoiceInput, fiat: FiatCurrency, remember: Remember | undefined): Promise<RememberedResponse> {
  if (!deps.config.bitcoin) throw problem.validation([invalid("payCurrency", "BTC is not enabled on this API (its operator sets BITCOIN_ESPLORA_URL or BITCOIN_RPC_URL)")]);
  if (body.chainId !== undefined && !deps.chains.has(body.chainId)) throw problem.validation([invalid("chainId", `is not a chain this API serves (it serves ${[...deps.chains.keys()].join(", ")})`)]);
  const errors: FieldError[] = [];
  const minor = fiatAmountIn(body.amount, "amount", errors);
  checkFiatLineItems(body, fiat, minor, errors);
  if (errors.length > 0 || minor === undefined) throw problem.validation(errors);
  const { now } = await bitcoinChainState(deps.store.db, deps.config.bitcoin.network);
  const lock = BigInt(merchant.rateLockSeconds);
  const expiresAt = now + (body.expiresInSeconds !== undefined && BigInt(body.expiresInSeconds) < lock ? BigInt(body.expiresInSeconds) : lock);
  const { amountSats, price } = await convertFiatToBtc(deps, fiat, minor, expiresAt, body.chainId);
  // chainId named the chain whose feeds priced it; the BTC invoice itself has none.
  const { chainId: _rateChain, payCurrency: _pay, ...rest } = body;
  return createBtcInvoice(deps, merchant, { ...rest, currency: "BTC", amount: formatAmount(amountSats, BTC_DECIMALS) }, remember, { amountSats, expiresAt, price });
}

export async function createInvoice(deps: ApiDeps, merchant: MerchantRecord, body: CreateInvoiceInput, remember: Remember | undefined): Promise<RememberedResponse> {
  const fiat = isFiat(body.currency) ? (body.currency.trim().toUpperCase() as FiatCurrency) : undefined;
  if (!fiat && body.payCurrency !== undefined) throw problem.validation([invalid("payCurrency", "is only for fiat prices (currency USD, EUR or CNY); leave it out")]);
  if (isBitcoin(body.currency)) return createBtcInvoice(deps, merchant, body, remember, { price: deps.config.bitcoin ? await btcValuation(deps, merchant) : undefined });
  if (fiat && body.payCurrency !== undefined && isBitcoin(body.payCurrency)) return createFiatBtcInvoice(deps, merchant, body, fiat, remember);
  const chain = invoiceChain(deps, body.chainId);
  if (fiat && body.payCurrency === undefined) {
    throw problem.validation(
      [invalid("payCurrency", `is required with a fiat currency (${fiat}): name the currency the customer pays in (e.g. "ETH" or "USDC"), converted at the current rate — or create a single-use payment link (POST /v1/payment-links with "singleUse": true) so the customer picks it on the checkout`)],
    );
  }
  const token = await resolveCurrency(chain, fiat ? body.payCurrency! : body.currency).catch((error: unknown) => {
    if (fiat && error instanceof ProblemError && error.status === 422) throw problem.validation(((error.extensions.errors as FieldError[]) ?? []).map((entry) => ({ ...entry, field: "payCurrency" })));
    throw error;
  });
  const errors: FieldError[] = [];
  let amount: bigint | undefined;
  let minor: bigint | undefined;
  if (fiat) {
    minor = fiatAmountIn(body.amount, "amount", errors);
    checkFiatLineItems(body, fiat, minor, errors);
  } else {
    amount = amountIn(body.amount, token, "amount", errors);
    checkLineItems(body, token, amount, errors);
  }
  const now = await chainNow(chain);
  let fulfillBy = 0n;
  if (body.fulfillBy !== undefined) {
    fulfillBy = BigInt(Math.floor(Date.parse(body.fulfillBy) / 1000));
    if (fulfillBy <= now) errors.push({ field: "fulfillBy", message: `must be in the future (it is now ${iso(now)} on chain ${chain.id})` });
  }
  if (body.payer === zeroAddress) errors.push({ field: "payer", message: "must not be the zero address (omit it to let anyone pay)" });
  if (body.arbiter === zeroAddress) errors.push({ field: "arbiter", message: "must not be the zero address (omit it for no arbiter)" });
  if (errors.length > 0 || (amount === undefined && minor === undefined)) throw problem.validation(errors);

  let expiresIn = BigInt(body.expiresInSeconds ?? deps.config.defaultExpirySeconds);
  let price: InvoicePrice | undefined;
  if (fiat) {
    // The rate is locked for the merchant's window: the invoice expires with it (or sooner when asked).
    const lock = BigInt(merchant.rateLockSeconds);
    expiresIn = body.expiresInSeconds !== undefined && BigInt(body.expiresInSeconds) < lock ? BigInt(body.expiresInSeconds) : lock;
    const converted = await convertFiat(deps, chain, token, fiat, minor!, now + expiresIn);
    amount = converted.amount;
    price = converted.price;
  }
  const values = await prepareInvoice(deps, merchant, {
    chain,
    token,
    amount: amount!,
    now,
    expiresAt: now + expiresIn,
    description: body.description,
    lineItems: body.lineItems,
    customer: body.customer,
    payer: body.payer as Address | undefined,
    arbiter: body.arbiter as Address | undefined,
    holdSeconds: body.holdSeconds,
    fulfillBy,
    metadata: body.metadata,
    price,
    checkout: { ...(body.successUrl ? { successUrl: body.successUrl } : {}), ...(body.cancelUrl ? { cancelUrl: body.cancelUrl } : {}) },
  });
  return deps.store.db.transaction(async (tx) => {
    const { view } = await insertInvoice(deps, tx, merchant, values, now);
    const response = { status: 201, body: JSON.stringify(view) };
    await remember?.(tx, response);
    return response;
  });
}
