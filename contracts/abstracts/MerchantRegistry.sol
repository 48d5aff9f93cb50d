// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {Nonces} from "@openzeppelin/contracts/utils/Nonces.sol";
import {IMerchantRegistry} from "../interfaces/IMerchantRegistry.sol";
import {Merchant} from "../types/DataTypes.sol";

/// @title MerchantRegistry
/// @notice Merchant records and the checks every merchant-side operation uses.
/// @dev Lives inside BillingEscrow so that `pay` reads the signer without an external call;
/// SubscriptionManager reads it through `IMerchantRegistry`. A record names a signer only with that signer's
/// EIP-712 consent, in the escrow's domain (so bound to this chain and deployment).
abstract contract MerchantRegistry is IMerchantRegistry, EIP712, Nonces {
    /// @inheritdoc IMerchantRegistry
    bytes32 public constant override SIGNER_CONSENT_TYPEHASH =
        keccak256("SignerConsent(uint64 merchantId,address owner,address payout,uint256 nonce,uint256 deadline)");

    /// @dev Selector of `REGISTRY()`, the getter of a contract built on this registry (SubscriptionManager).
    bytes4 private constant REGISTRY_SELECTOR = bytes4(keccak256("REGISTRY()"));
    /// @dev Gas forwarded to a recipient's `REGISTRY()`: an immutable getter needs a few hundred; the bound keeps a
    /// hostile contract from making a registration or payout change expensive.
    uint256 private constant REGISTRY_PROBE_GAS = 10_000;

    uint64 private _merchantCount;
    mapping(uint64 merchantId => Merchant) internal _merchants;

    /// @inheritdoc IMerchantRegistry
    function registerMerchant(address payout, address signer, uint256 deadline, bytes calldata signerSignature)
        external
        returns (uint64 merchantId)
    {
        if (payout == address(0) || signer == address(0)) revert ZeroAddress();
        _requireRecipient(payout);
        // The id is not known before the transaction is mined, so a registration consent names merchant 0.
        _useSignerConsent(0, payout, signer, deadline, signerSignature);
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
    function setMerchantSigner(uint64 merchantId, address signer, uint256 deadline, bytes calldata signerSignature)
        external
    {
        _requireMerchantOwner(merchantId);
        if (signer == address(0)) revert ZeroAddress();
        Merchant storage record = _merchants[merchantId];
        _useSignerConsent(merchantId, record.payout, signer, deadline, signerSignature);
        record.signer = signer;
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

    /// @inheritdoc IMerchantRegistry
    function nonces(address signer) public view override(IMerchantRegistry, Nonces) returns (uint256) {
        return super.nonces(signer);
    }

    function _requireMerchantOwner(uint64 merchantId) internal view {
        address owner = _merchants[merchantId].owner;
        if (owner == address(0)) revert UnknownMerchant(merchantId);
        if (owner != msg.sender) revert NotMerchantOwner(merchantId, msg.sender);
    }

    /// @dev Refuses recipients where money would be stranded outside every accounting: the escrow itself, and any
    /// contract that says it is built on this registry (its SubscriptionManager, which the escrow, deployed first,
    /// cannot otherwise know). Used for merchant payouts and the fee recipient.
    function _requireRecipient(address recipient) internal view {
        if (recipient == address(this) || _isBoundToThisRegistry(recipient)) revert InvalidRecipient(recipient);
    }

    /// @dev Whether `recipient` has code and answers `REGISTRY()` with exactly this contract's address (32 bytes).
    /// Assembly, measured reason: a Solidity call copies all the return data, so a contract returning megabytes
    /// would make the caller run out of gas; this copies at most 32 bytes and forwards bounded gas. Any failure or
    /// other answer means "not bound".
    function _isBoundToThisRegistry(address recipient) private view returns (bool) {
        if (recipient.code.length == 0) return false;
        bytes4 selector = REGISTRY_SELECTOR;
        uint256 probeGas = REGISTRY_PROBE_GAS;
        bool success;
        uint256 size;
        uint256 answer;
        // solhint-disable-next-line no-inline-assembly
        assembly ("memory-safe") {
            mstore(0x00, selector)
            success := staticcall(probeGas, recipient, 0x00, 0x04, 0x00, 0x20)
            size := returndatasize()
            answer := mload(0x00)
        }
        return success && size == 32 && answer == uint256(uint160(address(this)));
    }

    function _requireMerchantOperator(uint64 merchantId) internal view {
        if (!isMerchantOperator(merchantId, msg.sender)) revert NotMerchantOperator(merchantId, msg.sender);
    }

    /// @dev ECDSA first, ERC-1271 only when that fails: unlike OpenZeppelin's `isValidSignatureNow`, the common
    /// case (an EOA signer) skips the signer's code-size check, a cold account access (2,600 gas) on every payment.
    function _isSignedBy(address signer, bytes32 digest, bytes calldata signature) internal view returns (bool) {
        (address recovered, ECDSA.RecoverError error,) = ECDSA.tryRecoverCalldata(digest, signature);
        if (error == ECDSA.RecoverError.NoError && recovered == signer) return true;
        return SignatureChecker.isValidERC1271SignatureNowCalldata(signer, digest, signature);
    }

    /// @dev Checks and consumes `signer`'s consent to sign for the record (`merchantId`, owner = caller, `payout`).
    /// The caller naming itself needs no signature: sending the transaction is its consent.
    function _useSignerConsent(
        uint64 merchantId,
        address payout,
        address signer,
        uint256 deadline,
        bytes calldata signature
    ) private {
        if (signer == msg.sender) return;
        if (block.timestamp > deadline) revert SignerConsentExpired(deadline, block.timestamp);
        uint256 nonce = _useNonce(signer);
        bytes32 digest = _hashTypedDataV4(
            keccak256(abi.encode(SIGNER_CONSENT_TYPEHASH, merchantId, msg.sender, payout, nonce, deadline))
        );
        if (!_isSignedBy(signer, digest, signature)) {
            revert InvalidSignerConsent(signer, merchantId, msg.sender, payout, nonce, deadline);
        }
    }
}
