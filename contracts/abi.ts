/**
 * The contracts' ABIs `as const` live in the SDK (sdk/src/abi.ts, written by scripts/export-abi.ts and published
 * as `@chainbill/sdk`); the server, the indexer, scripts and tests keep importing them from here.
 */
export * from "../sdk/src/abi";
