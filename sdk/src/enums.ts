/**
 * The contracts' enums as plain numbers (what viem returns for a Solidity enum), named.
 */

/** BillingEscrow `PaymentStatus` enum values. */
export const PaymentStatus = { None: 0, Held: 1, Disputed: 2, Released: 3, Refunded: 4, Voided: 5 } as const;
/** BillingEscrow `RefundReason` enum values. */
export const RefundReason = { Merchant: 0, Unfulfilled: 1, DisputeExpired: 2, Arbiter: 3 } as const;
/** SubscriptionManager `SubscriptionStatus` enum values. */
export const SubscriptionStatus = { None: 0, Trialing: 1, Active: 2, PastDue: 3, Canceled: 4, Lapsed: 5 } as const;
/** SubscriptionManager `RenewalFailure` enum values. */
export const RenewalFailure = { PriceAboveMaximum: 0, TransferFailed: 1, InexactTransfer: 2 } as const;
