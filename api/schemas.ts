/**
 * Shared zod schemas (with OpenAPI metadata): addresses, amounts, problems, pagination.
 */
import { z } from "@hono/zod-openapi";
import { getAddress, isAddress } from "viem";

/** An EVM address; mixed-case input must carry a valid EIP-55 checksum. Normalised to checksum form. */
export const AddressSchema = z
  .string()
  .refine((value) => isAddress(value, { strict: true }), {
    message: "must be a 0x-prefixed 20-byte address with a valid EIP-55 checksum (or all lowercase)",
  })
  .transform((value) => getAddress(value))
  .openapi({ example: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", description: "EVM address" });

export const DecimalAmountSchema = z
  .string()
  .max(64)
  .openapi({ example: "25.00", description: "Decimal amount in the currency's units, as a string" });

export const ProblemSchema = z
  .object({
    type: z.string().openapi({ example: "/problems/validation-error" }),
    title: z.string(),
    status: z.number().int(),
    detail: z.string().optional(),
    instance: z.string().optional().openapi({ description: "Request id" }),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .openapi("Problem");

/** Standard error responses for OpenAPI route definitions. */
export function problemResponses(...statuses: number[]) {
  const descriptions: Record<number, string> = {
    400: "Malformed request",
    401: "Missing or invalid API key",
    403: "The key may not do this",
    404: "Not found",
    409: "Conflict with the current state",
    413: "Body too large",
    422: "Invalid fields",
    429: "Rate limited",
    502: "The chain refused the transaction",
  };
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: descriptions[status] ?? "Error", content: { "application/problem+json": { schema: ProblemSchema } } },
    ]),
  );
}

export const BEARER = [{ bearerAuth: [] }];
