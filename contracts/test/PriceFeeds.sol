// SPDX-License-Identifier: MIT
pragma solidity 0.8.30;

// Chainlink's own mock price feed (AggregatorV3Interface: latestRoundData, decimals, updateAnswer,
// updateRoundData), compiled so local deployments and tests can deploy it as `MockV3Aggregator`:
// scripts/deploy.ts puts one per pair (ETH/USD, USDC/USD, BTC/USD, EUR/USD, CNY/USD) on local chains.
import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/tests/MockV3Aggregator.sol";

/// @notice Marker so this file compiles to an artifact of its own; the feeds are `MockV3Aggregator`.
abstract contract PriceFeedsImport is MockV3Aggregator {}
