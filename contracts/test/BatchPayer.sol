// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

import {IBillingEscrow} from "../interfaces/IBillingEscrow.sol";
import {Invoice} from "../types/DataTypes.sol";

/// @notice Benchmark helper: pays many ETH invoices in one transaction, so blocks carry hundreds of real
/// `InvoicePaid` events (indexer backfill and 100k-entry statement benchmarks).
contract BatchPayer {
    function payAll(IBillingEscrow escrow, Invoice[] calldata invoices, bytes[] calldata signatures) external payable {
        for (uint256 i = 0; i < invoices.length; ++i) {
            escrow.pay{value: invoices[i].amount}(invoices[i], signatures[i]);
        }
    }
}
