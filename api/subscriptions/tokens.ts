/**
 * Tokens of indexed plans, subscriptions and ledger rows, for display. Resolution (registry, then the token
 * contract, cached) is api/invoices/tokens.ts's `resolveCurrency`, shared by every resource.
 */
import { getAddress, zeroAddress } from "viem";
import type { ChainRuntime, TokenInfo } from "../chains";
import { resolveCurrency } from "../invoices/tokens";

/** The token at `address` on `chain`. A token that cannot be read shows its amounts in base units (decimals 0). */
export async function tokenAt(chain: ChainRuntime, address: string): Promise<TokenInfo> {
  const checksummed = getAddress(address);
  try {
    return await resolveCurrency(chain, checksummed);
  } catch {
    return { symbol: checksummed, address: checksummed, decimals: 0 };
  }
}

export function isNative(token: TokenInfo): boolean {
  return token.address === zeroAddress;
}
