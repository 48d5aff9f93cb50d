// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IMerchantRegistry} from "../interfaces/IMerchantRegistry.sol";
import {Merchant} from "../types/DataTypes.sol";

/// @title MerchantRegistry
/// @notice Merchant records and the checks every merchant-side operation uses.
/// @dev Lives inside BillingEscrow so that `pay` reads the signer without an external call;
/// SubscriptionManager reads it through `IMerchantRegistry`.
abstract contract MerchantRegistry is IMerchantRegistry {
    uint64 private _merchantCount;
    mapping(uint64 merchantId => Merchant) internal _merchants;

    /// @inheritdoc IMerchantRegistry
    function registerMerchant(address payout, address signer) external returns (uint64 merchantId) {
        if (payout == address(0) || signer == address(0)) revert ZeroAddress();
        _requireRecipient(payout);
        merchantId = ++_merchantCount;
        _merchants[merchantId] = Merchant({owner: msg.sender, payout: payout, signer: signer, pendingOwner: address(0)});
        emit MerchantRegistered(merchantId, msg.sender, payout, signer);
    }

    /// @inheritdoc IMerchantRegistry
    function setMerchantPayout(uint64 merchantId, address payout) external {
        _requireMerchantOwner(merchantId);
        if (payout == address(0)) revert ZeroAddress();
        _requireRecipient(payout);
        _merchants[merchantId].payout = payout;
        emit MerchantPayoutChanged(merchantId, payout);
    }

    /// @inheritdoc IMerchantRegistry
    function setMerchantSigner(uint64 merchantId, address signer) external {
        _requireMerchantOwner(merchantId);
        if (signer == address(0)) revert ZeroAddress();
        _merchants[merchantId].signer = signer;
        emit MerchantSignerChanged(merchantId, signer);
    }

    /// @inheritdoc IMerchantRegistry
    function transferMerchantOwnership(uint64 merchantId, address newOwner) external {
        _requireMerchantOwner(merchantId);
        if (newOwner == address(0)) revert ZeroAddress();
        _merchants[merchantId].pendingOwner = newOwner;
        emit MerchantOwnershipTransferStarted(merchantId, newOwner);
    }

    /// @inheritdoc IMerchantRegistry
    function acceptMerchantOwnership(uint64 merchantId) external {
        Merchant storage record = _merchants[merchantId];
        if (record.pendingOwner != msg.sender) revert NotPendingMerchantOwner(merchantId, msg.sender);
        record.owner = msg.sender;
        record.pendingOwner = address(0);
        emit MerchantOwnershipTransferred(merchantId, msg.sender);
    }

    /// @inheritdoc IMerchantRegistry
    function merchant(uint64 merchantId) external view returns (Merchant memory) {
        return _merchants[merchantId];
    }

    /// @inheritdoc IMerchantRegistry
    function isMerchantOperator(uint64 merchantId, address account) public view returns (bool) {
        Merchant storage record = _merchants[merchantId];
        // The signer is checked first: it is the key the service operates with, so the common case costs one read.
        return account != address(0) && (record.signer == account || record.owner == account);
    }

    /// @inheritdoc IMerchantRegistry
    function merchantCount() external view returns (uint64) {
        return _merchantCount;
    }

    function _requireMerchantOwner(uint64 merchantId) internal view {
        address owner = _merchants[merchantId].owner;
        if (owner == address(0)) revert UnknownMerchant(merchantId);
        if (owner != msg.sender) revert NotMerchantOwner(merchantId, msg.sender);
    }

    /// @dev Tokens paid to the escrow itself would be stranded outside its accounting.
    function _requireRecipient(address recipient) internal view {
        if (recipient == address(this)) revert InvalidRecipient(recipient);
    }

    function _requireMerchantOperator(uint64 merchantId) internal view {
        if (!isMerchantOperator(merchantId, msg.sender)) revert NotMerchantOperator(merchantId, msg.sender);
    }
}
