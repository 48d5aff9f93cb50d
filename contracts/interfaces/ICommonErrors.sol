// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title ICommonErrors
/// @notice Errors shared by every chainbill contract.
interface ICommonErrors {
    /// @notice A required address was zero.
    error ZeroAddress();
    /// @notice Money cannot be sent to this address: the contract itself, or (in the escrow) a contract built on its
    /// registry such as its SubscriptionManager, where it would be stranded outside any accounting.
    error InvalidRecipient(address recipient);
    /// @notice A required amount was zero.
    error ZeroAmount();
    /// @notice Renouncing ownership is disabled: an ownerless contract could stay paused forever.
    error RenounceOwnershipDisabled();
}
