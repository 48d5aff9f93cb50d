/**
 * Typed TypeScript client for integrators, generated from the API's OpenAPI document (`api/openapi.json`).
 *
 *   import { createChainbillClient } from "chainbill/api/client";
 *   const chainbill = createChainbillClient({ baseUrl: "http://127.0.0.1:8787", apiKey });
 *   const { data, error } = await chainbill.POST("/v1/invoices", {
 *     params: { header: { "Idempotency-Key": orderId } },
 *     body: { amount: "25.00", currency: "USDC", chainId: 31337 },
 *   });
 *
 * `error` is the RFC 9457 problem when the call fails. Paths, bodies and responses are all typed.
 */
import createClient, { type Client } from "openapi-fetch";
import type { paths } from "./schema";

export type { paths, components } from "./schema";

export interface ChainbillClientOptions {
  baseUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
}

export type ChainbillClient = Client<paths>;

export function createChainbillClient(options: ChainbillClientOptions): ChainbillClient {
  return createClient<paths>({
    baseUrl: options.baseUrl,
    headers: { authorization: `Bearer ${options.apiKey}` },
    ...(options.fetch ? { fetch: options.fetch } : {}),
  });
}
