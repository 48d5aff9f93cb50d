/**
 * Shared deployment fixture for the contract tests: BillingEscrow (with the merchant registry),
 * SubscriptionManager, a 6-decimal permit stablecoin, one registered merchant whose signer is a viem local
 * account, and helpers that build and sign invoices exactly as wallets and the API do.
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
  signInvoice,
  type BillingEscrowDomain,
  type Invoice,
} from "../../contracts/invoice";

export const FEE_BPS = 100; // 1%
export const DISPUTE_PERIOD = 7 * 24 * 3600;
export const HOLD = 3 * 24 * 3600;
export const USDC = (units: number | bigint) => BigInt(units) * 10n ** 6n;

let invoiceCounter = 0;

export async function deployFixture() {
  const [owner, feeRecipient, merchantOwner, payout, payer, other, keeper, arbiter] = await ethers.getSigners();

  const escrow = await ethers.deployContract("BillingEscrow", [owner.address, feeRecipient.address, FEE_BPS, DISPUTE_PERIOD]);
  const subscriptions = await ethers.deployContract("SubscriptionManager", [owner.address, await escrow.getAddress()]);
  const usdc = await ethers.deployContract("MockStablecoin", ["USD Coin", "USDC", 6]);

  const signer: LocalAccount = privateKeyToAccount(generatePrivateKey());
  await escrow.connect(merchantOwner).registerMerchant(payout.address, signer.address);
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
