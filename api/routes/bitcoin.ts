/**
 * Bitcoin routes: the merchant's account key (`/v1/merchants/me/bitcoin`), and for BTC invoices the customer's
 * refund address and refunds as unsigned PSBTs (the merchant signs them in the wallet that holds the keys).
 * BTC invoices themselves are created, read and listed through the invoice routes (`currency: "BTC"`).
 */
import { OpenAPIHono, createRoute, z } from "@hono/zod-openapi";
import { currentMerchant, requireScope } from "../auth";
import type { ApiDeps, AppEnv } from "../env";
import { idempotent } from "../idempotency";
import { validationHook } from "../middleware";
import { problem } from "../problems";
import { BEARER, IdempotencyHeaders, OptionalIdempotencyHeaders, problemResponses } from "../schemas";
import { InvoiceIdParams, InvoiceSchema } from "../invoices/schemas";
import { receiveAddress } from "../bitcoin/addresses";
import { loadBtcInvoice, viewBtcInvoices } from "../bitcoin/invoices";
import { setEvmRefundAddress } from "../invoices/actions";
import { refundBtcInvoice, setRefundAddress } from "../bitcoin/refunds";
import { activeWallet, CAIP2, CONFIRMATION_CHOICES, registerWallet, walletKey, type WalletRow } from "../bitcoin/wallets";
import type { BitcoinNetwork } from "../bitcoin/keys";
import { DEFAULT_LINK_SECONDS, refundLinkToken } from "../bitcoin/refund-links";

const WalletSchema = z
  .object({
    network: z.string().openapi({ example: "bip122:000000000019d6689c085ae165831e93" }),
    networkName: z.enum(["mainnet", "testnet", "signet", "regtest"]),
    script: z.enum(["p2wpkh", "p2tr"]).openapi({ description: "p2wpkh: BIP84 native segwit (bc1q…); p2tr: BIP86 taproot (bc1p…)" }),
    descriptor: z.string().openapi({ description: "The receive branch as a public output descriptor with its BIP380 checksum" }),
    firstAddress: z.string().openapi({ description: "Receive address 0/0: check that your wallet shows the same one" }),
    gapLimit: z.number().int(),
    confirmations: z.number().int().openapi({ description: "Confirmations after which a payment is `invoice.confirmed` (0, 1, 2 or 6)" }),
    createdAt: z.string(),
  })
  .openapi("BitcoinAccount");

const WalletBody = z
  .object({
    key: z.string().min(1).max(1_000).openapi({
      description: "Account public key: xpub/zpub (mainnet), tpub/vpub (testnet, signet, regtest), or a `wpkh(...)`/`tr(...)` descriptor with a key origin and `/0/*`. Never a private key: one is refused and never stored",
      example: "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs",
    }),
    script: z.enum(["p2wpkh", "p2tr"]).optional().openapi({ description: "For an xpub/tpub: which addresses (default p2wpkh, BIP84); a zpub/vpub is p2wpkh, a descriptor says itself" }),
    gapLimit: z.number().int().min(1).max(1_000).optional().openapi({ description: "Unpaid addresses allowed in a row (default 20, what wallets scan)" }),
    confirmations: z
      .number()
      .int()
      .refine((value) => (CONFIRMATION_CHOICES as readonly number[]).includes(value), { message: "must be 0, 1, 2 or 6" })
      .optional(),
  })
  .strict()
  .openapi("BitcoinAccountInput");

const RefundBtcBody = z
  .object({
    address: z.string().min(1).max(100).optional().openapi({ description: "The customer's refund address (default: the invoice's `refundAddress`)" }),
    amount: z.string().max(64).optional().openapi({ description: "BTC to refund (default: everything received, minus the network fee)", example: "0.001" }),
    feeRate: z.number().int().min(1).max(10_000).optional().openapi({ description: "sat/vB (default: the chain source's estimate for 6 blocks)" }),
  })
  .strict()
  .openapi("BitcoinRefundInput");

const RefundPsbtSchema = z
  .object({
    refundId: z.string(),
    psbt: z.string().openapi({ description: "Unsigned PSBT (BIP174), base64: import it into the wallet holding the account's keys, sign, broadcast" }),
    txid: z.string().openapi({ description: "The transaction's id once signed (segwit: signatures do not change it); the watcher recognises it" }),
    destination: z.string(),
    amountSats: z.string(),
    feeSats: z.string(),
    feeRate: z.number(),
    vsize: z.number().int(),
    changeSats: z.string(),
    changeAddress: z.string().nullable(),
    invoice: InvoiceSchema,
  })
  .openapi("BitcoinRefund");

function walletView(wallet: WalletRow) {
  return {
    network: CAIP2[wallet.network as BitcoinNetwork],
    networkName: wallet.network as BitcoinNetwork,
    script: wallet.script as "p2wpkh" | "p2tr",
    descriptor: wallet.descriptor,
    firstAddress: receiveAddress(walletKey(wallet), 0).address,
    gapLimit: wallet.gapLimit,
    confirmations: wallet.confirmations,
    createdAt: wallet.createdAt.toISOString(),
  };
}

export function bitcoinRoutes(deps: ApiDeps) {
  const app = new OpenAPIHono<AppEnv>({ defaultHook: validationHook });
  const optional = idempotent(deps.store.db, { required: false });
  const required = idempotent(deps.store.db, { required: true });
  const enabled = () => {
    if (!deps.config.bitcoin) {
      throw problem.conflict("bitcoin-not-enabled", "Bitcoin is not enabled on this API: its operator sets BITCOIN_ESPLORA_URL or BITCOIN_RPC_URL (and BITCOIN_NETWORK) to turn it on.");
    }
    return deps.config.bitcoin;
  };

  const putWallet = createRoute({
    method: "put",
    path: "/merchants/me/bitcoin",
    tags: ["Bitcoin"],
    summary: "Register the Bitcoin account BTC invoices are paid to",
    description:
      "Each BTC invoice gets its own receive address derived from this public key, so payments arrive straight in your wallet; chainbill never holds a private key (one sent here is refused and not stored or logged). Registering another key retires the previous account (its invoices stay watched). Check `firstAddress` against your wallet's first receive address.",
    security: BEARER,
    middleware: [requireScope("merchant:write"), optional] as const,
    request: { headers: OptionalIdempotencyHeaders, body: { required: true, content: { "application/json": { schema: WalletBody } } } },
    responses: { 200: { description: "The account", content: { "application/json": { schema: WalletSchema } } }, ...problemResponses(400, 401, 403, 409, 415, 422, 429) },
  });
  app.openapi(putWallet, async (c) => {
    const config = enabled();
    const wallet = await registerWallet(deps.store.db, config, currentMerchant(c).id, c.req.valid("json"));
    return c.json(walletView(wallet), 200);
  });

  const getWallet = createRoute({
    method: "get",
    path: "/merchants/me/bitcoin",
    tags: ["Bitcoin"],
    summary: "The Bitcoin account BTC invoices are paid to",
    security: BEARER,
    middleware: [requireScope("merchant:read")] as const,
    responses: { 200: { description: "The account", content: { "application/json": { schema: WalletSchema } } }, ...problemResponses(401, 403, 404, 409, 429) },
  });
  app.openapi(getWallet, async (c) => {
    enabled();
    const wallet = await activeWallet(deps.store.db, currentMerchant(c).id);
    if (!wallet) throw problem.notFound("A Bitcoin account (register one with PUT /v1/merchants/me/bitcoin)");
    return c.json(walletView(wallet), 200);
  });

  const putRefundAddress = createRoute({
    method: "put",
    path: "/invoices/{id}/refund-address",
    tags: ["Bitcoin"],
    summary: "Set an invoice's refund address (the customer's)",
    description:
      "BTC: where a refund PSBT pays (changeable until a refund is prepared). EVM: where money that arrived at the invoice's deposit address goes back, and the payer of a deposit payment made from an exchange (refunds, disputes); written on-chain with the operator key (`setRefundAddress`), once: 409 `refund-address-locked` after that.",
    security: BEARER,
    middleware: [requireScope("invoices:write"), optional] as const,
    request: {
      params: InvoiceIdParams,
      headers: OptionalIdempotencyHeaders,
      body: { required: true, content: { "application/json": { schema: z.object({ address: z.string().min(1).max(100) }).strict().openapi("RefundAddressInput") } } },
    },
    responses: { 200: { description: "The invoice", content: { "application/json": { schema: InvoiceSchema } } }, ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429) },
  });
  app.openapi(putRefundAddress, async (c) => {
    const merchant = currentMerchant(c);
    const row = await loadBtcInvoice(deps.store.db, merchant.id, c.req.valid("param").id);
    if (!row) {
      // An EVM invoice: the refund address of what arrived at its deposit address, written on-chain.
      const evm = await deps.invoiceRows.load(merchant, c.req.valid("param").id);
      const result = await setEvmRefundAddress(deps, merchant, evm, c.req.valid("json").address, c.get("requestId"));
      return c.json(result.invoice, 200);
    }
    const config = enabled();
    const updated = await setRefundAddress(deps.store.db, config.network, row, c.req.valid("json").address);
    return c.json((await viewBtcInvoices(deps.store.db, merchant, [updated])).get(updated.id)!, 200);
  });

  const refundLink = createRoute({
    method: "post",
    path: "/invoices/{id}/refund-link",
    tags: ["Bitcoin"],
    summary: "A link for the customer to give their refund address",
    description:
      "For a BTC invoice: a token (and its path on this API) that lets whoever holds it read what the invoice is and set its refund address — `GET` / `PUT /refund-links/{token}`, no API key — until a refund is prepared or the link expires. Send it to the customer (or build your own page on those two calls). The change is in the audit log as the customer's.",
    security: BEARER,
    middleware: [requireScope("invoices:write"), optional] as const,
    request: {
      params: InvoiceIdParams,
      headers: OptionalIdempotencyHeaders,
      body: {
        required: false,
        content: { "application/json": { schema: z.object({ expiresInSeconds: z.number().int().min(60).max(90 * 86_400).optional() }).strict().openapi("RefundLinkInput") } },
      },
    },
    responses: {
      201: {
        description: "The link",
        content: { "application/json": { schema: z.object({ token: z.string(), path: z.string(), expiresAt: z.string() }).openapi("RefundLink") } },
      },
      ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429),
    },
  });
  app.openapi(refundLink, async (c) => {
    enabled();
    const merchant = currentMerchant(c);
    const row = await loadBtcInvoice(deps.store.db, merchant.id, c.req.valid("param").id);
    if (!row) throw problem.notFound(`BTC invoice ${c.req.valid("param").id}`);
    const expiresAt = Math.floor(Date.now() / 1000) + (c.req.valid("json")?.expiresInSeconds ?? DEFAULT_LINK_SECONDS);
    const token = refundLinkToken(deps.config.operatorKeySecret, row.id, expiresAt);
    return c.json({ token, path: `/refund-links/${token}`, expiresAt: new Date(expiresAt * 1000).toISOString() }, 201);
  });

  const refund = createRoute({
    method: "post",
    path: "/invoices/{id}/bitcoin-refund",
    tags: ["Bitcoin"],
    summary: "Prepare the refund of a BTC invoice as an unsigned PSBT",
    description:
      "Builds an unsigned PSBT (BIP174) spending what the invoice received to the customer's refund address, at the chain source's fee rate (or `feeRate`); a partial refund sends the change to your account's change branch. Sign it in the wallet that holds the account's keys and broadcast it: the watcher recognises the transaction and the invoice becomes `refunded` or `partially_refunded` once it is mined.",
    security: BEARER,
    middleware: [requireScope("invoices:write"), required] as const,
    request: {
      params: InvoiceIdParams,
      headers: IdempotencyHeaders,
      body: { required: false, content: { "application/json": { schema: RefundBtcBody } } },
    },
    responses: { 201: { description: "The PSBT to sign", content: { "application/json": { schema: RefundPsbtSchema } } }, ...problemResponses(400, 401, 403, 404, 409, 415, 422, 429, 503) },
  });
  app.openapi(refund, async (c) => {
    enabled();
    const merchant = currentMerchant(c);
    const row = await loadBtcInvoice(deps.store.db, merchant.id, c.req.valid("param").id);
    if (!row) throw problem.notFound(`BTC invoice ${c.req.valid("param").id}`);
    const response = await refundBtcInvoice(deps, merchant, row, c.req.valid("json") ?? {}, c.get("remember"));
    return c.body(response.body, 201, { "content-type": "application/json" }) as never;
  });

  return app;
}
