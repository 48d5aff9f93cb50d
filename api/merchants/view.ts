/**
 * What the API shows of a merchant: its stored identity (owner, payout, operator) and, per chain, its on-chain
 * registration as `onchainIdentity` decides it, the operator's gas balance, and — while it is not registered —
 * the ready `registerMerchant` transaction for the owner wallet, with the operator's signed consent in it.
 */
import { requiredConfirmations } from "../webhooks/confirmations";
import { z } from "@hono/zod-openapi";
import { encodeFunctionData, getAddress, type Address } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { billingEscrowDomain, signMerchantRegistration } from "../../contracts/invoice";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { ApiDeps, MerchantRecord } from "../env";
import { onchainIdentity } from "./identity";

/** How long a registration consent stays valid. */
const CONSENT_VALIDITY_SECONDS = 7n * 86_400n;

const TransactionSchema = z
  .object({ to: z.string(), data: z.string(), value: z.string() })
  .openapi("RegistrationTransaction");

const ChainRegistrationSchema = z
  .object({
    chainId: z.number().int(),
    registered: z.boolean().openapi({ description: "A record owned by ownerAddress and naming operatorAddress is indexed" }),
    onchainMerchantId: z.string().nullable().openapi({ description: "Merchant id in BillingEscrow's registry" }),
    owner: z.string().nullable(),
    payout: z.string().nullable().openapi({ description: "Payout address of the on-chain record (the owner may change it on-chain)" }),
    escrow: z.string(),
    subscriptions: z.string(),
    operatorBalanceWei: z.string().nullable().openapi({ description: "ETH the operator key holds for gas (null: node unreachable)" }),
    registrationTransaction: TransactionSchema.nullable().openapi({
      description:
        "Send this from the owner wallet to register the merchant on this chain. It carries the operator's EIP-712 consent to be named signer of a record owned by the owner wallet with this payout (valid 7 days; ask again for a fresh one). Null once registered.",
    }),
    registrationExpiresAt: z.string().nullable().openapi({ description: "Until when `registrationTransaction` can be mined" }),
  })
  .openapi("ChainRegistration");

export const MerchantSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    operatorAddress: z.string().openapi({ description: "The merchant's signer: signs invoices, sends refunds" }),
    payoutAddress: z.string(),
    ownerAddress: z.string(),
    createdAt: z.string(),
    settings: z
      .object({
        subscriptionPayoutIntervalSeconds: z.number().int().openapi({
          description: "How often the keeper pays subscription income out to the payout address (seconds since the last payout); 0: only when you withdraw",
        }),
        confirmations: z.record(z.string(), z.number().int()).openapi({
          description: "Per chain id served: blocks (the payment's own included) after which a payment is `invoice.confirmed` — the merchant's setting or the chain's default",
          example: { "11155111": 3 },
        }),
        fiatCurrency: z.enum(["USD", "EUR", "CNY"]).openapi({ description: "The currency statements value entries in, and fiat prices default to" }),
        rateLockSeconds: z.number().int().openapi({ description: "How long a fiat price converted to a token stays locked (the invoice's expiry), 60 s – 24 h; default 900" }),
      })
      .openapi("MerchantSettings"),
    chains: z.array(ChainRegistrationSchema),
  })
  .openapi("Merchant");

export type MerchantView = z.infer<typeof MerchantSchema>;

/** The transaction the owner wallet sends to register the merchant on `chain`, with the operator's consent. */
async function registrationTransaction(deps: ApiDeps, merchant: MerchantRecord, chain: ChainRuntime) {
  const operator = deps.operator.account(merchant);
  const [nonce, now] = await Promise.all([
    chain.client.readContract({ address: chain.escrow, abi: billingEscrowAbi, functionName: "nonces", args: [operator.address] }),
    chainNow(chain),
  ]);
  const deadline = now + CONSENT_VALIDITY_SECONDS;
  const { args } = await signMerchantRegistration(operator, billingEscrowDomain(chain.id, chain.escrow), {
    owner: merchant.ownerAddress as Address,
    payout: merchant.payoutAddress as Address,
    nonce,
    deadline,
  });
  return {
    transaction: { to: chain.escrow, data: encodeFunctionData({ abi: billingEscrowAbi, functionName: "registerMerchant", args }), value: "0" },
    expiresAt: new Date(Number(deadline) * 1000).toISOString(),
  };
}

export async function merchantView(deps: ApiDeps, merchant: MerchantRecord): Promise<MerchantView> {
  const chains = await Promise.all(
    [...deps.chains.values()].map(async (chain) => {
      const [registration, balance] = await Promise.all([
        onchainIdentity(deps, merchant, chain.id),
        chain.client.getBalance({ address: merchant.signerAddress as Address }).catch(() => null),
      ]);
      const pending = registration ? undefined : await registrationTransaction(deps, merchant, chain).catch(() => undefined);
      return {
        chainId: chain.id,
        registered: registration !== undefined,
        onchainMerchantId: registration ? registration.owner.merchantId.toString() : null,
        owner: registration ? getAddress(registration.record.owner) : null,
        payout: registration ? getAddress(registration.record.payout) : null,
        escrow: chain.escrow,
        subscriptions: chain.subscriptions,
        operatorBalanceWei: balance === null ? null : balance.toString(),
        registrationTransaction: pending?.transaction ?? null,
        registrationExpiresAt: pending?.expiresAt ?? null,
      };
    }),
  );
  return {
    id: merchant.id,
    name: merchant.name,
    operatorAddress: merchant.signerAddress,
    payoutAddress: merchant.payoutAddress,
    ownerAddress: merchant.ownerAddress,
    createdAt: merchant.createdAt.toISOString(),
    settings: {
      subscriptionPayoutIntervalSeconds: merchant.subscriptionPayoutIntervalSeconds,
      confirmations: Object.fromEntries([...deps.chains.keys()].map((chainId) => [String(chainId), requiredConfirmations(merchant, chainId)])),
      fiatCurrency: merchant.fiatCurrency as "USD" | "EUR" | "CNY",
      rateLockSeconds: merchant.rateLockSeconds,
    },
    chains,
  };
}
