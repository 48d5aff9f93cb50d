// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

/// @title IDepositCollector
/// @notice The escrow side of a deposit address: where its ETH goes when the escrow collects it.
interface IDepositCollector {
    /// @notice Takes the ETH of the deposit address the escrow is collecting from; refuses any other sender.
    function acceptDeposit() external payable;
}

/// @title DepositForwarder
/// @notice The code behind every invoice's deposit address. Each address is a minimal clone (EIP-1167) of one
/// DepositForwarder that its escrow deploys with CREATE2 (salt = the invoice's EIP-712 key) the first time it
/// collects from it. Until then the address is a plain account that takes any transfer.
/// @dev One rule: only the escrow that deployed the implementation can move anything, and only to itself. The
/// escrow decides where the money goes next (the invoice's payment, the refund address, or the merchant's
/// recovery of a wrong token) and accounts what arrived by balance delta.
contract DepositForwarder {
    using SafeERC20 for IERC20;

    /// @notice The escrow this forwarder works for.
    address public immutable ESCROW;

    /// @notice A caller other than the escrow.
    error NotEscrow(address caller);

    constructor() {
        ESCROW = msg.sender;
    }

    /// @notice Plain ETH transfers to a deposit address whose clone already exists (about 24k gas instead of 21k).
    receive() external payable {} // solhint-disable-line no-empty-blocks

    /// @notice Hands the address's whole balance of `token` (the zero address: ETH) to the escrow. Escrow only.
    function collect(address token) external returns (uint256 amount) {
        address escrow = ESCROW;
        if (msg.sender != escrow) revert NotEscrow(msg.sender);
        if (token == address(0)) {
            amount = address(this).balance;
            if (amount != 0) IDepositCollector(escrow).acceptDeposit{value: amount}();
        } else {
            amount = IERC20(token).balanceOf(address(this));
            if (amount != 0) IERC20(token).safeTransfer(escrow, amount);
        }
    }
}
