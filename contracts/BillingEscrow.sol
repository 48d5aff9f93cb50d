// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {Math} from "@openzeppelin/contracts/utils/math/Math.sol";
import {Clones} from "@openzeppelin/contracts/proxy/Clones.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {DepositForwarder, IDepositCollector} from "./DepositForwarder.sol";
import {IBillingEscrow} from "./interfaces/IBillingEscrow.sol";
import {MerchantRegistry} from "./abstracts/MerchantRegistry.sol";
import {TokenFlows} from "./abstracts/TokenFlows.sol";
import {Invoice, Payment, PaymentStatus, RefundReason} from "./types/DataTypes.sol";

/// @title BillingEscrow
/// @notice Escrow for merchant-signed invoices in ETH or ERC-20, with the merchant registry.
/// @dev Storage per invoice is one packed `Payment` word keyed by the invoice's EIP-712 digest; callers pass the
/// signed terms back and the digest proves them. Partial refunds add one word (`_refunded`).
/// Every invoice also has a deposit address (`depositAddress`) that takes plain transfers; `sweepDeposit` turns its
/// balance into the payment.
/// Invariant per token: balance == held + claimable + accrued fees + deposits held for return or recovery.
contract BillingEscrow is IBillingEscrow, IDepositCollector, MerchantRegistry, TokenFlows, Ownable2Step {
    /// @notice EIP-712 type of an invoice.
    bytes32 public constant INVOICE_TYPEHASH = keccak256(
        "Invoice(uint64 merchantId,bytes32 invoiceId,address token,uint256 amount,address payer,address arbiter,"
        "uint64 expiresAt,uint32 holdDuration,uint64 fulfillBy,uint16 maxFeeBps,bytes32 detailsHash)"
    );
    /// @notice Highest protocol fee rate the owner can ever set: 10%.
    uint16 public constant MAX_FEE_BPS = 1_000;
    /// @notice Longest escrow hold an invoice may ask for.
    uint32 public constant MAX_HOLD_DURATION = 365 days;
    /// @notice Longest dispute period a deployment may choose.
    uint32 public constant MAX_DISPUTE_PERIOD = 180 days;
    uint256 private constant BPS = 10_000;

    /// @notice Time after the hold ends by which a dispute must be settled, or the payer is refunded.
    uint32 public immutable DISPUTE_PERIOD;
    /// @notice The DepositForwarder every deposit address is a minimal clone of (deployed by this escrow). With the
    /// escrow's address and an invoice key it gives the invoice's deposit address (CREATE2, EIP-1167).
    address public immutable DEPOSIT_IMPLEMENTATION;

    struct Config {
        address feeRecipient;
        uint16 feeBps;
        bool paused;
    }

    Config private _config;
    mapping(bytes32 key => Payment) private _payments;
    mapping(bytes32 key => uint256) private _refunded;
    mapping(address token => uint256) private _accruedFees;
    mapping(bytes32 key => mapping(address token => uint256)) private _depositHeld;
    /// @dev Where money that arrived at an invoice's deposit address goes back (and the payer of a deposit payment
    /// when the terms name none). Kept apart from `Payment.payer`: a wallet paying with `pay` must never become
    /// the recipient of what a customer sent to the deposit address.
    mapping(bytes32 key => address) private _refundTo;
    /// @dev The deposit address being collected from; set only for the length of that collection.
    address private transient _collecting;

    /// @notice Deploys the escrow with its fee settings and dispute period.
    /// @param initialOwner Protocol owner (fee settings and pause).
    /// @param feeRecipient Receives protocol fees.
    /// @param feeBps Initial fee rate, at most `MAX_FEE_BPS`.
    /// @param disputePeriod Seconds after a hold ends by which a dispute must be settled.
    constructor(address initialOwner, address feeRecipient, uint16 feeBps, uint32 disputePeriod)
        EIP712("chainbill BillingEscrow", "1")
        Ownable(initialOwner)
    {
        if (feeRecipient == address(0)) revert ZeroAddress();
        _requireRecipient(feeRecipient);
        if (feeBps > MAX_FEE_BPS) revert FeeTooHigh(feeBps, MAX_FEE_BPS);
        if (disputePeriod == 0 || disputePeriod > MAX_DISPUTE_PERIOD) revert InvalidDisputePeriod(disputePeriod);
        _config = Config({feeRecipient: feeRecipient, feeBps: feeBps, paused: false});
        DISPUTE_PERIOD = disputePeriod;
        DEPOSIT_IMPLEMENTATION = address(new DepositForwarder());
    }

    // ------------------------------------------------------------------------------------------------ payer

    /// @inheritdoc IBillingEscrow
    function pay(Invoice calldata invoice, bytes calldata signature)
        external
        payable
        nonReentrant
        returns (bytes32 key)
    {
        key = _acceptPayment(invoice, signature, _walletPayer(invoice));
        if (invoice.token == address(0)) {
            if (msg.value != invoice.amount) revert WrongNativeAmount(invoice.amount, msg.value);
        } else {
            if (msg.value != 0) revert WrongNativeAmount(0, msg.value);
            _pullExact(invoice.token, msg.sender, invoice.amount);
        }
    }

    /// @inheritdoc IBillingEscrow
    function payWithPermit(
        Invoice calldata invoice,
        bytes calldata signature,
        uint256 deadline,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external nonReentrant returns (bytes32 key) {
        if (invoice.token == address(0)) revert TokenNotContract(address(0));
        key = _acceptPayment(invoice, signature, _walletPayer(invoice));
        _tryPermit(invoice.token, invoice.amount, deadline, v, r, s);
        _pullExact(invoice.token, msg.sender, invoice.amount);
    }

    /// @inheritdoc IBillingEscrow
    function dispute(Invoice calldata invoice) external {
        bytes32 key = invoiceKey(invoice);
        Payment storage record = _payments[key];
        if (record.status != PaymentStatus.Held) revert NotHeld(record.status);
        if (msg.sender != record.payer) revert NotPayer(record.payer, msg.sender);
        if (record.disputeOpened) revert DisputeAlreadyWithdrawn(key);
        uint40 releaseAt = record.releaseAt;
        if (block.timestamp >= releaseAt) revert HoldEnded(releaseAt);
        record.status = PaymentStatus.Disputed;
        record.disputeOpened = true;
        emit InvoiceDisputed(key, invoice.merchantId, msg.sender, releaseAt + DISPUTE_PERIOD);
    }

    /// @inheritdoc IBillingEscrow
    function withdrawDispute(Invoice calldata invoice) external {
        bytes32 key = invoiceKey(invoice);
        Payment storage record = _payments[key];
        if (record.status != PaymentStatus.Disputed) revert NotDisputed(record.status);
        if (msg.sender != record.payer) revert NotPayer(record.payer, msg.sender);
        record.status = PaymentStatus.Held;
        emit DisputeWithdrawn(key, invoice.merchantId);
    }

    // ------------------------------------------------------------------------------------------------ release and refunds

    /// @inheritdoc IBillingEscrow
    function release(Invoice calldata invoice) external nonReentrant {
        bytes32 key = invoiceKey(invoice);
        Payment memory record = _payments[key];
        if (record.status == PaymentStatus.Disputed) revert PaymentDisputed();
        if (record.status != PaymentStatus.Held) revert NotHeld(record.status);
        // The payer's own release is their confirmation of delivery: it skips the hold and fulfilment checks.
        if (msg.sender != record.payer) {
            if (block.timestamp < record.releaseAt) revert HoldNotEnded(record.releaseAt);
            if (invoice.fulfillBy != 0 && !record.fulfilled) revert NotFulfilled();
        }
        uint256 held = _held(invoice, key, record);
        _payments[key].status = PaymentStatus.Released;
        _releaseToMerchant(invoice, key, record.feeBps, held);
    }

    /// @inheritdoc IBillingEscrow
    function refund(Invoice calldata invoice, uint256 amount) external nonReentrant {
        _requireMerchantOperator(invoice.merchantId);
        if (amount == 0) revert ZeroAmount();
        bytes32 key = invoiceKey(invoice);
        Payment memory record = _payments[key];
        _requireHeld(record);
        _refund(invoice, key, record, amount, RefundReason.Merchant);
    }

    /// @inheritdoc IBillingEscrow
    function refundUnfulfilled(Invoice calldata invoice) external nonReentrant {
        bytes32 key = invoiceKey(invoice);
        Payment memory record = _payments[key];
        _requireHeld(record);
        if (invoice.fulfillBy == 0) revert NoFulfillmentDeadline();
        if (record.fulfilled) revert AlreadyFulfilled();
        if (block.timestamp <= invoice.fulfillBy) revert FulfillmentDeadlineNotPassed(invoice.fulfillBy);
        _refund(invoice, key, record, _held(invoice, key, record), RefundReason.Unfulfilled);
    }

    /// @inheritdoc IBillingEscrow
    function refundExpiredDispute(Invoice calldata invoice) external nonReentrant {
        bytes32 key = invoiceKey(invoice);
        Payment memory record = _payments[key];
        if (record.status != PaymentStatus.Disputed) revert NotDisputed(record.status);
        uint40 deadline = record.releaseAt + DISPUTE_PERIOD;
        if (block.timestamp < deadline) revert DisputeDeadlineNotPassed(deadline);
        _refund(invoice, key, record, _held(invoice, key, record), RefundReason.DisputeExpired);
    }

    /// @inheritdoc IBillingEscrow
    function resolveDispute(Invoice calldata invoice, uint16 refundShareBps) external nonReentrant {
        if (invoice.arbiter == address(0) || msg.sender != invoice.arbiter) {
            revert NotArbiter(invoice.arbiter, msg.sender);
        }
        if (refundShareBps > BPS) revert InvalidRefundShare(refundShareBps);
        bytes32 key = invoiceKey(invoice);
        Payment memory record = _payments[key];
        if (record.status != PaymentStatus.Disputed) revert NotDisputed(record.status);
        uint40 deadline = record.releaseAt + DISPUTE_PERIOD;
        if (block.timestamp >= deadline) revert DisputeDeadlinePassed(deadline);
        uint256 held = _held(invoice, key, record);
        // A share of what is held now: a merchant's partial refund landing first shrinks both parts, never reverts.
        uint256 refundAmount = Math.mulDiv(held, refundShareBps, BPS, Math.Rounding.Ceil);
        uint256 releasedAmount = held - refundAmount;

        // All state first (the refund record, then the final status), then the two payouts.
        uint256 totalRefunded = refundAmount != 0 ? _recordRefund(invoice, key, record, refundAmount) : 0;
        if (releasedAmount != 0) _payments[key].status = PaymentStatus.Released;
        if (refundAmount != 0) {
            _payRefund(invoice, key, record.payer, refundAmount, totalRefunded, RefundReason.Arbiter);
        }
        if (releasedAmount != 0) _releaseToMerchant(invoice, key, record.feeBps, releasedAmount);
        emit DisputeResolved(key, invoice.merchantId, msg.sender, refundShareBps, refundAmount, releasedAmount);
    }

    // ------------------------------------------------------------------------------------------------ merchant

    /// @inheritdoc IBillingEscrow
    function markFulfilled(Invoice calldata invoice) external {
        _requireMerchantOperator(invoice.merchantId);
        bytes32 key = invoiceKey(invoice);
        Payment storage record = _payments[key];
        PaymentStatus status = record.status;
        if (status != PaymentStatus.Held && status != PaymentStatus.Disputed) revert NotHeld(status);
        if (record.fulfilled) revert AlreadyFulfilled();
        if (invoice.fulfillBy != 0 && block.timestamp > invoice.fulfillBy) {
            revert FulfillmentDeadlinePassed(invoice.fulfillBy);
        }
        record.fulfilled = true;
        emit InvoiceFulfilled(key, invoice.merchantId);
    }

    /// @inheritdoc IBillingEscrow
    function voidInvoice(Invoice calldata invoice) external {
        _requireMerchantOperator(invoice.merchantId);
        bytes32 key = invoiceKey(invoice);
        Payment storage record = _payments[key];
        if (record.status != PaymentStatus.None) revert InvoiceNotPayable(record.status);
        record.status = PaymentStatus.Voided;
        emit InvoiceVoided(key, invoice.merchantId, invoice.invoiceId);
    }

    // ------------------------------------------------------------------------------------------------ deposit addresses

    /// @inheritdoc IBillingEscrow
    function sweepDeposit(Invoice calldata invoice, bytes calldata signature)
        external
        nonReentrant
        returns (bytes32 key)
    {
        return _sweep(invoice, signature);
    }

    /// @inheritdoc IBillingEscrow
    function sweepDeposits(Invoice[] calldata invoices, bytes[] calldata signatures) external nonReentrant {
        uint256 count = invoices.length;
        if (signatures.length != count) revert LengthMismatch(count, signatures.length);
        for (uint256 i; i < count; ++i) {
            _sweep(invoices[i], signatures[i]);
        }
    }

    /// @inheritdoc IBillingEscrow
    function setRefundAddress(Invoice calldata invoice, address refundTo) external {
        _requireMerchantOperator(invoice.merchantId);
        if (refundTo == address(0)) revert ZeroAddress();
        _requireRecipient(refundTo);
        if (invoice.payer != address(0)) revert RefundAddressAlreadySet(invoice.payer);
        bytes32 key = invoiceKey(invoice);
        // Sending the money back to the address it sits at would loop forever.
        if (refundTo == Clones.predictDeterministicAddress(DEPOSIT_IMPLEMENTATION, key)) revert InvalidRecipient(refundTo);
        address current = _refundTo[key];
        if (current != address(0)) revert RefundAddressAlreadySet(current);
        _refundTo[key] = refundTo;
        // A deposit payment swept before anyone was known (only a sweep leaves a payment without payer): its refunds
        // and disputes now belong to this address.
        Payment storage record = _payments[key];
        PaymentStatus status = record.status;
        if (record.payer == address(0) && status != PaymentStatus.None && status != PaymentStatus.Voided) {
            record.payer = refundTo;
        }
        emit RefundAddressSet(key, invoice.merchantId, refundTo, msg.sender);
    }

    /// @inheritdoc IBillingEscrow
    function returnDeposit(Invoice calldata invoice) external nonReentrant returns (uint256 amount) {
        bytes32 key = invoiceKey(invoice);
        address to = _depositRefundAddress(invoice, key);
        if (to == address(0)) revert RefundAddressUnknown(key);
        // While the invoice can still be paid, what sits at the address may yet become its payment.
        if (
            _payments[key].status == PaymentStatus.None && block.timestamp < invoice.expiresAt
                && (invoice.fulfillBy == 0 || block.timestamp <= invoice.fulfillBy)
        ) {
            revert InvoiceStillPayable(invoice.expiresAt);
        }
        address token = invoice.token;
        amount = _collectInto(key, token) + _depositHeld[key][token];
        if (amount == 0) revert NothingDeposited(key, token);
        _depositHeld[key][token] = 0;
        _payOrCredit(token, to, amount);
        emit DepositReturned(key, invoice.merchantId, to, token, amount);
    }

    /// @inheritdoc IBillingEscrow
    function recoverDeposit(Invoice calldata invoice, address token, address to)
        external
        nonReentrant
        returns (uint256 amount)
    {
        _requireMerchantOwner(invoice.merchantId);
        if (token == invoice.token) revert NotRecoverable(token);
        if (to == address(0)) revert ZeroAddress();
        _requireRecipient(to);
        bytes32 key = invoiceKey(invoice);
        amount = _collectInto(key, token);
        if (amount == 0) revert NothingDeposited(key, token);
        _sendStrict(token, to, amount);
        emit DepositRecovered(key, invoice.merchantId, to, token, amount);
    }

    /// @inheritdoc IDepositCollector
    function acceptDeposit() external payable {
        if (msg.sender != _collecting) revert NotDepositAddress(msg.sender);
    }

    // ------------------------------------------------------------------------------------------------ protocol

    /// @inheritdoc IBillingEscrow
    function setFee(uint16 feeBps) external onlyOwner {
        if (feeBps > MAX_FEE_BPS) revert FeeTooHigh(feeBps, MAX_FEE_BPS);
        _config.feeBps = feeBps;
        emit FeeChanged(feeBps);
    }

    /// @inheritdoc IBillingEscrow
    function setFeeRecipient(address feeRecipient) external onlyOwner {
        if (feeRecipient == address(0)) revert ZeroAddress();
        _requireRecipient(feeRecipient);
        _config.feeRecipient = feeRecipient;
        emit FeeRecipientChanged(feeRecipient);
    }

    /// @inheritdoc IBillingEscrow
    function setPaused(bool shouldPause) external onlyOwner {
        _config.paused = shouldPause;
        emit PausedSet(shouldPause);
    }

    /// @inheritdoc IBillingEscrow
    function withdrawFees(address token) external nonReentrant returns (uint256 amount) {
        amount = _accruedFees[token];
        if (amount == 0) revert NoFees(token);
        _accruedFees[token] = 0;
        address to = _config.feeRecipient;
        _sendStrict(token, to, amount);
        emit FeesWithdrawn(token, to, amount);
    }

    /// @notice Disabled: an ownerless contract could never be unpaused.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceOwnershipDisabled();
    }

    // ------------------------------------------------------------------------------------------------ views

    /// @inheritdoc IBillingEscrow
    function invoiceKey(Invoice calldata invoice) public view returns (bytes32) {
        // The struct is eleven static words, so its EIP-712 encoding is the type hash followed by the calldata as is.
        // Hashing the calldata directly saves ~600 gas on every operation over abi.encode. A non-canonical
        // encoding (dirty high bits) yields a different digest, so it can match neither a signature nor a payment.
        bytes32 structHash;
        bytes32 typeHash = INVOICE_TYPEHASH;
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            let buffer := mload(0x40)
            mstore(buffer, typeHash)
            calldatacopy(add(buffer, 0x20), invoice, 0x160)
            structHash := keccak256(buffer, 0x180)
        }
        return _hashTypedDataV4(structHash);
    }

    /// @notice The EIP-712 domain separator of this deployment.
    function DOMAIN_SEPARATOR() external view returns (bytes32) { // solhint-disable-line func-name-mixedcase
        return _domainSeparatorV4();
    }

    /// @inheritdoc IBillingEscrow
    function payment(bytes32 key) external view returns (Payment memory) {
        return _payments[key];
    }

    /// @inheritdoc IBillingEscrow
    function heldAmount(Invoice calldata invoice) external view returns (uint256) {
        bytes32 key = invoiceKey(invoice);
        Payment memory record = _payments[key];
        if (record.status != PaymentStatus.Held && record.status != PaymentStatus.Disputed) return 0;
        return _held(invoice, key, record);
    }

    /// @inheritdoc IBillingEscrow
    function refundedAmount(Invoice calldata invoice) external view returns (uint256) {
        bytes32 key = invoiceKey(invoice);
        Payment memory record = _payments[key];
        // A single full refund skips the `_refunded` write; every other refund path records the running total.
        if (record.status == PaymentStatus.Refunded && !record.partiallyRefunded) return invoice.amount;
        return _refunded[key];
    }

    /// @inheritdoc IBillingEscrow
    function depositAddress(Invoice calldata invoice) external view returns (address) {
        return Clones.predictDeterministicAddress(DEPOSIT_IMPLEMENTATION, invoiceKey(invoice));
    }

    /// @inheritdoc IBillingEscrow
    function depositHeld(bytes32 key, address token) external view returns (uint256) {
        return _depositHeld[key][token];
    }

    /// @inheritdoc IBillingEscrow
    function refundAddress(Invoice calldata invoice) external view returns (address) {
        return _depositRefundAddress(invoice, invoiceKey(invoice));
    }

    /// @inheritdoc IBillingEscrow
    function accruedFees(address token) external view returns (uint256) {
        return _accruedFees[token];
    }

    /// @inheritdoc IBillingEscrow
    function config() external view returns (address feeRecipient, uint16 feeBps, bool paused) {
        Config memory current = _config;
        return (current.feeRecipient, current.feeBps, current.paused);
    }

    // ------------------------------------------------------------------------------------------------ internals

    /// @dev The payer of a wallet payment: the caller, who must be the signed payer when the invoice names one.
    function _walletPayer(Invoice calldata invoice) private view returns (address) {
        if (invoice.payer != address(0) && invoice.payer != msg.sender) revert WrongPayer(invoice.payer, msg.sender);
        return msg.sender;
    }

    /// @dev Checks a payment against the invoice and records it as held by `payer` (zero: not known yet, for a
    /// deposit). Every way of paying goes through here; the caller then takes the money.
    function _acceptPayment(Invoice calldata invoice, bytes calldata signature, address payer)
        private
        returns (bytes32 key)
    {
        Config memory current = _config;
        if (current.paused) revert PaymentsPaused();
        if (invoice.amount == 0) revert ZeroAmount();
        if (block.timestamp >= invoice.expiresAt) revert InvoiceExpired(invoice.expiresAt, block.timestamp);
        if (invoice.holdDuration > MAX_HOLD_DURATION) revert HoldTooLong(invoice.holdDuration, MAX_HOLD_DURATION);
        if (invoice.fulfillBy != 0 && block.timestamp > invoice.fulfillBy) revert FulfillByPassed(invoice.fulfillBy);
        if (current.feeBps > invoice.maxFeeBps) revert FeeAboveMaximum(current.feeBps, invoice.maxFeeBps);
        if (invoice.token != address(0)) _requireContract(invoice.token);

        key = invoiceKey(invoice);
        PaymentStatus status = _payments[key].status;
        if (status != PaymentStatus.None) revert InvoiceNotPayable(status);
        address signer = _merchants[invoice.merchantId].signer;
        if (signer == address(0)) revert UnknownMerchant(invoice.merchantId);
        if (!_isSignedBy(signer, key, signature)) revert InvalidSignature();

        uint40 releaseAt = uint40(block.timestamp) + invoice.holdDuration;
        _payments[key] = Payment({
            payer: payer,
            releaseAt: releaseAt,
            status: PaymentStatus.Held,
            feeBps: current.feeBps,
            fulfilled: false,
            partiallyRefunded: false,
            disputeOpened: false
        });
        emit InvoicePaid(
            key,
            invoice.merchantId,
            payer,
            invoice.invoiceId,
            invoice.token,
            invoice.amount,
            releaseAt,
            invoice.fulfillBy,
            current.feeBps
        );
    }

    /// @dev Sweeps the invoice's deposit address into a payment; see `sweepDeposit`.
    function _sweep(Invoice calldata invoice, bytes calldata signature) private returns (bytes32 key) {
        key = invoiceKey(invoice);
        // The payer of record: the signed payer, else a refund address set before the sweep, else unknown (zero).
        _acceptPayment(invoice, signature, _depositRefundAddress(invoice, key));
        uint256 received = _collectInto(key, invoice.token);
        uint256 amount = invoice.amount;
        if (received < amount) revert DepositShort(received, amount);
        // Anything above the amount waits for the refund address.
        if (received != amount) {
            unchecked {
                _holdDeposit(key, invoice.merchantId, invoice.token, received - amount);
            }
        }
    }

    /// @dev Moves the invoice's deposit address balance of `token` (zero: ETH) into the escrow, deploying the
    /// address's clone on first use; returns what arrived, by balance delta (a fee-on-transfer token delivers less).
    function _collectInto(bytes32 key, address token) private returns (uint256 received) {
        address implementation = DEPOSIT_IMPLEMENTATION;
        address deposit = Clones.predictDeterministicAddress(implementation, key);
        if (deposit.code.length == 0) Clones.cloneDeterministic(implementation, key);
        uint256 before = token == address(0) ? address(this).balance : IERC20(token).balanceOf(address(this));
        _collecting = deposit;
        DepositForwarder(payable(deposit)).collect(token);
        _collecting = address(0);
        uint256 current = token == address(0) ? address(this).balance : IERC20(token).balanceOf(address(this));
        received = current - before;
    }

    /// @dev Who gets back what arrived at the deposit address: the signed payer, else the refund address set for it.
    function _depositRefundAddress(Invoice calldata invoice, bytes32 key) private view returns (address) {
        return invoice.payer != address(0) ? invoice.payer : _refundTo[key];
    }

    function _holdDeposit(bytes32 key, uint64 merchantId, address token, uint256 amount) private {
        uint256 total = _depositHeld[key][token] + amount;
        _depositHeld[key][token] = total;
        emit DepositHeld(key, merchantId, token, amount, total);
    }

    /// @dev Records a refund of `amount` (at most what is held) and pays the payer.
    function _refund(
        Invoice calldata invoice,
        bytes32 key,
        Payment memory record,
        uint256 amount,
        RefundReason reason
    ) private {
        uint256 totalRefunded = _recordRefund(invoice, key, record, amount);
        _payRefund(invoice, key, record.payer, amount, totalRefunded, reason);
    }

    /// @dev Updates the payment for a refund of `amount`; returns the running total refunded.
    function _recordRefund(Invoice calldata invoice, bytes32 key, Payment memory record, uint256 amount)
        private
        returns (uint256 totalRefunded)
    {
        uint256 alreadyRefunded = record.partiallyRefunded ? _refunded[key] : 0;
        uint256 held = invoice.amount - alreadyRefunded;
        if (amount > held) revert RefundExceedsHeld(amount, held);
        unchecked {
            totalRefunded = alreadyRefunded + amount; // <= invoice.amount
        }
        Payment storage stored = _payments[key];
        if (amount == held) stored.status = PaymentStatus.Refunded;
        if (amount != invoice.amount) {
            // Only a single refund of the whole amount leaves the running total unrecorded (the common case).
            stored.partiallyRefunded = true;
            _refunded[key] = totalRefunded;
        }
    }

    function _payRefund(
        Invoice calldata invoice,
        bytes32 key,
        address payer,
        uint256 amount,
        uint256 totalRefunded,
        RefundReason reason
    ) private {
        // A deposit paid from an exchange has no payer until a refund address is set; the money stays held.
        if (payer == address(0)) revert RefundAddressUnknown(key);
        _payOrCredit(invoice.token, payer, amount);
        emit InvoiceRefunded(key, invoice.merchantId, payer, invoice.token, amount, totalRefunded, reason);
    }

    /// @dev Splits `amount` into the snapshotted protocol fee and the merchant's part, and pays the merchant.
    function _releaseToMerchant(Invoice calldata invoice, bytes32 key, uint16 feeBps, uint256 amount) private {
        uint256 fee = (amount * feeBps) / BPS;
        if (fee != 0) _accruedFees[invoice.token] += fee;
        address payout = _merchants[invoice.merchantId].payout;
        uint256 merchantAmount = amount - fee;
        _payOrCredit(invoice.token, payout, merchantAmount);
        emit InvoiceReleased(key, invoice.merchantId, payout, invoice.token, merchantAmount, fee);
    }

    function _held(Invoice calldata invoice, bytes32 key, Payment memory record) private view returns (uint256) {
        return record.partiallyRefunded ? invoice.amount - _refunded[key] : invoice.amount;
    }

    function _requireHeld(Payment memory record) private pure {
        if (record.status != PaymentStatus.Held && record.status != PaymentStatus.Disputed) {
            revert NotHeld(record.status);
        }
    }
}
