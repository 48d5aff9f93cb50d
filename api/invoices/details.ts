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
 * and `canonicalJson` is api/canonical-json.ts (sorted keys, no whitespace, RFC 8785 for these values).
 * Absent optional fields are `null` / `[]` / `{}` as above, and every string is hashed exactly as the merchant
 * sent it. Anyone holding the invoice (payer, auditor) can
 * recompute the hash from the API response and compare it with the signed terms.
 */
import { keccak256, stringToBytes, type Hex } from "viem";
import { canonicalJson } from "../canonical-json";

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

export function detailsHash(details: InvoiceDetails): Hex {
  return keccak256(stringToBytes(canonicalJson(details)));
}
