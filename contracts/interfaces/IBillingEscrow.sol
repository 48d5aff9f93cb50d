// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Invoice, Payment, PaymentStatus, RefundReason} from "../types/DataTypes.sol";

/// @title IBillingEscrow
/// @notice Escrow for one-off invoices: pay against a merchant-signed EIP-712 invoice, hold, then release to the
/// merchant or refund to the payer by rule (merchant refund, missed fulfilment deadline, unresolved dispute).
/// @dev Every function after `pay` takes the signed invoice terms back; the contract recomputes the key.
interface IBillingEscrow {
    // ------------------------------------------------------------------------------------------------ events

    /// @notice An invoice was paid and its amount is now held.
    /// @param key EIP-712 digest of the invoice (its on-chain id).
    /// @param feeBps Protocol fee rate snapshotted for this payment.
    event InvoicePaid(
        bytes32 indexed key,
        uint64 indexed merchantId,
        address indexed payer,
        bytes32 invoiceId,
        address token,
        uint256 amount,
        uint40 releaseAt,
        uint64 fulfillBy,
        uint16 feeBps
    );
    /// @notice Held money went to the merchant's payout address (`amount`) and the protocol (`fee`).
    event InvoiceReleased(
        bytes32 indexed key,
        uint64 indexed merchantId,
        address indexed payout,
        address token,
        uint256 amount,
        uint256 fee
    );
    /// @notice Held money went back to the payer.
    /// @param totalRefunded Sum of all refunds of this invoice so far; the invoice is fully refunded when it equals
    /// the invoice amount (what stays held is the amount minus this total, unless released).
    event InvoiceRefunded(
        bytes32 indexed key,
        uint64 indexed merchantId,
        address indexed payer,
        address token,
        uint256 amount,
        uint256 totalRefunded,
        RefundReason reason
    );
    /// @notice The payer disputed the payment; release is frozen until `deadline`.
    event InvoiceDisputed(bytes32 indexed key, uint64 indexed merchantId, address indexed payer, uint40 deadline);
    /// @notice The payer withdrew the dispute for good; the payment is held again and cannot be disputed again.
    event DisputeWithdrawn(bytes32 indexed key, uint64 indexed merchantId);
    /// @notice The arbiter settled the dispute: `refundShareBps` of what was held went back to the payer
    /// (`refunded`, rounded up) and the rest (`released`, before the protocol fee) to the merchant.
    event DisputeResolved(
        bytes32 indexed key,
        uint64 indexed merchantId,
        address indexed arbiter,
        uint16 refundShareBps,
        uint256 refunded,
        uint256 released
    );
    /// @notice The merchant marked the invoice fulfilled.
    event InvoiceFulfilled(bytes32 indexed key, uint64 indexed merchantId);
    /// @notice The merchant voided an unpaid invoice; it can no longer be paid.
    event InvoiceVoided(bytes32 indexed key, uint64 indexed merchantId, bytes32 invoiceId);
    /// @notice Money of the invoice's currency that arrived at its deposit address beyond its payment is held in the
    /// escrow (`total` for this invoice) until `returnDeposit` sends it to the refund address.
    event DepositHeld(bytes32 indexed key, uint64 indexed merchantId, address token, uint256 amount, uint256 total);
    /// @notice The refund address (the payer of record) of an invoice paid, or to be paid, through its deposit address
    /// was set by the merchant's owner or signer. It can be set once.
    event RefundAddressSet(bytes32 indexed key, uint64 indexed merchantId, address indexed refundTo, address setBy);
    /// @notice Money of the invoice's currency that arrived at its deposit address and is not its payment (an
    /// excess, a payment after expiry, after it was paid or voided) went back to the refund address.
    event DepositReturned(bytes32 indexed key, uint64 indexed merchantId, address indexed to, address token, uint256 amount);
    /// @notice A token (or ETH) that is not the invoice's currency was moved out of its deposit address by the
    /// merchant's owner, to an address the owner named.
    event DepositRecovered(bytes32 indexed key, uint64 indexed merchantId, address indexed to, address token, uint256 amount);
    /// @notice The protocol fee rate for new payments changed.
    event FeeChanged(uint16 feeBps);
    /// @notice The protocol fee recipient changed.
    event FeeRecipientChanged(address feeRecipient);
    /// @notice New payments were paused or resumed.
    event PausedSet(bool paused);
    /// @notice Accrued protocol fees were sent to the fee recipient.
    event FeesWithdrawn(address indexed token, address indexed to, uint256 amount);

    // ------------------------------------------------------------------------------------------------ errors

    /// @notice New payments are paused.
    error PaymentsPaused();
    /// @notice The invoice can no longer be paid (`block.timestamp >= expiresAt`).
    error InvoiceExpired(uint64 expiresAt, uint256 nowTime);
    /// @notice The invoice names another payer.
    error WrongPayer(address expected, address caller);
    /// @notice The signature is not the merchant's current signer's over this invoice on this chain and contract.
    error InvalidSignature();
    /// @notice The invoice was already paid (or voided) and cannot be paid again.
    error InvoiceNotPayable(PaymentStatus status);
    /// @notice The hold duration exceeds the maximum.
    error HoldTooLong(uint32 holdDuration, uint32 maxHoldDuration);
    /// @notice The invoice's fulfilment deadline has already passed.
    error FulfillByPassed(uint64 fulfillBy);
    /// @notice The protocol fee rate in force (`feeBps`) is above the highest rate the signed invoice accepts.
    error FeeAboveMaximum(uint16 feeBps, uint16 maxFeeBps);
    /// @notice The operation needs the payment to be held (or disputed) and it is not.
    error NotHeld(PaymentStatus status);
    /// @notice The operation needs the payment to be disputed and it is not.
    error NotDisputed(PaymentStatus status);
    /// @notice Release is frozen while the payment is disputed.
    error PaymentDisputed();
    /// @notice The hold has not ended yet.
    error HoldNotEnded(uint40 releaseAt);
    /// @notice The hold has ended: disputes are no longer possible.
    error HoldEnded(uint40 releaseAt);
    /// @notice The payer already disputed this payment and withdrew the dispute; a payment is disputed at most once.
    error DisputeAlreadyWithdrawn(bytes32 key);
    /// @notice An arbiter's refund share above 10 000 basis points (100 %).
    error InvalidRefundShare(uint16 refundShareBps);
    /// @notice The invoice has a fulfilment deadline and was not marked fulfilled.
    error NotFulfilled();
    /// @notice The invoice was already marked fulfilled.
    error AlreadyFulfilled();
    /// @notice The invoice has no fulfilment deadline.
    error NoFulfillmentDeadline();
    /// @notice The fulfilment deadline has not passed yet.
    error FulfillmentDeadlineNotPassed(uint64 fulfillBy);
    /// @notice The fulfilment deadline has passed.
    error FulfillmentDeadlinePassed(uint64 fulfillBy);
    /// @notice The dispute deadline has not passed yet.
    error DisputeDeadlineNotPassed(uint40 deadline);
    /// @notice The dispute deadline has passed; only the automatic refund remains.
    error DisputeDeadlinePassed(uint40 deadline);
    /// @notice The refund is larger than what is still held.
    error RefundExceedsHeld(uint256 requested, uint256 held);
    /// @notice The caller is not the invoice's payer.
    error NotPayer(address payer, address caller);
    /// @notice The caller is not the invoice's arbiter (or it has none).
    error NotArbiter(address arbiter, address caller);
    /// @notice The fee rate exceeds the cap.
    error FeeTooHigh(uint16 feeBps, uint16 maxFeeBps);
    /// @notice The dispute period is zero or above the maximum.
    error InvalidDisputePeriod(uint32 disputePeriod);
    /// @notice No protocol fees to withdraw.
    error NoFees(address token);
    /// @notice Less than the invoice amount is at its deposit address: the invoice stays open until a top-up.
    error DepositShort(uint256 received, uint256 amount);
    /// @notice ETH came from somewhere other than the deposit address being collected.
    error NotDepositAddress(address sender);
    /// @notice No refund address is known for the invoice yet: the customer gives one (checkout, refund link) and the
    /// merchant sets it with `setRefundAddress`; until then the money stays held.
    error RefundAddressUnknown(bytes32 key);
    /// @notice The invoice already has a refund address (its signed `payer`, the wallet that paid, or one set before).
    error RefundAddressAlreadySet(address refundTo);
    /// @notice The invoice can still be paid, so what sits at its deposit address may still become its payment:
    /// wait until it expires, or void it first.
    error InvoiceStillPayable(uint64 expiresAt);
    /// @notice Nothing of `token` is at the invoice's deposit address or held for it.
    error NothingDeposited(bytes32 key, address token);
    /// @notice The invoice's own currency is never recovered by the merchant: it is swept into the escrow or
    /// returned to the refund address.
    error NotRecoverable(address token);
    /// @notice `sweepDeposits` got arrays of different lengths.
    error LengthMismatch(uint256 invoices, uint256 signatures);

    // ------------------------------------------------------------------------------------------------ payer

    /// @notice Pays an invoice: the exact amount is pulled (or sent as ETH) and held.
    /// @param invoice The terms the merchant signed.
    /// @param signature The merchant signer's EIP-712 signature (65-byte ECDSA, or ERC-1271 for contract signers).
    /// @return key The invoice's EIP-712 digest.
    function pay(Invoice calldata invoice, bytes calldata signature) external payable returns (bytes32 key);

    /// @notice Pays an ERC-20 invoice using an EIP-2612 permit for the approval (one transaction).
    /// @dev A permit already used (e.g. front-run) is ignored; the payment then needs an existing allowance.
    function payWithPermit(
        Invoice calldata invoice,
        bytes calldata signature,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (bytes32 key);

    /// @notice Opens a dispute during the hold, freezing release. Payer only, once per payment.
    /// @dev While it is open: the payer may withdraw it (for good); the merchant may refund part or all and mark
    /// the invoice fulfilled; the arbiter may rule until `releaseAt + DISPUTE_PERIOD`; from then on anyone may
    /// refund the payer in full (`refundExpiredDispute`). `refundUnfulfilled` still applies after a missed
    /// `fulfillBy`. Nobody can release it.
    function dispute(Invoice calldata invoice) external;

    /// @notice Withdraws the caller's dispute; the payment is held again and can never be disputed again.
    /// Payer only.
    function withdrawDispute(Invoice calldata invoice) external;

    // ------------------------------------------------------------------------------------------------ release and refunds

    /// @notice Sends the held amount, minus the snapshotted fee, to the merchant's payout address.
    /// @dev Anyone after the hold (and after fulfilment when the invoice has a deadline); the payer at any time.
    function release(Invoice calldata invoice) external;

    /// @notice Refunds part or all of what is held to the payer. Merchant owner or signer.
    function refund(Invoice calldata invoice, uint256 amount) external;

    /// @notice Refunds everything held when the merchant missed `fulfillBy`. Anyone.
    function refundUnfulfilled(Invoice calldata invoice) external;

    /// @notice Refunds everything held when a dispute is unresolved at its deadline. Anyone.
    function refundExpiredDispute(Invoice calldata invoice) external;

    /// @notice Settles a dispute. Arbiter only, before the dispute deadline.
    /// @dev The ruling is a share of what is held when it executes, so a refund landing just before it changes the
    /// amounts, never the outcome: refund = ceil(held × refundShareBps / 10 000) to the payer (rounded in the payer's
    /// favour), the rest released to the merchant minus the fee snapshotted at payment.
    /// @param refundShareBps Share of what is held refunded to the payer, in basis points: 0 releases everything to
    /// the merchant, 10 000 refunds everything.
    function resolveDispute(Invoice calldata invoice, uint16 refundShareBps) external;

    // ------------------------------------------------------------------------------------------------ merchant

    /// @notice Marks the invoice fulfilled, before its `fulfillBy`. Merchant owner or signer.
    function markFulfilled(Invoice calldata invoice) external;

    /// @notice Voids an unpaid invoice so its signature can no longer be used. Merchant owner or signer.
    function voidInvoice(Invoice calldata invoice) external;

    // ------------------------------------------------------------------------------------------------ deposit addresses

    /// @notice Moves the invoice's deposit address balance into the escrow and records the payment exactly as `pay`
    /// does (same checks, `InvoicePaid` with the payer of record or the zero address, fee snapshot, hold). Anyone (a keeper); the outcome does not depend on the
    /// caller. The payer of record is the signed `payer` or the refund address set before, else unknown until
    /// `setRefundAddress`. Anything above the amount is held for the refund address (`DepositHeld`).
    /// @dev Reverts with `DepositShort` (nothing moves) while less than the amount has arrived, and like `pay` when
    /// the invoice is expired, paid or voided: that money is then returned with `returnDeposit`.
    function sweepDeposit(Invoice calldata invoice, bytes calldata signature) external returns (bytes32 key);

    /// @notice `sweepDeposit` for several invoices in one transaction; any failure reverts them all.
    function sweepDeposits(Invoice[] calldata invoices, bytes[] calldata signatures) external;

    /// @notice Names where money that arrived at the invoice's deposit address goes back (`returnDeposit`), for an
    /// invoice whose terms name no payer; a deposit payment swept without a known payer gets it as its payer of
    /// record (refunds, disputes). Merchant owner or signer; once; never the deposit address itself.
    function setRefundAddress(Invoice calldata invoice, address refundTo) external;

    /// @notice Sends the invoice's own currency that is at its deposit address or held for it, and is not its
    /// payment, to the refund address (`refundAddress`). Anyone, once the invoice can no longer take it as payment
    /// (paid, voided, expired, or past its `fulfillBy`).
    function returnDeposit(Invoice calldata invoice) external returns (uint256 amount);

    /// @notice Moves a token that is not the invoice's currency (or ETH sent to an ERC-20 invoice's address) out of
    /// its deposit address to `to`. Merchant owner only.
    function recoverDeposit(Invoice calldata invoice, address token, address to) external returns (uint256 amount);

    // ------------------------------------------------------------------------------------------------ protocol

    /// @notice Sets the fee rate for future payments, at most `MAX_FEE_BPS`. Owner only.
    function setFee(uint16 feeBps) external;

    /// @notice Sets who receives protocol fees. Owner only. Refuses the escrow itself and any contract built on its
    /// registry, such as its SubscriptionManager (`InvalidRecipient`): fees sent there would be stranded.
    function setFeeRecipient(address feeRecipient) external;

    /// @notice Pauses or resumes new payments; releases, refunds and claims always work. Owner only.
    function setPaused(bool shouldPause) external;

    /// @notice Sends accrued protocol fees in `token` to the fee recipient. Anyone.
    function withdrawFees(address token) external returns (uint256 amount);

    // ------------------------------------------------------------------------------------------------ views

    /// @notice The invoice's key: its EIP-712 digest on this chain and contract.
    function invoiceKey(Invoice calldata invoice) external view returns (bytes32);

    /// @notice The payment record for a key.
    function payment(bytes32 key) external view returns (Payment memory);

    /// @notice What is still held for the invoice.
    function heldAmount(Invoice calldata invoice) external view returns (uint256);

    /// @notice Sum refunded so far for the invoice.
    function refundedAmount(Invoice calldata invoice) external view returns (uint256);

    /// @notice The invoice's deposit address: CREATE2 by this escrow, salt = its key, so computable off-chain from
    /// the signed terms before anything is deployed.
    function depositAddress(Invoice calldata invoice) external view returns (address);

    /// @notice Money of `token` held in the escrow for the invoice `key` outside its payment (see `DepositHeld`).
    function depositHeld(bytes32 key, address token) external view returns (uint256);

    /// @notice Where money that arrived at the invoice's deposit address goes back: its signed `payer`, else the
    /// address set with `setRefundAddress`, else zero (unknown). Never the wallet that paid with `pay`.
    function refundAddress(Invoice calldata invoice) external view returns (address);

    /// @notice Protocol fees accrued and not withdrawn, per token.
    function accruedFees(address token) external view returns (uint256);

    /// @notice Current fee rate (bps), fee recipient and pause flag.
    function config() external view returns (address feeRecipient, uint16 feeBps, bool paused);
}
