/**
 * Typed client of the chainbill HTTP API, generated from its OpenAPI document (paths, bodies, responses and
 * problems are all typed), on `openapi-fetch`:
 *
 *   const chainbill = createChainbillClient({ baseUrl: "https://billing.example.com", apiKey });
 *   const { data, error } = await chainbill.POST("/v1/invoices", {
 *     params: { header: { "Idempotency-Key": orderId } },
 *     body: { amount: "25.00", currency: "USDC", chainId: 84532 },
 *   });
 *
 * `error` is the RFC 9457 problem when the call fails. Without `apiKey` only the public endpoints answer.
 */
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "./generated/api-schema.ts";

export type { components, operations, paths } from "./generated/api-schema.ts";

export interface ChainbillClientOptions {
  /** The API's origin, e.g. `https://billing.example.com` (no trailing `/v1`). */
  baseUrl: string;
  /** A merchant API key (sent as `Authorization: Bearer …`); omit for the public endpoints. */
  apiKey?: string;
  /** A fetch implementation (default: the global `fetch`). */
  fetch?: typeof fetch;
}

export type ChainbillClient = Client<paths>;

/** The API's invoice, as it answers `GET /v1/invoices/{id}`. */
export type ApiInvoice = components["schemas"]["Invoice"];

export function createChainbillClient(options: ChainbillClientOptions): ChainbillClient {
  return createClient<paths>({
    baseUrl: options.baseUrl.replace(/\/+$/, ""),
    ...(options.apiKey ? { headers: { authorization: `Bearer ${options.apiKey}` } } : {}),
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}
