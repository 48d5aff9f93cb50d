/**
 * The demo merchant of `npm start`: created once through the API with the admin key (its API key kept in
 * `.data/demo-merchant.json`), then on every run registered on each chain that does not know it yet (a
 * restarted local chain forgets it) by sending the registration transaction the API returns from the owner
 * wallet, and its operator key topped up with ETH for gas. Exactly what an integrator does by hand.
 */
import type { Address, Hex, PublicClient } from "viem";
import { ApiError, type ApiClient } from "./api-client";
import type { Wallet } from "./local-chain";
import { readJson, writeJson, type DemoMerchant } from "./stack-files";
import { waitFor } from "./processes";

interface ChainRegistration {
  chainId: number;
  registered: boolean;
  onchainMerchantId: string | null;
  operatorBalanceWei: string | null;
  registrationTransaction: { to: Address; data: Hex; value: string } | null;
}

export interface MerchantView {
  id: string;
  name: string;
  operatorAddress: Address;
  payoutAddress: Address;
  ownerAddress: Address;
  createdAt: string;
  chains: ChainRegistration[];
}

export interface DemoChain {
  id: number;
  client: PublicClient;
  /** The merchant owner's wallet on this chain: sends the registration and funds the operator. */
  owner: Wallet;
  /** The operator key is topped up to this many wei. */
  operatorFundingWei: bigint;
}

export async function ensureDemoMerchant(options: {
  api: ApiClient;
  adminKey: string;
  file: string;
  chains: DemoChain[];
  log: (line: string) => void;
}): Promise<{ merchant: MerchantView; stored: DemoMerchant; reused: boolean }> {
  const { api, adminKey, file, chains, log } = options;
  const owner = chains[0].owner.account.address;

  let stored = readJson<DemoMerchant>(file);
  let merchant: MerchantView | undefined;
  let reused = false;
  if (stored) {
    try {
      merchant = await api.request<MerchantView>("GET", "/v1/merchants/me", { key: stored.apiKey });
      reused = true;
      log(`reusing demo merchant ${merchant.id} (key from ${file})`);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 401) throw error;
      log(`the stored demo merchant key is unknown to this API store (another database?): creating a new merchant`);
    }
  }
  if (!merchant) {
    const created = await api.request<{ merchant: MerchantView; apiKey: { secret: string } }>("POST", "/v1/merchants", {
      key: adminKey,
      body: { name: "Demo merchant", payoutAddress: owner, ownerAddress: owner },
    });
    merchant = created.merchant;
    stored = {
      id: merchant.id,
      name: merchant.name,
      apiKey: created.apiKey.secret,
      operatorAddress: merchant.operatorAddress,
      ownerAddress: merchant.ownerAddress as Address,
      payoutAddress: merchant.payoutAddress as Address,
      createdAt: merchant.createdAt,
    };
    writeJson(file, stored, 0o600);
    log(`created demo merchant ${merchant.id} (POST /v1/merchants, owner and payout ${owner}); key saved to ${file}`);
  }

  for (const registration of merchant.chains) {
    const chain = chains.find((candidate) => candidate.id === registration.chainId);
    if (!chain) continue;
    if (!registration.registered && registration.registrationTransaction) {
      const { to, data, value } = registration.registrationTransaction;
      const hash = await chain.owner.sendTransaction({ to, data, value: BigInt(value), chain: null });
      const receipt = await chain.client.waitForTransactionReceipt({ hash });
      if (receipt.status !== "success") throw new Error(`registration transaction ${hash} reverted on chain ${chain.id}`);
      log(`registered it on chain ${chain.id} from the owner wallet (registerMerchant, tx ${hash})`);
    }
    const balance = await chain.client.getBalance({ address: merchant.operatorAddress });
    if (balance < chain.operatorFundingWei) {
      const hash = await chain.owner.sendTransaction({ to: merchant.operatorAddress, value: chain.operatorFundingWei - balance, chain: null });
      await chain.client.waitForTransactionReceipt({ hash });
      log(`funded its operator ${merchant.operatorAddress} on chain ${chain.id} with ETH for gas`);
    }
  }

  const key = stored!.apiKey;
  await waitFor(
    "the indexer to see the demo merchant's registration",
    async () => {
      merchant = await api.request<MerchantView>("GET", "/v1/merchants/me", { key });
      return merchant.chains.every((registration) => registration.registered);
    },
    60_000,
  );
  return { merchant: merchant!, stored: stored!, reused };
}
