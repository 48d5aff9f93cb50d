// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title BalanceReader
/// @notice Never deployed: its creation code is run by an `eth_call` without a `to` address ("deployless"), and the
/// constructor returns the balances instead of code. The deposit watcher reads the balances of every open invoice's
/// deposit address (ETH or an ERC-20 each) with one call per block, however many there are.
contract BalanceReader {
    /// @notice Returns (as its "code") the ABI-encoded `uint256[]` of balances, one per account.
    /// @param tokens Per account, the token to read (the zero address: ETH).
    /// @param accounts The accounts.
    constructor(address[] memory tokens, address[] memory accounts) {
        uint256 count = accounts.length;
        uint256[] memory balances = new uint256[](count);
        for (uint256 i; i < count; ++i) {
            address token = tokens[i];
            if (token == address(0)) {
                balances[i] = accounts[i].balance;
            } else if (token.code.length != 0) {
                // A token that reverts or answers garbage reads as zero rather than failing the whole batch.
                (bool ok, bytes memory answer) =
                    token.staticcall(abi.encodeWithSelector(0x70a08231, accounts[i]));
                if (ok && answer.length >= 32) balances[i] = abi.decode(answer, (uint256));
            }
        }
        bytes memory encoded = abi.encode(balances);
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            return(add(encoded, 0x20), mload(encoded))
        }
    }
}
