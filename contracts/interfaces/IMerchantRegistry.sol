// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {Merchant} from "../types/DataTypes.sol";
import {ICommonErrors} from "./ICommonErrors.sol";

/// @title IMerchantRegistry
/// @notice On-chain registry of merchants: who controls each one, where its money goes, which key signs.
/// @dev The owner alone moves the payout address, so a stolen signer key can never redirect funds.
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

    /// @notice Registers the caller as the owner of a new merchant.
    /// @param payout Receives releases and withdrawals.
    /// @param signer Signs invoices and operates day to day.
    /// @return merchantId The new merchant's id (sequential from 1).
    function registerMerchant(address payout, address signer) external returns (uint64 merchantId);

    /// @notice Sets where the merchant's money goes. Owner only.
    function setMerchantPayout(uint64 merchantId, address payout) external;

    /// @notice Rotates the merchant's signer. Owner only.
    function setMerchantSigner(uint64 merchantId, address signer) external;

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
}
