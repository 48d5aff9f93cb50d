/**
 * chainbill's contracts for the server, scripts and tests: typed ABIs, the EIP-712 invoice domain and types, the
 * merchant signer-consent types, signing helpers and enums (all from the SDK, sdk/src, published as
 * `@chainbill/sdk` for dApps), and deployed addresses per chain read from `deployments/` (server side).
 * TypeChain types for ethers users are generated into `typechain-types/` by `npm run compile`.
 */
export { billingEscrowAbi, subscriptionManagerAbi } from "./abi";
export * from "./invoice";
export * from "./addresses";
export * from "../sdk/src/enums";
