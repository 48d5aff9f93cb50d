// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";

/// @notice On every transfer, calls `target` with `payload` first (like an ERC-777 hook) and records the
/// outcome, so tests can prove the billing contracts refuse to be re-entered.
contract ReentrantToken is ERC20 {
    address public victim;
    bytes public payload;
    bool public attackSucceeded;
    bytes public attackRevertData;
    bool private _attacking;

    constructor() ERC20("Reentrant Token", "RNT") {}

    function mint(address to, uint256 amount) external {
        _mint(to, amount);
    }

    function arm(address target_, bytes calldata payload_) external {
        victim = target_;
        payload = payload_;
    }

    function _update(address from, address to, uint256 value) internal override {
        if (victim != address(0) && !_attacking && from != address(0)) {
            _attacking = true;
            (attackSucceeded, attackRevertData) = victim.call(payload);
            _attacking = false;
        }
        super._update(from, to, value);
    }
}
