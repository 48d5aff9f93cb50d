/**
 * Where a merchant exists on-chain: its registry record on each configured chain, found by its operator
 * (signer) address. Plans, subscriptions and statements are always scoped to these identities, so one
 * merchant never sees another's on-chain objects.
 */
import type { Address } from "viem";
import type { ChainRuntime } from "../chains";
import type { ApiDeps, MerchantRecord } from "../env";
import type { OnchainMerchant } from "../indexed";
import { problem } from "../problems";

export interface Registration {
  chain: ChainRuntime;
  owner: OnchainMerchant;
}

/**
 * The merchant's registration on every configured chain where it is registered. Anyone may register a
 * merchant naming any signer, so when several records on one chain carry this signer, the one owned by the
 * merchant's owner wallet wins, then the oldest.
 */
export async function registrations(deps: ApiDeps, merchant: MerchantRecord): Promise<Registration[]> {
  const records = await deps.indexed.merchantsBySigner(merchant.signerAddress as Address);
  const found: Registration[] = [];
  for (const chain of deps.chains.values()) {
    const candidates = records
      .filter((record) => record.chainId === chain.id)
      .sort((a, b) => (a.merchantId < b.merchantId ? -1 : 1));
    const chosen = candidates.find((record) => record.owner.toLowerCase() === merchant.ownerAddress.toLowerCase()) ?? candidates[0];
    if (chosen) found.push({ chain, owner: { chainId: chain.id, merchantId: chosen.merchantId } });
  }
  return found;
}

/** The merchant's registration on `chainId`, or undefined (unknown chain or not registered there). */
export async function registrationOn(deps: ApiDeps, merchant: MerchantRecord, chainId: number): Promise<Registration | undefined> {
  if (!deps.chains.has(chainId)) return undefined;
  return (await registrations(deps, merchant)).find((registration) => registration.chain.id === chainId);
}

export function notRegistered(chainId: number): Error {
  return problem.conflict(
    "merchant-not-registered",
    "Merchant not registered on this chain",
    `The merchant is not registered on chain ${chainId} yet (or the registration is not indexed yet): send the registration transaction listed by GET /v1/merchants/me from the owner wallet first.`,
    { chainId },
  );
}
