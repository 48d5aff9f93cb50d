// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice One-off invoice terms, signed by the merchant's signer as EIP-712 typed data.
/// @dev The EIP-712 digest of these terms (bound to chain id and contract) is the invoice's on-chain key.
/// Callers pass the terms back on every later operation; the contract stores only a one-word `Payment`.
struct Invoice {
    /// @notice Merchant id in the registry.
    uint64 merchantId;
    /// @notice Merchant's own reference, unique per merchant.
    bytes32 invoiceId;
    /// @notice ERC-20 token to pay in; the zero address means native ETH.
    address token;
    /// @notice Exact amount due, in the token's base units.
    uint256 amount;
    /// @notice The only address allowed to pay; the zero address lets anyone pay.
    address payer;
    /// @notice Address that may settle a dispute; the zero address means no arbiter.
    address arbiter;
    /// @notice Unix time from which the invoice can no longer be paid.
    uint64 expiresAt;
    /// @notice Seconds the payment is held in escrow after it is made.
    uint32 holdDuration;
    /// @notice Unix time by which the merchant must mark the invoice fulfilled; zero means no deadline.
    uint64 fulfillBy;
    /// @notice Highest protocol fee rate (basis points) the merchant accepts on this payment; `pay` reverts when
    /// the rate in force is above it, so the protocol owner cannot raise the fee on terms already signed.
    uint16 maxFeeBps;
    /// @notice Hash committing to the off-chain details (line items, memo).
    bytes32 detailsHash;
}

/// @notice Lifecycle of an invoice's payment in the escrow.
enum PaymentStatus {
    None,
    Held,
    Disputed,
    Released,
    Refunded,
    Voided
}

/// @notice Why money went back to a payer.
enum RefundReason {
    Merchant,
    Unfulfilled,
    DisputeExpired,
    Arbiter
}

/// @notice The escrow's record of one paid invoice, packed into a single storage word.
struct Payment {
    /// @notice Who paid (and receives refunds).
    address payer;
    /// @notice Unix time from which the payment may be released.
    uint40 releaseAt;
    /// @notice Lifecycle status.
    PaymentStatus status;
    /// @notice Protocol fee rate in basis points, snapshotted at payment time.
    uint16 feeBps;
    /// @notice Whether the merchant marked the invoice fulfilled.
    bool fulfilled;
    /// @notice Whether part of the payment was refunded (the total lives in a separate slot).
    bool partiallyRefunded;
    /// @notice Whether the payer ever opened a dispute. A payment can be disputed once: a withdrawn dispute cannot
    /// be re-opened, so withdrawing and re-opening can never push an arbiter's ruling past its deadline.
    bool disputeOpened;
}

/// @notice A merchant in the registry.
struct Merchant {
    /// @notice Controls the merchant: sets payout, signer, ownership.
    address owner;
    /// @notice Receives releases and withdrawals.
    address payout;
    /// @notice Hot key: signs invoices and operates (refund, fulfil, void, plans). It can never redirect funds.
    address signer;
    /// @notice Proposed new owner, until accepted.
    address pendingOwner;
}

/// @notice A recurring billing plan.
struct Plan {
    /// @notice ERC-20 token charged.
    address token;
    /// @notice Merchant id in the registry.
    uint64 merchantId;
    /// @notice Whether new subscriptions are accepted.
    bool active;
    /// @notice Price per period in base units; applies to periods that start after a change.
    uint96 price;
    /// @notice Period length in seconds.
    uint32 period;
    /// @notice Free trial in seconds before the first charge.
    uint32 trial;
    /// @notice Seconds after a due date during which failed renewals are retried.
    uint32 gracePeriod;
}

/// @notice Lifecycle of a subscription.
enum SubscriptionStatus {
    None,
    Trialing,
    Active,
    PastDue,
    Canceled,
    Lapsed
}

/// @notice A subscription, packed into two storage words.
struct Subscription {
    /// @notice The paying wallet.
    address subscriber;
    /// @notice Current plan.
    uint32 planId;
    /// @notice Lifecycle status.
    SubscriptionStatus status;
    /// @notice Time up to which earnings were moved to the merchant; `unearned` earns linearly from here.
    uint40 collectedUntil;
    /// @notice Charged for the current period and not yet earned by the merchant.
    uint96 unearned;
    /// @notice The subscriber's cap on any one period's price.
    uint96 maxPrice;
    /// @notice End of the current period (the next due date).
    uint40 periodEnd;
}

/// @notice Why a renewal did not charge.
enum RenewalFailure {
    PriceAboveMaximum,
    TransferFailed,
    InexactTransfer
}
