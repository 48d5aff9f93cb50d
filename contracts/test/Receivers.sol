// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @notice A payout address that refuses ETH (no `receive`, reverting fallback), like many contracts.
contract RevertingReceiver {
    error NoThanks();

    fallback() external payable {
        revert NoThanks();
    }

    /// @notice Lets the contract act (e.g. pay or claim) through `target` so it can be a payer or merchant.
    function execute(address target, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory result) = target.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }
}

/// @notice A payout address that tries to re-enter the billing contract when it receives ETH.
contract ReentrantReceiver {
    address public victim;
    bytes public payload;
    bool public attackAttempted;
    bool public attackSucceeded;

    function arm(address target_, bytes calldata payload_) external {
        victim = target_;
        payload = payload_;
    }

    function execute(address target_, bytes calldata data) external payable returns (bytes memory) {
        (bool ok, bytes memory result) = target_.call{value: msg.value}(data);
        if (!ok) {
            assembly {
                revert(add(result, 32), mload(result))
            }
        }
        return result;
    }

    receive() external payable {
        if (victim == address(0)) return;
        attackAttempted = true;
        (bool ok,) = victim.call(payload);
        attackSucceeded = ok;
        // Fail the payout when the re-entry was refused, as an attacker's contract would.
        require(ok, "reentry refused");
    }
}
