/**
 * Shared zod schemas (with OpenAPI metadata): addresses, amounts, problems, the Idempotency-Key header, and the
 * standard error responses of route definitions.
 */
import { z } from "@hono/zod-openapi";
import { getAddress, isAddress, zeroAddress } from "viem";
import { MAX_IDEMPOTENCY_KEY_LENGTH } from "./idempotency";

/** An EVM address; mixed-case input must carry a valid EIP-55 checksum. Normalised to checksum form. */
export const AddressSchema = z
  .string()
  .refine((value) => isAddress(value, { strict: true }), {
    message: "must be a 0x-prefixed 20-byte address with a valid EIP-55 checksum (or all lowercase)",
  })
  .transform((value) => getAddress(value))
  .openapi({ example: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", description: "EVM address" });

/** An address that receives or controls money: the zero address is refused (it would burn or lock it). */
export const NonZeroAddressSchema = AddressSchema.refine((value) => value !== zeroAddress, {
  message: "must not be the zero address",
});

/**
 * An integer in a query string: decimal digits only ("1e3", "0x10", " 5", "5.0" are refused, not coerced), then
 * checked as a number. Documented as an integer.
 */
export function queryInteger(min: number, max: number) {
  return z.preprocess((value) => (typeof value === "string" && /^\d{1,15}$/.test(value) ? Number(value) : value), z.number().int().min(min).max(max));
}

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
    410: "Gone: the resource no longer accepts this",
    413: "Body too large",
    415: "The body is not JSON",
    422: "Invalid fields",
    429: "Rate limited",
    503: "The chain's node is unreachable, or the merchant's operator needs ETH for gas",
  };
  return Object.fromEntries(
    statuses.map((status) => [
      status,
      { description: descriptions[status] ?? "Error", content: { "application/problem+json": { schema: ProblemSchema } } },
    ]),
  );
}

export const BEARER = [{ bearerAuth: [] }];

export const IdempotencyHeaders = z.object({
  "idempotency-key": z
    .string()
    .min(1)
    .max(MAX_IDEMPOTENCY_KEY_LENGTH)
    .openapi({
      param: { in: "header" },
      description: "Unique per request (e.g. a UUID). Retrying with the same key and body replays the first response.",
    }),
});

export const OptionalIdempotencyHeaders = z.object({
  "idempotency-key": IdempotencyHeaders.shape["idempotency-key"].optional().openapi({
    param: { in: "header", required: false },
    description: "Optional: makes the request safe to retry (the first successful response is replayed for 24 h).",
  }),
});

/**
 * A record whose `__proto__` key (which JSON may carry but a JavaScript object cannot hold as plain data) is
 * refused by name instead of silently dropped.
 */
export function plainRecord<T extends z.ZodType>(schema: T) {
  return z.preprocess((value, context) => {
    if (value && typeof value === "object" && Object.hasOwn(value, "__proto__")) {
      context.addIssue({ code: "custom", path: ["__proto__"], message: "is a reserved key" });
    }
    return value;
  }, schema);
}
