/**
 * Shared deployment fixture for the contract tests: BillingEscrow (with the merchant registry),
 * SubscriptionManager, a 6-decimal permit stablecoin, one registered merchant whose signer is a viem local
 * account (registered with its consent), and helpers that build and sign invoices and signer consents exactly as
 * wallets and the API do.
 */
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { generatePrivateKey, privateKeyToAccount, type LocalAccount } from "viem/accounts";
import { keccak256, toHex, zeroAddress, type Address, type Hex } from "viem";
import {
  billingEscrowDomain,
  buildInvoice,
  invoiceKey,
  MAX_FEE_BPS,
  NEW_MERCHANT_ID,
  signerConsentTypes,
  signInvoice,
  signSignerConsent,
  type BillingEscrowDomain,
  type Invoice,
  type SignerConsent,
} from "../../contracts/invoice";
import type { BillingEscrow } from "../../typechain-types";

export const FEE_BPS = 100; // 1%
export const DISPUTE_PERIOD = 7 * 24 * 3600;
export const HOLD = 3 * 24 * 3600;
export const USDC = (units: number | bigint) => BigInt(units) * 10n ** 6n;

let invoiceCounter = 0;

/** A key that can consent to be a merchant's signer: a viem local account or a Hardhat (ethers) account. */
export type ConsentSigner = LocalAccount | HardhatEthersSigner;

/** The EIP-712 domain of a BillingEscrow deployment on the test chain. */
export async function domainOf(escrow: BillingEscrow): Promise<BillingEscrowDomain> {
  const chainId = (await ethers.provider.getNetwork()).chainId;
  return billingEscrowDomain(chainId, (await escrow.getAddress()) as Address);
}

/**
 * Signs `signer`'s consent to sign for a merchant record owned by `owner`: a new registration (merchantId 0) unless
 * `merchantId` is given. The nonce defaults to the signer's current one, the deadline to an hour from now.
 */
export async function signConsent(
  escrow: BillingEscrow,
  signer: ConsentSigner,
  terms: { owner: string; payout: string; merchantId?: bigint; nonce?: bigint; deadline?: bigint },
  domain?: BillingEscrowDomain,
): Promise<{ consent: SignerConsent; signature: Hex }> {
  const consent: SignerConsent = {
    merchantId: terms.merchantId ?? NEW_MERCHANT_ID,
    owner: terms.owner as Address,
    payout: terms.payout as Address,
    nonce: terms.nonce ?? (await escrow.nonces(signer.address)),
    deadline: terms.deadline ?? BigInt(await time.latest()) + 3_600n,
  };
  const onDomain = domain ?? (await domainOf(escrow));
  const signature =
    "type" in signer && signer.type === "local"
      ? await signSignerConsent(signer, onDomain, consent)
      : ((await (signer as HardhatEthersSigner).signTypedData(
          onDomain,
          { SignerConsent: [...signerConsentTypes.SignerConsent] },
          consent,
        )) as Hex);
  return { consent, signature };
}

/**
 * Registers a merchant owned by `owner`: with the signer's consent, or with none when `signer` is the owner's own
 * address (the caller naming itself consents by sending). Returns the transaction.
 */
export async function registerMerchant(
  escrow: BillingEscrow,
  owner: HardhatEthersSigner,
  payout: string,
  signer: ConsentSigner | string,
) {
  if (typeof signer === "string") {
    if (signer.toLowerCase() !== owner.address.toLowerCase()) throw new Error("a signer other than the owner must consent");
    return escrow.connect(owner).registerMerchant(payout, signer, 0, "0x");
  }
  const { consent, signature } = await signConsent(escrow, signer, { owner: owner.address, payout });
  return escrow.connect(owner).registerMerchant(payout, signer.address, consent.deadline, signature);
}

/** Rotates merchant `merchantId`'s signer (sent by its owner) with the new signer's consent. */
export async function setMerchantSigner(
  escrow: BillingEscrow,
  owner: HardhatEthersSigner,
  merchantId: bigint,
  signer: ConsentSigner,
) {
  const payout = (await escrow.merchant(merchantId)).payout;
  const { consent, signature } = await signConsent(escrow, signer, { owner: owner.address, payout, merchantId });
  return escrow.connect(owner).setMerchantSigner(merchantId, signer.address, consent.deadline, signature);
}

export async function deployFixture() {
  const [owner, feeRecipient, merchantOwner, payout, payer, other, keeper, arbiter] = await ethers.getSigners();

  const escrow = await ethers.deployContract("BillingEscrow", [owner.address, feeRecipient.address, FEE_BPS, DISPUTE_PERIOD]);
  const subscriptions = await ethers.deployContract("SubscriptionManager", [owner.address, await escrow.getAddress()]);
  const usdc = await ethers.deployContract("MockStablecoin", ["USD Coin", "USDC", 6]);

  const signer: LocalAccount = privateKeyToAccount(generatePrivateKey());
  await registerMerchant(escrow, merchantOwner, payout.address, signer);
  const merchantId = 1n;

  const chainId = (await ethers.provider.getNetwork()).chainId;
  const domain: BillingEscrowDomain = billingEscrowDomain(chainId, (await escrow.getAddress()) as Address);

  for (const account of [payer, other]) {
    await usdc.mint(account.address, USDC(1_000_000));
    await usdc.connect(account).approve(await escrow.getAddress(), ethers.MaxUint256);
    await usdc.connect(account).approve(await subscriptions.getAddress(), ethers.MaxUint256);
  }

  /**
   * Builds invoice terms with sensible defaults (USDC, 100.00, anyone pays, 3-day hold, 1-day expiry, any fee up
   * to MAX_FEE_BPS accepted: the tests of the signed fee cap set `maxFeeBps` themselves).
   */
  async function makeInvoice(overrides: Partial<Invoice> = {}): Promise<Invoice> {
    const now = BigInt(await time.latest());
    invoiceCounter += 1;
    return buildInvoice({
      merchantId,
      invoiceId: keccak256(toHex(`invoice-${invoiceCounter}`)),
      token: (await usdc.getAddress()) as Address,
      amount: USDC(100),
      expiresAt: now + 86_400n,
      holdDuration: HOLD,
      maxFeeBps: MAX_FEE_BPS,
      ...overrides,
    });
  }

  /** Signs with the merchant's registered signer unless another account or domain is given. */
  function sign(invoice: Invoice, by: LocalAccount = signer, onDomain: BillingEscrowDomain = domain): Promise<Hex> {
    return signInvoice(by, onDomain, invoice);
  }

  /** Builds, signs and pays an invoice from `from` (default: payer); returns the terms and the key. */
  async function payInvoice(overrides: Partial<Invoice> = {}, from: HardhatEthersSigner = payer) {
    const invoice = await makeInvoice(overrides);
    const signature = await sign(invoice);
    const value = invoice.token === zeroAddress ? invoice.amount : 0n;
    await escrow.connect(from).pay(invoice, signature, { value });
    return { invoice, signature, key: invoiceKey(domain, invoice) };
  }

  return {
    owner,
    feeRecipient,
    merchantOwner,
    payout,
    payer,
    other,
    keeper,
    arbiter,
    escrow,
    subscriptions,
    usdc,
    signer,
    merchantId,
    chainId,
    domain,
    makeInvoice,
    sign,
    payInvoice,
  };
}
