/**
 * Confirmation policy: after how many blocks (the payment's own included) a payment is `invoice.confirmed`.
 * Merchants set it per chain (PATCH /v1/merchants/me `confirmations`); otherwise the chain's default.
 */
import { isLocalChain } from "../../contracts/chains";
import type { MerchantRecord } from "../env";

/** Default confirmations for `invoice.confirmed`, per chain, when the merchant set none. */
export function defaultConfirmations(chainId: number): number {
  if (isLocalChain(chainId)) return 1;
  switch (chainId) {
    case 1:
      return 12;
    case 11155111:
    case 84532:
    case 11155420:
    case 421614:
      return 3;
    default:
      return 10;
  }
}

export function requiredConfirmations(merchant: Pick<MerchantRecord, "confirmationPolicy">, chainId: number): number {
  return merchant.confirmationPolicy?.[String(chainId)] ?? defaultConfirmations(chainId);
}

