/**
 * Addresses of chainbill's public deployments, embedded when the SDK is built (from the repository's committed
 * `deployments/<chainId>.json`; local chains are never embedded). For your own deployment, or a chain not listed
 * here, pass the addresses explicitly: the API's invoices name their escrow in `payment.evm.contract`.
 */
import type { Address } from "viem";
import { DEPLOYMENTS } from "./generated/deployments.ts";

export interface ChainbillContractDeployment {
  address: Address;
  /** Block of the deployment transaction: where indexers start. */
  blockNumber: number;
}

export interface ChainbillDeployment {
  chainId: number;
  network: string;
  contracts: {
    BillingEscrow: ChainbillContractDeployment;
    SubscriptionManager: ChainbillContractDeployment;
  };
}

/** Every embedded deployment, by chain id. */
export const deployments: Readonly<Record<number, ChainbillDeployment>> = DEPLOYMENTS;

/** The public deployment on `chainId`, or undefined when this SDK version knows none. */
export function getDeployment(chainId: number): ChainbillDeployment | undefined {
  return Object.prototype.hasOwnProperty.call(DEPLOYMENTS, chainId) ? DEPLOYMENTS[chainId] : undefined;
}

export class UnknownDeploymentError extends Error {
  override name = "UnknownDeploymentError";
  constructor(readonly chainId: number) {
    const known = Object.keys(DEPLOYMENTS);
    super(
      `@chainbill/sdk knows no public chainbill deployment on chain ${chainId} ` +
        `(embedded: ${known.length ? known.join(", ") : "none"}). Pass the contract address explicitly ` +
        `(an invoice's payment.evm.contract, or your own deployments/${chainId}.json).`,
    );
  }
}

/** The public deployment on `chainId`; throws `UnknownDeploymentError` (saying to pass the address) when none. */
export function requireDeployment(chainId: number): ChainbillDeployment {
  const deployment = getDeployment(chainId);
  if (!deployment) throw new UnknownDeploymentError(chainId);
  return deployment;
}
