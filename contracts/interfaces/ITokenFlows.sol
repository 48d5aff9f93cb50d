// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ICommonErrors} from "./ICommonErrors.sol";

/// @title ITokenFlows
/// @notice Money movements shared by the billing contracts: exact pulls and payouts that never block.
/// @dev A payout to an address that cannot receive (a contract without `receive`, a blocklisted token holder)
/// becomes a claimable balance for that address instead of reverting the operation that paid it.
interface ITokenFlows is ICommonErrors {
    /// @notice A payout could not be delivered and was credited to `account` to claim later.
    event PayoutDeferred(address indexed account, address indexed token, uint256 amount);
    /// @notice `account` claimed a deferred payout to `to`.
    event Claimed(address indexed account, address indexed token, address to, uint256 amount);

    /// @notice The contract received a different amount than it pulled (fee-on-transfer or rebasing token).
    error InexactTransfer(uint256 expected, uint256 received);
    /// @notice `msg.value` does not match what the operation needs.
    error WrongNativeAmount(uint256 expected, uint256 sent);
    /// @notice The token address has no code.
    error TokenNotContract(address token);
    /// @notice Nothing to claim.
    error NothingToClaim(address account, address token);
    /// @notice Sending native ETH failed.
    error NativeTransferFailed(address to, uint256 amount);

    /// @notice Sends the caller's claimable balance of `token` (zero address = ETH) to `to`.
    function claim(address token, address to) external returns (uint256 amount);

    /// @notice Claimable balance of `account` in `token`.
    function claimable(address account, address token) external view returns (uint256);
}
