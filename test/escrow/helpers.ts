/**
 * Shared pieces of the BillingEscrow suite: a fixture that adds the token zoo and the hostile receivers to the
 * project's deployment fixture, invoice and time helpers, an EIP-2612 permit signer, and the escrow's solvency
 * invariant (per token, balance == held + claimable + accrued fees + deposits held for return).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import type { HardhatEthersSigner } from "@nomicfoundation/hardhat-ethers/signers";
import { getAddress, keccak256, toHex, zeroAddress, type Address, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { IERC20__factory, type BillingEscrow, type MockStablecoin } from "../../typechain-types";
import { invoiceKey, type Invoice } from "../../contracts/invoice";
import { deployFixture, USDC } from "../helpers/fixture";

export { PaymentStatus, RefundReason } from "../../contracts/index";

const BPS = 10_000n;

/** Amount of the ETH invoices (token = zero address) in these tests. */
export const ETH_AMOUNT = ethers.parseEther("1");

/** The project fixture plus hostile tokens and receivers, each token funded and approved for the payer. */
export async function escrowFixture() {
  const base = await deployFixture();
  const escrowAddress = await addressOf(base.escrow);
  const [, , , , , , , , permitPayer, newOwner] = await ethers.getSigners();

  const noReturnToken = await ethers.deployContract("NoReturnToken");
  const returnsFalseToken = await ethers.deployContract("ReturnsFalseToken");
  // Starts without a fee so tests can switch it on before or after a payment, as real fee switches do.
  const feeOnTransferToken = await ethers.deployContract("FeeOnTransferToken", [0]);
  const blocklistToken = await ethers.deployContract("BlocklistToken");
  const reentrantToken = await ethers.deployContract("ReentrantToken");
  for (const token of [noReturnToken, returnsFalseToken, feeOnTransferToken, blocklistToken, reentrantToken]) {
    await token.mint(base.payer.address, USDC(1_000_000));
    await token.connect(base.payer).approve(escrowAddress, ethers.MaxUint256);
  }
  // Holds USDC but never approved the escrow: it pays with a permit.
  await base.usdc.mint(permitPayer.address, USDC(1_000));

  const revertingReceiver = await ethers.deployContract("RevertingReceiver");
  const reentrantReceiver = await ethers.deployContract("ReentrantReceiver");

  return {
    ...base,
    escrowAddress,
    permitPayer,
    newOwner,
    noReturnToken,
    returnsFalseToken,
    feeOnTransferToken,
    blocklistToken,
    reentrantToken,
    revertingReceiver,
    reentrantReceiver,
  };
}

export type EscrowFixture = Awaited<ReturnType<typeof escrowFixture>>;

/** Builds and signs an invoice without paying it. */
export async function signedInvoice(f: EscrowFixture, overrides: Partial<Invoice> = {}) {
  const invoice = await f.makeInvoice(overrides);
  const signature = await f.sign(invoice);
  return { invoice, signature, key: invoiceKey(f.domain, invoice) };
}

/** Protocol fee the escrow takes on `amount` at `feeBps` (rounded down, as the contract does). */
export function feeOf(amount: bigint, feeBps: number | bigint): bigint {
  return (amount * BigInt(feeBps)) / BPS;
}

/** Sets the timestamp of the next mined block and returns it. */
export async function nextBlockAt(timestamp: bigint | number): Promise<bigint> {
  await time.setNextBlockTimestamp(timestamp);
  return BigInt(timestamp);
}

/** Sets the next block one second after the latest one, so a test knows the exact `block.timestamp`. */
export async function pinNextBlockTimestamp(): Promise<bigint> {
  return nextBlockAt(BigInt(await time.latest()) + 1n);
}

/** The stored `releaseAt` of a paid invoice. */
export async function releaseAtOf(escrow: BillingEscrow, key: Hex): Promise<bigint> {
  return (await escrow.payment(key)).releaseAt;
}

/** The dispute deadline of a paid invoice: `releaseAt + DISPUTE_PERIOD`. */
export async function disputeDeadlineOf(escrow: BillingEscrow, key: Hex): Promise<bigint> {
  return (await releaseAtOf(escrow, key)) + (await escrow.DISPUTE_PERIOD());
}

/** A deployed contract's address, typed for invoice terms. */
export async function addressOf(contract: { getAddress(): Promise<string> }): Promise<Address> {
  return (await contract.getAddress()) as Address;
}

/** A fixed (deterministic) viem local account, e.g. a merchant's next signer key. */
export function testAccount(label: string) {
  return privateKeyToAccount(keccak256(toHex(`chainbill escrow tests: ${label}`)));
}

/** Signs an EIP-2612 permit with an ethers signer, exactly as a wallet would (`eth_signTypedData_v4`). */
export async function signPermit(
  token: MockStablecoin,
  owner: HardhatEthersSigner,
  spender: string,
  value: bigint,
  deadline: bigint,
) {
  const [, name, version, chainId, verifyingContract] = await token.eip712Domain();
  const types = {
    Permit: [
      { name: "owner", type: "address" },
      { name: "spender", type: "address" },
      { name: "value", type: "uint256" },
      { name: "nonce", type: "uint256" },
      { name: "deadline", type: "uint256" },
    ],
  };
  const message = { owner: owner.address, spender, value, nonce: await token.nonces(owner.address), deadline };
  const signature = await owner.signTypedData({ name, version, chainId, verifyingContract }, types, message);
  return ethers.Signature.from(signature);
}

/** The 4-byte selector of an error declared in the escrow's ABI (including inherited OpenZeppelin errors). */
export function errorSelector(escrow: BillingEscrow, name: string): string {
  return escrow.interface.getError(name)!.selector;
}

async function balanceOf(token: string, account: string): Promise<bigint> {
  if (token === zeroAddress) return ethers.provider.getBalance(account);
  return IERC20__factory.connect(token, ethers.provider).balanceOf(account);
}

/**
 * Checks the escrow's solvency invariant for every token it has seen: its balance equals what is held for the
 * invoices plus every claimable balance plus the accrued fees. `invoices` must name every invoice paid so far
 * (the check fails if one is missing); claimable accounts are found from `PayoutDeferred` events.
 */
export async function expectEscrowSolvent(escrow: BillingEscrow, invoices: readonly Invoice[]): Promise<void> {
  const invoicesByKey = new Map<string, Invoice>();
  for (const invoice of invoices) invoicesByKey.set(await escrow.invoiceKey(invoice), invoice);

  const paid = await escrow.queryFilter(escrow.filters.InvoicePaid());
  const deferred = await escrow.queryFilter(escrow.filters.PayoutDeferred());
  const depositsHeld = await escrow.queryFilter(escrow.filters.DepositHeld());
  for (const event of paid) {
    expect(invoicesByKey.has(event.args.key), `paid invoice ${event.args.key} missing from the check`).to.equal(true);
  }

  const tokens = new Set([
    ...paid.map((event) => event.args.token),
    ...deferred.map((event) => event.args.token),
    ...depositsHeld.map((event) => event.args.token),
  ]);
  for (const token of tokens) {
    let held = 0n;
    for (const invoice of invoicesByKey.values()) {
      if (getAddress(invoice.token) === token) held += await escrow.heldAmount(invoice);
    }
    let claimable = 0n;
    const creditedAccounts = new Set(deferred.filter((e) => e.args.token === token).map((e) => e.args.account));
    for (const account of creditedAccounts) claimable += await escrow.claimable(account, token);
    const fees = await escrow.accruedFees(token);
    // Deposits that arrived beyond an invoice's payment, waiting for its refund address.
    let deposits = 0n;
    const heldKeys = new Set(depositsHeld.filter((e) => e.args.token === token).map((e) => e.args.key));
    for (const key of heldKeys) deposits += await escrow.depositHeld(key, token);

    const balance = await balanceOf(token, await escrow.getAddress());
    expect(balance, `escrow balance of ${token} == held + claimable + fees + deposits held`).to.equal(held + claimable + fees + deposits);
  }
}
