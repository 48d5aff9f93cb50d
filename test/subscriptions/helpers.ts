/**
 * Shared setup for the SubscriptionManager suite: the project fixture plus the token zoo, a second merchant,
 * an impersonated (ETH-funded) merchant signer, small helpers to create plans and subscriptions at exact
 * timestamps, an EIP-2612 permit signer, and the solvency invariant check.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { impersonateAccount, setBalance, time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import type { ContractTransactionResponse, Signature } from "ethers";
import { deployFixture, USDC } from "../helpers/fixture";
import type { IERC20, MockStablecoin, SubscriptionManager } from "../../typechain-types";

export { USDC };

export const HOUR = 3600;
export const DAY = 24 * HOUR;
export const MONTH = 30 * DAY;
export const PRICE = USDC(10);
export const PREMIUM = USDC(25);
export const GRACE = 3 * DAY;
export const TRIAL = 7 * DAY;
export const MAX_PERIOD = 5 * 365 * DAY;
export const MAX_TRIAL = 365 * DAY;
export const MAX_BATCH = 250;
/** Per-transaction gas cap of Hardhat 2.29 (EIP-7825). */
export const TX_GAS_CAP = 16_777_216n;

/** Mirrors `SubscriptionStatus` in DataTypes.sol. */
export enum Status {
  None,
  Trialing,
  Active,
  PastDue,
  Canceled,
  Lapsed,
}

/** Mirrors `RenewalFailure` in DataTypes.sol. */
export enum Failure {
  PriceAboveMaximum,
  TransferFailed,
  InexactTransfer,
}

/**
 * The project fixture plus: plan 1 (monthly USDC, PRICE, 3-day grace), plan 2 (same with a 7-day trial),
 * plan 3 (monthly USDC premium, PREMIUM), a second stablecoin, a second merchant (owner `merchant2Owner`,
 * payout `payout2`, plan 4 in USDC), the token zoo, and an ETH-funded signer for merchant 1's signer key.
 */
export async function subsFixture() {
  const base = await deployFixture();
  const signers = await ethers.getSigners();
  const [merchant2Owner, payout2, alice, bob, carol, dave, erin, frank] = signers.slice(8, 16);
  const { subscriptions, usdc, merchantOwner, escrow } = base;
  const sm = await subscriptions.getAddress();
  const usdcAddress = await usdc.getAddress();

  await impersonateAccount(base.signer.address);
  await setBalance(base.signer.address, 10n ** 20n);
  const merchantSigner = await ethers.getSigner(base.signer.address);

  const dai = await ethers.deployContract("MockStablecoin", ["Dai Stablecoin", "DAI", 18]);
  const fot = await ethers.deployContract("FeeOnTransferToken", [0]);
  const noReturn = await ethers.deployContract("NoReturnToken");
  const returnsFalse = await ethers.deployContract("ReturnsFalseToken");
  const blocklist = await ethers.deployContract("BlocklistToken");
  const reentrant = await ethers.deployContract("ReentrantToken");

  // Merchant 2 is its own signer: naming itself needs no signed consent.
  await escrow.connect(merchant2Owner).registerMerchant(payout2.address, merchant2Owner.address, 0, "0x");
  const merchant2Id = 2n;

  await subscriptions.connect(merchantOwner).createPlan(1, usdcAddress, PRICE, MONTH, 0, GRACE); // 1
  await subscriptions.connect(merchantOwner).createPlan(1, usdcAddress, PRICE, MONTH, TRIAL, GRACE); // 2
  await subscriptions.connect(merchantOwner).createPlan(1, usdcAddress, PREMIUM, MONTH, 0, GRACE); // 3
  await subscriptions.connect(merchant2Owner).createPlan(merchant2Id, usdcAddress, PRICE, MONTH, 0, GRACE); // 4

  for (const account of [alice, bob, carol, dave, erin, frank]) {
    await usdc.mint(account.address, USDC(1_000));
  }

  return {
    ...base,
    sm,
    usdcAddress,
    merchantSigner,
    merchant2Owner,
    payout2,
    merchant2Id,
    alice,
    bob,
    carol,
    dave,
    erin,
    frank,
    dai,
    fot,
    noReturn,
    returnsFalse,
    blocklist,
    reentrant,
    plans: { monthly: 1n, trial: 2n, premium: 3n, merchant2: 4n },
  };
}

export type Ctx = Awaited<ReturnType<typeof subsFixture>>;

/** Timestamp of the block that mined `tx`. */
export async function txTime(tx: ContractTransactionResponse): Promise<number> {
  const receipt = await tx.wait();
  const block = await ethers.provider.getBlock(receipt!.blockNumber);
  return block!.timestamp;
}

/** Creates a plan as `by` and returns its id. */
export async function createPlan(
  f: Ctx,
  opts: {
    token?: string;
    price?: bigint;
    period?: number;
    trial?: number;
    grace?: number;
    merchantId?: bigint;
    by?: HardhatEthersSigner;
  } = {},
): Promise<bigint> {
  const merchantId = opts.merchantId ?? f.merchantId;
  const by = opts.by ?? (merchantId === f.merchantId ? f.merchantOwner : f.merchant2Owner);
  await f.subscriptions
    .connect(by)
    .createPlan(
      merchantId,
      opts.token ?? f.usdcAddress,
      opts.price ?? PRICE,
      opts.period ?? MONTH,
      opts.trial ?? 0,
      opts.grace ?? GRACE,
    );
  return BigInt(await f.subscriptions.planCount());
}

/** Subscribes `who` to `planId` (optionally at an exact timestamp); returns the id and the start time. */
export async function subscribe(
  f: Ctx,
  who: HardhatEthersSigner,
  planId: bigint,
  maxPrice?: bigint,
  at?: number,
): Promise<{ id: bigint; start: number; tx: ContractTransactionResponse }> {
  const plan = await f.subscriptions.plan(planId);
  if (at !== undefined) await time.setNextBlockTimestamp(at);
  const tx = await f.subscriptions.connect(who).subscribe(planId, maxPrice ?? plan.price);
  const start = await txTime(tx);
  return { id: BigInt(await f.subscriptions.subscriptionCount()), start, tx };
}

/** Mints `amount` of a zoo or mock token to `who` and approves the manager for everything. */
export async function fundAndApprove(
  token: { mint(to: string, amount: bigint): Promise<unknown>; getAddress(): Promise<string> },
  who: HardhatEthersSigner,
  sm: string,
  amount: bigint,
): Promise<void> {
  await token.mint(who.address, amount);
  const erc20 = (await ethers.getContractAt("IERC20", await token.getAddress())) as unknown as IERC20;
  // NoReturnToken's approve returns nothing; call it through a raw transaction so ethers does not decode a bool.
  const data = erc20.interface.encodeFunctionData("approve", [sm, ethers.MaxUint256]);
  await (await who.sendTransaction({ to: await token.getAddress(), data })).wait();
}

/** Sets `who`'s allowance for the manager (works for tokens whose approve returns nothing). */
export async function approve(tokenAddress: string, who: HardhatEthersSigner, sm: string, amount: bigint) {
  const erc20 = (await ethers.getContractAt("IERC20", tokenAddress)) as unknown as IERC20;
  const data = erc20.interface.encodeFunctionData("approve", [sm, amount]);
  await (await who.sendTransaction({ to: tokenAddress, data })).wait();
}

/** Signs an EIP-2612 permit of `value` from `owner` to `spender` on `token`. */
export async function signPermit(
  token: MockStablecoin,
  owner: HardhatEthersSigner,
  spender: string,
  value: bigint,
  deadline: bigint,
): Promise<Signature> {
  const domain = await token.eip712Domain();
  const nonce = await token.nonces(owner.address);
  const signature = await owner.signTypedData(
    { name: domain.name, version: domain.version, chainId: domain.chainId, verifyingContract: domain.verifyingContract },
    {
      Permit: [
        { name: "owner", type: "address" },
        { name: "spender", type: "address" },
        { name: "value", type: "uint256" },
        { name: "nonce", type: "uint256" },
        { name: "deadline", type: "uint256" },
      ],
    },
    { owner: owner.address, spender, value, nonce, deadline },
  );
  return ethers.Signature.from(signature);
}

/** Pro-rata amount earned by the merchant after `elapsed` of `period` on `charge` (rounded down). */
export function earnedAt(charge: bigint, elapsed: number | bigint, period: number | bigint): bigint {
  const e = BigInt(elapsed);
  const p = BigInt(period);
  if (e <= 0n) return 0n;
  if (e >= p) return charge;
  return (charge * e) / p;
}

/** Pro-rata amount earned after `elapsed` of `period` on `charge`, rounded up: what a plan change credits. */
export function earnedUpAt(charge: bigint, elapsed: number | bigint, period: number | bigint): bigint {
  const e = BigInt(elapsed);
  const p = BigInt(period);
  if (e <= 0n) return 0n;
  if (e >= p) return charge;
  return (charge * e + p - 1n) / p;
}

/**
 * Solvency invariant, per token: what the manager holds equals the unearned charges of every subscription
 * in that token, plus every merchant balance in it, plus every claimable balance in it. Claimable accounts
 * are gathered from PayoutDeferred events, subscribers, merchant payouts and `extraAccounts`.
 */
export async function expectSolvent(f: Ctx, tokens: string[], extraAccounts: string[] = []): Promise<void> {
  const sm: SubscriptionManager = f.subscriptions;
  const count = Number(await sm.subscriptionCount());
  const merchants = Number(await f.escrow.merchantCount());

  const accounts = new Set<string>(extraAccounts.map((a) => a.toLowerCase()));
  const subs = [];
  for (let id = 1; id <= count; id++) {
    const sub = await sm.subscription(id);
    subs.push(sub);
    accounts.add(sub.subscriber.toLowerCase());
  }
  for (let m = 1; m <= merchants; m++) accounts.add((await f.escrow.merchant(m)).payout.toLowerCase());
  for (const event of await sm.queryFilter(sm.filters.PayoutDeferred())) accounts.add(event.args.account.toLowerCase());

  const planTokens = new Map<bigint, string>();
  for (const tokenAddress of tokens) {
    const token = tokenAddress.toLowerCase();
    let unearned = 0n;
    for (const sub of subs) {
      if (!planTokens.has(sub.planId)) planTokens.set(sub.planId, (await sm.plan(sub.planId)).token.toLowerCase());
      if (planTokens.get(sub.planId) === token) unearned += sub.unearned;
    }
    let merchantBalances = 0n;
    for (let m = 1; m <= merchants; m++) merchantBalances += await sm.merchantBalance(m, tokenAddress);
    let claimables = 0n;
    for (const account of accounts) claimables += await sm.claimable(account, tokenAddress);

    const erc20 = (await ethers.getContractAt("IERC20", tokenAddress)) as unknown as IERC20;
    const held = await erc20.balanceOf(await sm.getAddress());
    expect(held, `solvency of ${tokenAddress}: unearned ${unearned} + merchant ${merchantBalances} + claimable ${claimables}`).to.equal(
      unearned + merchantBalances + claimables,
    );
  }
}
