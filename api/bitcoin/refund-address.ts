/**
 * Checking a customer's Bitcoin address (a refund destination) before it is stored: the same rules as the
 * refund builder applies (api/bitcoin/refund.ts `parseDestination`: the merchant's network, a valid checksum,
 * not an anyone-can-spend anchor), answered as a field message instead of an exception.
 */
import type { BitcoinNetwork } from "./keys";
import { parseDestination, RefundError } from "./refund";

/** The address's output script (hex), or what is wrong with it. */
export function validateAddress(address: string, network: BitcoinNetwork): { script: string; error?: undefined } | { script?: undefined; error: string } {
  if (address !== address.trim()) return { error: "must not start or end with spaces" };
  try {
    return { script: Buffer.from(parseDestination(address, network).script).toString("hex") };
  } catch (error) {
    if (error instanceof RefundError) return { error: error.message };
    throw error;
  }
}
