/**
 * Invoice creation: validates what needs the chain (currency and its precision, dates, the merchant's on-chain
 * identity, the protocol fee), signs the terms with the merchant's operator key and stores the invoice with
 * its idempotent response in one transaction.
 */
import { requiredConfirmations } from "../webhooks/confirmations";
import { keccak256, stringToBytes, zeroAddress } from "viem";
import { billingEscrowDomain, buildInvoice, depositAddress, signInvoiceAndKey } from "../../contracts/invoice";
import { newId } from "../auth";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { ApiDeps, MerchantRecord } from "../env";
import type { Remember, RememberedResponse } from "../idempotency";
import { requireIdentity } from "../merchants/identity";
import { AMOUNT_ERROR_MESSAGES, formatAmount, parseAmount } from "../money";
import { problem, type FieldError } from "../problems";
import { invoices } from "../store/schema";
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

export async function createInvoice(deps: ApiDeps, merchant: MerchantRecord, body: CreateInvoiceInput, remember: Remember | undefined): Promise<RememberedResponse> {
  const chain = invoiceChain(deps, body.chainId);
  const token = await resolveCurrency(chain, body.currency);
  const errors: FieldError[] = [];
  const amount = amountIn(body.amount, token, "amount", errors);
  checkLineItems(body, token, amount, errors);
  const now = await chainNow(chain);
  let fulfillBy = 0n;
  if (body.fulfillBy !== undefined) {
    fulfillBy = BigInt(Math.floor(Date.parse(body.fulfillBy) / 1000));
    if (fulfillBy <= now) errors.push({ field: "fulfillBy", message: `must be in the future (it is now ${iso(now)} on chain ${chain.id})` });
  }
  if (body.payer === zeroAddress) errors.push({ field: "payer", message: "must not be the zero address (omit it to let anyone pay)" });
  if (body.arbiter === zeroAddress) errors.push({ field: "arbiter", message: "must not be the zero address (omit it for no arbiter)" });
  if (errors.length > 0 || amount === undefined) throw problem.validation(errors);

  const registration = await requireIdentity(deps, merchant, chain.id);
  const maxFeeBps = await chain.protocolFeeBps();

  const details: InvoiceDetails = {
    description: body.description ?? null,
    lineItems: body.lineItems ?? [],
    customer: body.customer ? { id: body.customer.id, ...(body.customer.email !== undefined ? { email: body.customer.email } : {}) } : null,
    metadata: body.metadata ?? {},
  };
  const id = newId("inv");
  const terms = buildInvoice({
    merchantId: registration.owner.merchantId,
    invoiceId: keccak256(stringToBytes(id)),
    token: token.address,
    amount,
    payer: body.payer ?? zeroAddress,
    arbiter: body.arbiter ?? zeroAddress,
    expiresAt: now + BigInt(body.expiresInSeconds ?? deps.config.defaultExpirySeconds),
    holdDuration: body.holdSeconds ?? deps.config.defaultHoldSeconds,
    fulfillBy,
    maxFeeBps,
    detailsHash: detailsHash(details),
  });
  const { key, signature } = await signInvoiceAndKey(deps.operator.account(merchant), billingEscrowDomain(chain.id, chain.escrow), terms);
  const head = await chain.headBlock().catch(() => undefined);
  const deposit = (await chain.depositsSupported()) ? depositAddress(chain.escrow, key) : null;

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
        maxFeeBps: terms.maxFeeBps,
        detailsHash: terms.detailsHash,
        signature,
        depositAddress: deposit,
        description: body.description ?? null,
        lineItems: body.lineItems ?? null,
        customerId: body.customer?.id ?? null,
        customerEmail: body.customer?.email ?? null,
        metadata: body.metadata ?? null,
        // Millisecond precision, as shown in responses, so `createdAfter=<createdAt>` excludes this invoice.
        createdAt: new Date(),
      })
      .returning();
    const response = { status: 201, body: JSON.stringify(invoiceView(row, undefined, { now, head, confirmationsRequired: requiredConfirmations(merchant, row.chainId) })) };
    await remember?.(tx, response);
    return response;
  });
}
