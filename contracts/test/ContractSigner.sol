// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IERC1271} from "@openzeppelin/contracts/interfaces/IERC1271.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";

/// @title ContractSigner
/// @notice A minimal ERC-1271 smart account: it accepts a hash signed by its key holder, and nothing else.
contract ContractSigner is IERC1271 {
    /// @notice The key whose ECDSA signatures the account accepts.
    address public immutable KEY;

    /// @notice Creates the account for `key`.
    constructor(address key) {
        KEY = key;
    }

    /// @inheritdoc IERC1271
    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(hash, signature);
        return error == ECDSA.RecoverError.NoError && recovered == KEY ? IERC1271.isValidSignature.selector : bytes4(0);
    }
}
