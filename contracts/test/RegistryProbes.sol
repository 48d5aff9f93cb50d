// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

/// @title RegistryBoundStub
/// @notice A contract answering `REGISTRY()` the way the tests need: an honest address (like a SubscriptionManager
/// bound to that registry), oversized return data, a gas-burning loop, or a revert.
contract RegistryBoundStub {
    /// @notice How `REGISTRY()` answers.
    enum Mode {
        Honest,
        ReturnDataBomb,
        BurnGas,
        Revert
    }

    /// @notice The registry this contract claims to be bound to.
    address public immutable BOUND_TO;
    /// @notice The behaviour of `REGISTRY()`.
    Mode public immutable MODE;

    /// @notice Thrown by `REGISTRY()` in `Revert` mode.
    error NotARegistryUser();

    /// @notice Creates the stub claiming `boundTo` in `mode`.
    constructor(address boundTo, Mode mode) {
        BOUND_TO = boundTo;
        MODE = mode;
    }

    /// @notice The registry this contract says it is bound to, answered according to `MODE`.
    function REGISTRY() external view returns (address) { // solhint-disable-line func-name-mixedcase
        if (MODE == Mode.Revert) revert NotARegistryUser();
        if (MODE == Mode.BurnGas) {
            uint256 spin;
            while (gasleft() > 1_000) spin += 1;
            return address(uint160(spin) | uint160(BOUND_TO));
        }
        if (MODE == Mode.ReturnDataBomb) {
            address boundTo = BOUND_TO;
            // solhint-disable-next-line no-inline-assembly
            assembly {
                mstore(0, boundTo)
                return(0, 20000) // 20 kB led by the bound address: a caller copying it all pays for the memory
            }
        }
        return BOUND_TO;
    }
}
