/**
 * @chainbill/sdk: chainbill for dApps and integrators. The contracts' ABIs (`as const`, for viem's types), the
 * EIP-712 invoice domain, types and signing helpers, deposit addresses, the addresses of public deployments,
 * `payInvoice` (pays an invoice from a wallet with the API's instructions), the typed API client, and webhook
 * verification. Runs in Node.js ≥ 20 and browsers; `viem` is a peer dependency.
 */
export { billingEscrowAbi, billingEscrowPaymentAbi, subscriptionManagerAbi, balanceReaderAbi, balanceReaderBytecode } from "./abi.ts";
export * from "./invoice.ts";
export * from "./enums.ts";
export * from "./deployments.ts";
export * from "./pay.ts";
export * from "./client.ts";
export * from "./webhooks.ts";
export { formatUnits as formatAmount, parseUnits as parseAmount } from "viem";
