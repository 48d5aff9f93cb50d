/**
 * A merchant's on-chain identity: the one function that decides which BillingEscrow registry record is this
 * merchant on a chain. Invoices, plans, subscriptions, statements, customer statements and `merchants/me` all
 * call it, so they can never disagree.
 *
 * The rule: the record **owned by the merchant's owner wallet and naming its operator key as signer**; when
 * the owner registered several such records, the oldest (lowest merchant id). Anyone may create registry
 * records, so nothing else is trusted: a record a stranger owns is never this merchant, whatever signer or
 * payout it names (and the contract only lets a record name a signer that consented to that owner).
 */
import type { Address } from "viem";
import type { ChainRuntime } from "../chains";
import type { ApiDeps, MerchantRecord } from "../env";
import type { IndexedMerchant, OnchainMerchant } from "../indexed";
import { problem } from "../problems";

export interface Registration {
  chain: ChainRuntime;
  owner: OnchainMerchant;
  /** The registry record as indexed (owner, payout, signer). */
  record: IndexedMerchant;
}

/** The merchant's identity on `chainId`, or undefined (a chain the API does not serve, or not registered there). */
export async function onchainIdentity(deps: ApiDeps, merchant: MerchantRecord, chainId: number): Promise<Registration | undefined> {
  const chain = deps.chains.get(chainId);
  if (!chain) return undefined;
  const record = await deps.indexed.merchantRecord(chainId, merchant.ownerAddress as Address, merchant.signerAddress as Address);
  if (!record) return undefined;
  return { chain, owner: { chainId, merchantId: record.merchantId }, record };
}

/** The merchant's identity on every chain the API serves where it is registered, in chain order. */
export async function onchainIdentities(deps: ApiDeps, merchant: MerchantRecord): Promise<Registration[]> {
  const found = await Promise.all([...deps.chains.keys()].map((chainId) => onchainIdentity(deps, merchant, chainId)));
  return found.filter((registration): registration is Registration => registration !== undefined);
}

/** The merchant's identity on `chainId`, or a 409 `merchant-not-registered` that says what to do. */
export async function requireIdentity(deps: ApiDeps, merchant: MerchantRecord, chainId: number): Promise<Registration> {
  const registration = await onchainIdentity(deps, merchant, chainId);
  if (!registration) throw notRegistered(chainId);
  return registration;
}

export function notRegistered(chainId: number): Error {
  return problem.conflict(
    "merchant-not-registered",
    `The merchant has no registration on chain ${chainId} owned by its owner wallet and naming its operator key (or it is not indexed yet): send the \`registrationTransaction\` listed for chain ${chainId} in GET /v1/merchants/me from the owner wallet, wait until \`registered\` is true, then retry.`,
    { chainId },
  );
}
