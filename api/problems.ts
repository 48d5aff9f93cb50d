/**
 * RFC 9457 problem details: every error the API returns is `application/problem+json` with a `type` naming
 * the problem, a human `title` and `detail`, the `status`, the request id (`instance`), and for validation
 * errors the list of fields that were wrong and why.
 *
 * `PROBLEM_TYPES` is the catalogue of every `type` the API can answer: the code can only throw a slug listed
 * here (the type system checks it), each type's URI (`/problems/<slug>`) serves the page that explains it, and
 * docs/API.md's table is checked against it by a test.
 */
import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { formatEther } from "viem";

export interface FieldError {
  /** Dotted path of the offending field, e.g. `lineItems.0.unitAmount`. */
  field: string;
  message: string;
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail?: string;
  instance?: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

interface ProblemType {
  status: ContentfulStatusCode;
  title: string;
  /** What happened and what to do next: the page behind the type URI. */
  explanation: string;
}

export const PROBLEM_TYPES = {
  "malformed-request": { status: 400, title: "Malformed request", explanation: "The request could not be read: the body is not valid JSON, or a path, query or body value contains a character the API never accepts (a NUL byte). Fix the request; retrying it unchanged fails the same way." },
  "idempotency-key-missing": { status: 400, title: "Idempotency-Key required", explanation: "This operation needs an `Idempotency-Key` header: a unique value per operation (a UUID or your order id). Send the same value when you retry, so a retry never creates a second resource." },
  "idempotency-key-invalid": { status: 400, title: "Invalid Idempotency-Key", explanation: "The `Idempotency-Key` header must be 1 to 255 characters." },
  unauthorized: { status: 401, title: "Missing or invalid API key", explanation: "Send `Authorization: Bearer <key>` with a key that exists and was not revoked. Keys are shown once when created; create a new one if it is lost." },
  forbidden: { status: 403, title: "Not allowed", explanation: "The key is valid but may not do this: it lacks the scope the operation needs (the detail names it), or it is the admin key, which only creates merchants. Use a merchant key with that scope." },
  "not-found": { status: 404, title: "Not found", explanation: "No such resource for this merchant. Resources of other merchants answer the same way, as if they did not exist." },
  "method-not-allowed": { status: 405, title: "Method not allowed", explanation: "The path exists but not with this method. The `Allow` header lists the methods it accepts." },
  "idempotency-key-reused": { status: 409, title: "Idempotency key reused", explanation: "The `Idempotency-Key` was already used with a different request (method, path or body) by this merchant in the last 24 hours. Use a new key for a new request; send the identical request to get the first response again." },
  "idempotency-request-in-progress": { status: 409, title: "Request in progress", explanation: "A request with this `Idempotency-Key` is still being processed. Retry shortly with the same key: you will get its response." },
  "merchant-not-registered": { status: 409, title: "Merchant not registered on this chain", explanation: "The merchant has no on-chain record on this chain owned by its owner wallet and naming its operator key (or it is not indexed yet). Send the `registrationTransaction` listed for the chain in `GET /v1/merchants/me` from the owner wallet, wait until `registered` is true, then retry." },
  "invoice-not-open": { status: 409, title: "Invoice not open", explanation: "Only an open invoice (unpaid, not expired, not void) can be voided. A paid invoice is refunded instead; an expired one can no longer be paid, so there is nothing to void." },
  "invoice-not-paid": { status: 409, title: "Invoice not paid", explanation: "The operation needs a paid invoice (money held in the escrow), and this one has not been paid (or its payment is not indexed yet)." },
  "invoice-not-held": { status: 409, title: "Invoice no longer held", explanation: "The invoice's payment is no longer held in the escrow: it was released or refunded." },
  "invoice-not-refundable": { status: 409, title: "Nothing left to refund", explanation: "The payment is no longer held in the escrow (it was released or fully refunded), so nothing can be refunded through the escrow." },
  "refund-exceeds-held": { status: 409, title: "Refund larger than what is held", explanation: "A refund can be at most what the escrow still holds for the invoice (`heldAmount`). Refund less, or nothing." },
  "already-fulfilled": { status: 409, title: "Already fulfilled", explanation: "The invoice was already marked fulfilled." },
  "no-fulfillment-deadline": { status: 409, title: "Invoice has no fulfilment deadline", explanation: "Only invoices created with `fulfillBy` can be marked fulfilled; without a deadline there is nothing to mark." },
  "fulfillment-deadline-passed": { status: 409, title: "Fulfilment deadline passed", explanation: "The invoice had to be marked fulfilled by its `fulfillBy`. After that the payer (or anyone) may take a full refund, and the merchant can no longer mark it." },
  "hold-not-ended": { status: 409, title: "Hold not over yet", explanation: "A payment can be released once its hold is over (`releaseAt`); before that only the payer may release it. Retry after `releaseAt` (or let the keeper release it)." },
  "invoice-disputed": { status: 409, title: "Invoice disputed", explanation: "The payer disputed the payment: it cannot be released while the dispute is open. Refund it, wait for the arbiter's ruling, or for the payer to withdraw the dispute." },
  "not-fulfilled": { status: 409, title: "Invoice not fulfilled", explanation: "The invoice was created with `fulfillBy`: it can be released only once it was marked fulfilled (`POST /v1/invoices/{id}/fulfill`)." },
  "subscription-not-cancelable": { status: 409, title: "Subscription already ended", explanation: "Only trialing, active or past-due subscriptions can be canceled; this one is canceled or lapsed already." },
  "plan-not-changeable": { status: 409, title: "Plan cannot change like this", explanation: "The contract refused the plan change (the detail names its reason)." },
  "api-key-limit": { status: 409, title: "Too many API keys", explanation: "A merchant may hold a limited number of active API keys. Revoke keys you no longer use, then create the new one." },
  "webhook-endpoint-limit": { status: 409, title: "Too many webhook endpoints", explanation: "A merchant may have a limited number of webhook endpoints. Delete one you no longer use (one endpoint can take every event type), then add the new one." },
  "chain-rejected": { status: 409, title: "The contract refused the operation", explanation: "The contract would revert (or reverted) this operation in the chain's current state; `reason` names the contract's error. Nothing was changed. Read the resource again: its state has usually moved on (paid, refunded, canceled) since you last read it." },
  "bitcoin-account-missing": { status: 409, title: "No Bitcoin account key", explanation: "BTC invoices are paid to addresses derived from your Bitcoin account's public key, and none is registered. Register it with `PUT /v1/merchants/me/bitcoin` (an xpub/zpub, tpub/vpub on test networks, or a `wpkh()`/`tr()` descriptor: never a private key), then retry." },
  "bitcoin-not-enabled": { status: 409, title: "Bitcoin is not enabled on this API", explanation: "This API runs without a Bitcoin chain source, so it has no BTC invoices, accounts or refunds. Its operator turns Bitcoin on with BITCOIN_NETWORK and BITCOIN_ESPLORA_URL (or BITCOIN_RPC_URL); `npm start` runs a local simulated regtest chain unless BITCOIN_REGTEST=false." },
  "bitcoin-gap-limit": { status: 409, title: "Too many unpaid Bitcoin addresses in a row", explanation: "A wallet restoring your account key stops scanning after `gapLimit` unused addresses in a row, so chainbill never hands out more than that many unpaid addresses ahead of the last paid one. Wait until an open invoice is paid or an expired one's address can be reused, or raise the gap limit with `PUT /v1/merchants/me/bitcoin` (and in your wallet)." },
  "bitcoin-no-escrow": { status: 409, title: "Not for a Bitcoin invoice", explanation: "Bitcoin payments go straight to the merchant's wallet: no escrow holds them, so void, release, fulfil and on-chain refunds do not apply. A BTC invoice that should not be paid simply expires; a refund is a PSBT you sign (`POST /v1/invoices/{id}/bitcoin-refund`)." },
  "refund-address-missing": { status: 409, title: "No refund address", explanation: "A refund goes to an address the customer gives (a Bitcoin invoice, or an EVM invoice paid to its deposit address from an exchange). Send it as `address` in this request (Bitcoin), set it with `PUT /v1/invoices/{id}/refund-address`, or send the customer the invoice's refund link to fill in (Bitcoin), then retry." },
  "invoice-no-deposit-address": { status: 409, title: "No deposit address", explanation: "This invoice's escrow was deployed before deposit addresses existed: it can only be paid from a wallet, and refunds go to that wallet." },
  "refund-address-locked": { status: 409, title: "Refund address already used", explanation: "A refund of this invoice was already prepared for the address on file, so it can no longer be changed through a refund link. Ask the merchant: they can set another address and prepare a new refund." },
  "payment-link-busy": { status: 409, title: "Payment link already has an open invoice", explanation: "This single-use payment link already has an open invoice in another currency, whose rate is locked until it expires (`expiresAt`). Pay that invoice, or wait until it expires and use the link again. The merchant can void the open invoice to free the link at once." },
  "payment-link-inactive": { status: 410, title: "Payment link deactivated", explanation: "The merchant deactivated this payment link: it creates no more invoices. Invoices created from it before keep their terms. Ask the merchant for a current link." },
  "payment-link-used": { status: 410, title: "Payment link already paid", explanation: "This single-use payment link was already paid: it creates no more invoices. Ask the merchant if you need to pay again." },
  "refund-link-invalid": { status: 404, title: "Refund link not valid", explanation: "This refund link is not one the merchant issued, or it has expired. Ask the merchant for a new link." },
  "body-too-large": { status: 413, title: "Request body too large", explanation: "The body is larger than the server accepts (`BODY_LIMIT_BYTES`, 64 KiB by default). The connection is closed after this answer." },
  "unsupported-media-type": { status: 415, title: "Unsupported media type", explanation: "Send request bodies as JSON with `Content-Type: application/json`." },
  "validation-error": { status: 422, title: "Invalid request", explanation: "One or more fields are invalid; `errors` lists each one by dotted path with the reason. Nothing was changed." },
  "rate-limited": { status: 429, title: "Too many requests", explanation: "Over the request rate allowed per merchant (`RATE_LIMIT_PER_MINUTE`) or per client address before authentication. `Retry-After` says when to retry." },
  "internal-error": { status: 500, title: "Internal error", explanation: "Something failed on our side. The `instance` (request id) identifies it in the server's log; nothing you sent is at fault." },
  unavailable: { status: 503, title: "Temporarily unavailable", explanation: "A dependency the operation needs is not available right now. Retry later." },
  "chain-unavailable": { status: 503, title: "Chain node unreachable", explanation: "The node of the chain could not be reached or answered with an error, so nothing was sent. Retry later; the server's log has the node's error under the request id." },
  "bitcoin-source-unavailable": { status: 503, title: "Bitcoin chain source unreachable", explanation: "The Bitcoin chain source (Esplora or Bitcoin Core) could not be reached, so the operation that needs it (e.g. a fee rate for a refund) could not be done. Nothing was changed; retry later." },
  "rate-unavailable": { status: 503, title: "No fresh exchange rate", explanation: "A price in fiat (USD, EUR, CNY) is converted at a Chainlink feed's rate, and no rate passing the checks exists right now for the pair (`pair`) on the chain (`chainId`): the feed is not configured, unreachable, stale (older than its heartbeat plus 60 s), incomplete or non-positive, jumped more than 10% within 10 minutes, or a stablecoin left its peg band (±2%). `reason` and `detail` say which. Nothing was created. Retry later, pay in another currency, or price the invoice in a currency paid directly (see docs/PRICES.md)." },
  "operator-needs-gas": { status: 503, title: "Operator account needs ETH for gas", explanation: "The merchant's operator account sends this transaction and does not hold enough ETH to pay its gas. Send ETH to the `operator` address on that chain (the problem gives its balance and what the transaction needs), then retry." },
} as const satisfies Record<string, ProblemType>;

export type ProblemSlug = keyof typeof PROBLEM_TYPES;

const TYPE_BASE = "/problems/";

/** An error that becomes a problem response. Throw it from any handler or middleware. */
export class ProblemError extends Error {
  readonly status: ContentfulStatusCode;
  readonly title: string;

  constructor(
    readonly slug: ProblemSlug,
    readonly detail?: string,
    readonly extensions: Record<string, unknown> = {},
    /** Extra response headers (e.g. `Allow`, `Retry-After`, `WWW-Authenticate`). */
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? PROBLEM_TYPES[slug].title);
    this.status = PROBLEM_TYPES[slug].status;
    this.title = PROBLEM_TYPES[slug].title;
  }

  toProblem(instance?: string): Problem {
    return {
      type: `${TYPE_BASE}${this.slug}`,
      title: this.title,
      status: this.status,
      ...(this.detail ? { detail: this.detail } : {}),
      ...(instance ? { instance } : {}),
      ...this.extensions,
    };
  }
}

export const problem = {
  validation: (errors: FieldError[], detail = "The request has invalid fields; see `errors`.") =>
    new ProblemError("validation-error", detail, { errors }),
  malformed: (detail: string) => new ProblemError("malformed-request", detail),
  unauthorized: (detail = "Send an API key as `Authorization: Bearer <key>`.") =>
    new ProblemError("unauthorized", detail, {}, { "WWW-Authenticate": 'Bearer realm="chainbill"' }),
  forbidden: (detail: string) => new ProblemError("forbidden", detail),
  notFound: (what: string) => new ProblemError("not-found", `${what} does not exist.`),
  methodNotAllowed: (method: string, path: string, allowed: string[]) =>
    new ProblemError("method-not-allowed", `${path} does not accept ${method}; it accepts ${allowed.join(", ")}.`, { allow: allowed }, { Allow: allowed.join(", ") }),
  conflict: (slug: ProblemSlug, detail: string, extensions?: Record<string, unknown>) => new ProblemError(slug, detail, extensions),
  tooLarge: (limit: number) =>
    new ProblemError("body-too-large", `The body must be at most ${limit} bytes.`, {}, { Connection: "close" }),
  unsupportedMediaType: () => new ProblemError("unsupported-media-type", "Send the body as JSON with `Content-Type: application/json`."),
  rateLimited: (retryAfterSeconds: number, scope: "merchant" | "client") =>
    new ProblemError(
      "rate-limited",
      `Too many requests from this ${scope === "merchant" ? "merchant" : "client address"}: retry after ${retryAfterSeconds} s.`,
      { retryAfter: retryAfterSeconds },
      { "Retry-After": String(retryAfterSeconds) },
    ),
  unavailable: (detail: string) => new ProblemError("unavailable", detail),
  chainUnavailable: (chainId: number) =>
    new ProblemError("chain-unavailable", `The node of chain ${chainId} could not be reached or refused the request; nothing was sent. Retry later.`, { chainId }),
  chainRejected: (action: string, reason: string) =>
    new ProblemError("chain-rejected", `The contract refuses to ${action}: ${reason}. Nothing was changed.`, { reason }),
  rateUnavailable: (details: { chainId: number; pair: string; reason: string; feed?: string; message: string }) =>
    new ProblemError("rate-unavailable", `No fresh ${details.pair} rate on chain ${details.chainId}: ${details.message}.`, {
      chainId: details.chainId,
      pair: details.pair,
      reason: details.reason,
      ...(details.feed ? { feed: details.feed } : {}),
    }),
  operatorNeedsGas: (details: { operator: string; chainId: number; balanceWei: bigint; neededWei: bigint | undefined }) =>
    new ProblemError(
      "operator-needs-gas",
      `The merchant's operator ${details.operator} holds ${formatEther(details.balanceWei)} ETH on chain ${details.chainId}` +
        (details.neededWei !== undefined ? `, and this transaction needs up to ${formatEther(details.neededWei)} ETH of gas` : ", not enough for this transaction's gas") +
        `: send ETH to ${details.operator}, then retry.`,
      {
        operator: details.operator,
        chainId: details.chainId,
        balanceWei: details.balanceWei.toString(),
        ...(details.neededWei !== undefined ? { neededWei: details.neededWei.toString() } : {}),
      },
    ),
};

export function problemResponse(c: Context, error: ProblemError): Response {
  const body = error.toProblem(c.get("requestId"));
  return c.body(JSON.stringify(body), error.status, { ...error.headers, "content-type": "application/problem+json" });
}
