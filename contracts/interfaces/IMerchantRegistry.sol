// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Merchant} from "../types/DataTypes.sol";
import {ICommonErrors} from "./ICommonErrors.sol";

/// @title IMerchantRegistry
/// @notice On-chain registry of merchants: who controls each one, where its money goes, which key signs.
/// @dev The owner alone moves the payout address, so a stolen signer key can never redirect funds. A record names
/// a signer only with that signer's consent: an EIP-712 `SignerConsent(uint64 merchantId,address owner,
/// address payout,uint256 nonce,uint256 deadline)` in the escrow's domain ("chainbill BillingEscrow", "1", chain id,
/// escrow address), signed by the signer (ECDSA, or ERC-1271 for contract signers). `owner` is the caller, so a
/// copied or front-run transaction from another sender fails; `nonce` is the signer's current `nonces(signer)`, so
/// a consent works once. A caller naming itself as signer needs no signature.
interface IMerchantRegistry is ICommonErrors {
    /// @notice A merchant was registered.
    event MerchantRegistered(uint64 indexed merchantId, address indexed owner, address payout, address signer);
    /// @notice A merchant's payout address changed.
    event MerchantPayoutChanged(uint64 indexed merchantId, address payout);
    /// @notice A merchant's signer changed; invoices signed by the previous signer can no longer be paid.
    event MerchantSignerChanged(uint64 indexed merchantId, address signer);
    /// @notice A merchant's owner proposed a new owner.
    event MerchantOwnershipTransferStarted(uint64 indexed merchantId, address indexed pendingOwner);
    /// @notice A merchant's ownership moved to a new owner.
    event MerchantOwnershipTransferred(uint64 indexed merchantId, address indexed owner);

    /// @notice The merchant id is not registered.
    error UnknownMerchant(uint64 merchantId);
    /// @notice The caller is not the merchant's owner.
    error NotMerchantOwner(uint64 merchantId, address caller);
    /// @notice The caller is neither the merchant's owner nor its signer.
    error NotMerchantOperator(uint64 merchantId, address caller);
    /// @notice The caller is not the merchant's pending owner.
    error NotPendingMerchantOwner(uint64 merchantId, address caller);
    /// @notice The signer's consent expired (`block.timestamp > deadline`).
    error SignerConsentExpired(uint256 deadline, uint256 nowTime);
    /// @notice The signature is not `signer`'s consent to exactly this record: the arguments are the consent the
    /// contract checked (a front-run shows another `owner`, a replay a later `nonce`, and a consent signed for
    /// another payout, merchant id, chain or deployment does not match them).
    error InvalidSignerConsent(
        address signer, uint64 merchantId, address owner, address payout, uint256 nonce, uint256 deadline
    );

    /// @notice Registers the caller as the owner of a new merchant, with the signer's consent.
    /// @param payout Receives releases and withdrawals. Neither the escrow nor a contract that reports this registry
    /// as its `REGISTRY()`, such as the SubscriptionManager (`InvalidRecipient`): money sent there would be stranded.
    /// @param signer Signs invoices and operates day to day.
    /// @param deadline Last second (inclusive) at which the consent is valid; ignored when the caller is the signer.
    /// @param signerSignature The signer's EIP-712 `SignerConsent` with merchantId 0 (a new record), owner = the
    /// caller, this payout, the signer's current nonce and `deadline`. Empty when the caller is the signer.
    /// @return merchantId The new merchant's id (sequential from 1).
    function registerMerchant(address payout, address signer, uint256 deadline, bytes calldata signerSignature)
        external
        returns (uint64 merchantId);

    /// @notice Sets where the merchant's money goes. Owner only. Like a registration's payout, it can be neither the
    /// escrow nor a contract that reports this registry as its `REGISTRY()` (SubscriptionManager): `InvalidRecipient`.
    function setMerchantPayout(uint64 merchantId, address payout) external;

    /// @notice Rotates the merchant's signer, with the new signer's consent. Owner only.
    /// @param deadline Last second (inclusive) at which the consent is valid; ignored when the caller is the signer.
    /// @param signerSignature The new signer's EIP-712 `SignerConsent` with this `merchantId`, owner = the caller,
    /// the merchant's current payout, the signer's current nonce and `deadline`. Empty when the caller is the signer.
    function setMerchantSigner(uint64 merchantId, address signer, uint256 deadline, bytes calldata signerSignature)
        external;

    /// @notice Proposes a new owner, who must accept. Owner only.
    function transferMerchantOwnership(uint64 merchantId, address newOwner) external;

    /// @notice Accepts a pending ownership transfer. Pending owner only.
    function acceptMerchantOwnership(uint64 merchantId) external;

    /// @notice Returns a merchant's record (all zero when unknown).
    function merchant(uint64 merchantId) external view returns (Merchant memory);

    /// @notice Whether `account` may operate the merchant (its owner or its signer).
    function isMerchantOperator(uint64 merchantId, address account) external view returns (bool);

    /// @notice Number of merchants registered so far (the highest id).
    function merchantCount() external view returns (uint64);

    /// @notice EIP-712 type hash of a signer's consent: `keccak256("SignerConsent(uint64 merchantId,address owner,
    /// address payout,uint256 nonce,uint256 deadline)")`.
    function SIGNER_CONSENT_TYPEHASH() external view returns (bytes32); // solhint-disable-line func-name-mixedcase

    /// @notice The nonce `signer`'s next consent must carry; each accepted consent uses one.
    function nonces(address signer) external view returns (uint256);
}
