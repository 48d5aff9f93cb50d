/**
 * The off-chain details of an invoice and their on-chain commitment.
 *
 * `detailsHash = keccak256(utf8(canonicalJson(details)))` where `details` is
 *
 *   { "customer": { "email"?: string, "id": string } | null,
 *     "description": string | null,
 *     "lineItems": [ { "description": string, "quantity": integer, "unitAmount": string }, ... ],
 *     "metadata": { [key: string]: string } }
 *
 * and `canonicalJson` is JSON with object keys sorted by UTF-16 code units (as `Array.prototype.sort` does),
 * no whitespace, and strings escaped as `JSON.stringify` escapes them (RFC 8785 for the values used here:
 * strings, integers, arrays, objects and null). Absent optional fields are `null` / `[]` / `{}` as above, and
 * every string is hashed exactly as the merchant sent it. Anyone holding the invoice (payer, auditor) can
 * recompute the hash from the API response and compare it with the signed terms.
 */
import { keccak256, stringToBytes, type Hex } from "viem";

export interface LineItem {
  description: string;
  quantity: number;
  unitAmount: string;
}

export interface Customer {
  id: string;
  email?: string;
}

export interface InvoiceDetails {
  description: string | null;
  lineItems: LineItem[];
  customer: Customer | null;
  metadata: Record<string, string>;
}

/** Deterministic JSON: sorted keys, no whitespace. Refuses values JSON cannot represent exactly. */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
    case "boolean":
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) throw new Error("canonicalJson: non-finite number");
      return JSON.stringify(value);
    case "bigint":
      return JSON.stringify(value.toString());
    case "object": {
      if (Array.isArray(value)) return `[${value.map((item) => canonicalJson(item ?? null)).join(",")}]`;
      const entries = Object.entries(value as Record<string, unknown>)
        .filter(([, item]) => item !== undefined)
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(",")}}`;
    }
    default:
      throw new Error(`canonicalJson: cannot encode ${typeof value}`);
  }
}

export function detailsHash(details: InvoiceDetails): Hex {
  return keccak256(stringToBytes(canonicalJson(details)));
}
