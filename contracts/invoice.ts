/**
 * The EIP-712 invoice and signer-consent helpers live in the SDK (sdk/src/invoice.ts, published as
 * `@chainbill/sdk`); the server, scripts and tests keep importing them from here.
 */
export * from "../sdk/src/invoice";
