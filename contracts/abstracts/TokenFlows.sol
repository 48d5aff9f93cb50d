// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Permit} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Permit.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {ITokenFlows} from "../interfaces/ITokenFlows.sol";

/// @title TokenFlows
/// @notice Exact pulls (balance-delta checked), payouts that fall back to claimable balances, and claims.
/// @dev The zero token address stands for native ETH throughout.
abstract contract TokenFlows is ITokenFlows, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    /// @notice Gas forwarded with an ETH payout: enough for smart-contract wallets, bounded so that a receiver
    /// burning gas cannot make releases and refunds unaffordable for keepers.
    uint256 public constant NATIVE_PAYOUT_GAS = 50_000;

    mapping(address account => mapping(address token => uint256)) private _claimable;

    /// @inheritdoc ITokenFlows
    function claim(address token, address to) external nonReentrant returns (uint256 amount) {
        if (to == address(0)) revert ZeroAddress();
        amount = _claimable[msg.sender][token];
        if (amount == 0) revert NothingToClaim(msg.sender, token);
        _claimable[msg.sender][token] = 0;
        // A claim is pulled by its owner, so a failure reverts and the balance stays claimable.
        _sendStrict(token, to, amount);
        emit Claimed(msg.sender, token, to, amount);
    }

    /// @inheritdoc ITokenFlows
    function claimable(address account, address token) external view returns (uint256) {
        return _claimable[account][token];
    }

    /// @dev Pulls exactly `amount` of `token` from `from`, refusing tokens that deliver less (fee-on-transfer).
    function _pullExact(address token, address from, uint256 amount) internal {
        IERC20 erc20 = IERC20(token);
        uint256 balanceBefore = erc20.balanceOf(address(this));
        erc20.safeTransferFrom(from, address(this), amount);
        uint256 received = erc20.balanceOf(address(this)) - balanceBefore;
        if (received != amount) revert InexactTransfer(amount, received);
    }

    /// @dev Applies an EIP-2612 permit, ignoring failure: a permit front-run by someone else already set the
    /// allowance, and a real shortfall then fails in the pull with the token's own error.
    function _tryPermit(address token, uint256 value, uint256 deadline, uint8 v, bytes32 r, bytes32 s) internal {
        // solhint-disable-next-line no-empty-blocks
        try IERC20Permit(token).permit(msg.sender, address(this), value, deadline, v, r, s) {} catch {}
    }

    /// @dev Pays `amount` to `to`; if `to` cannot receive, credits it as claimable instead of reverting.
    function _payOrCredit(address token, address to, uint256 amount) internal {
        if (amount == 0) return;
        bool delivered;
        if (token == address(0)) {
            (delivered,) = to.call{value: amount, gas: NATIVE_PAYOUT_GAS}("");
        } else {
            delivered = IERC20(token).trySafeTransfer(to, amount);
        }
        if (!delivered) {
            _claimable[to][token] += amount;
            emit PayoutDeferred(to, token, amount);
        }
    }

    /// @dev Credits `amount` to `account` as claimable without attempting a transfer.
    function _credit(address token, address account, uint256 amount) internal {
        _claimable[account][token] += amount;
        emit PayoutDeferred(account, token, amount);
    }

    /// @dev Sends `amount` to `to`, reverting on any failure.
    function _sendStrict(address token, address to, uint256 amount) internal {
        if (token == address(0)) {
            (bool sent,) = to.call{value: amount}("");
            if (!sent) revert NativeTransferFailed(to, amount);
        } else {
            IERC20(token).safeTransfer(to, amount);
        }
    }

    function _requireContract(address token) internal view {
        if (token.code.length == 0) revert TokenNotContract(token);
    }
}
