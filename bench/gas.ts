/**
 * Gas benchmark: full transaction gas of every escrow and subscription operation, each beside a plain
 * OpenZeppelin ERC-20 `transferFrom` measured in the same run, against the project's gas targets.
 * Prints a table and writes it, with date and machine, to bench/gas.md.
 *
 * Usage: npm run bench:gas
 *
 * Every figure is "warm": token balances of sender and receiver already non-zero, the escrow already holding
 * the token, fee accrual slot already non-zero, finite allowances (so the allowance is written, as in the
 * baseline). That is the steady state of a running merchant, and how the Base Commerce Payments anchor was taken.
 */
import { ethers, network } from "hardhat";
import { time } from "@nomicfoundation/hardhat-network-helpers";
import { writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { keccak256, toHex, zeroAddress, type Address } from "viem";
import type { ContractTransactionResponse } from "ethers";
import {
  billingEscrowDomain,
  buildInvoice,
  signInvoice,
  signMerchantRegistration,
  signMerchantSignerChange,
  type Invoice,
} from "../contracts/invoice";

interface Row {
  operation: string;
  gas: bigint;
  target?: bigint;
  anchor?: string;
  note?: string;
  /** Why the target is missed, when it is. */
  cause?: string;
}

const BATCH = 20;
const UNIT = 10n ** 6n;
const ALLOWANCE = 10n ** 15n * UNIT; // finite, so every pull writes the allowance like the baseline

async function gasOf(pending: Promise<ContractTransactionResponse>): Promise<bigint> {
  const receipt = await (await pending).wait();
  if (!receipt || receipt.status !== 1) throw new Error("benchmark transaction failed");
  return receipt.gasUsed;
}

function step(message: string): void {
  process.stderr.write(`  · ${message}\n`);
}

async function main(): Promise<void> {
  if (network.name !== "hardhat") throw new Error("run the gas benchmark on the in-process hardhat network");
  const [owner, feeRecipient, merchantOwner, payout, payer, keeper] = await ethers.getSigners();
  const rows: Row[] = [];

  step("deploying contracts");
  const escrow = await ethers.deployContract("BillingEscrow", [owner.address, feeRecipient.address, 100, 7 * 86_400]);
  const subscriptions = await ethers.deployContract("SubscriptionManager", [owner.address, await escrow.getAddress()]);
  const token = await ethers.deployContract("MockStablecoin", ["USD Coin", "USDC", 6]);
  const escrowAddress = (await escrow.getAddress()) as Address;
  const tokenAddress = (await token.getAddress()) as Address;

  const signerAccount = privateKeyToAccount(generatePrivateKey());
  const operator = new ethers.Wallet(generatePrivateKey(), ethers.provider);
  const operatorAccount = privateKeyToAccount(operator.privateKey as `0x${string}`);
  await owner.sendTransaction({ to: operator.address, value: ethers.parseEther("10") });
  const domain = billingEscrowDomain((await ethers.provider.getNetwork()).chainId, escrowAddress);

  step("merchant registry: register and rotate the signer, each with the signer's consent");
  // Each is the first use of its signer's nonce (a new storage slot), as for every new merchant or signer. The
  // measured registration is the second one (the merchant counter is already non-zero, as in steady state).
  const consentDeadline = BigInt(await time.latest()) + 3_600n;
  const registration = await signMerchantRegistration(signerAccount, domain, {
    owner: merchantOwner.address as Address,
    payout: payout.address as Address,
    nonce: await escrow.nonces(signerAccount.address),
    deadline: consentDeadline,
  });
  await (await escrow.connect(merchantOwner).registerMerchant(...registration.args)).wait();
  const secondSigner = privateKeyToAccount(generatePrivateKey());
  const secondRegistration = await signMerchantRegistration(secondSigner, domain, {
    owner: keeper.address as Address,
    payout: keeper.address as Address,
    nonce: 0n,
    deadline: consentDeadline,
  });
  const registerGas = await gasOf(escrow.connect(keeper).registerMerchant(...secondRegistration.args));
  // The service operates with the signer key in production; here a funded wallet holds that role.
  const rotation = await signMerchantSignerChange(operatorAccount, domain, {
    merchantId: 1n,
    owner: merchantOwner.address as Address,
    payout: payout.address as Address,
    nonce: await escrow.nonces(operator.address),
    deadline: consentDeadline,
  });
  const setSignerGas = await gasOf(escrow.connect(merchantOwner).setMerchantSigner(...rotation.args));

  // Warm every balance involved: payer, payout, escrow, fee accrual, keeper.
  for (const account of [payer, payout, keeper, feeRecipient]) await token.mint(account.address, 1_000_000n * UNIT);
  await token.connect(payer).approve(escrowAddress, ALLOWANCE);
  await token.connect(payer).approve(await subscriptions.getAddress(), ALLOWANCE);

  let counter = 0;
  async function invoice(overrides: Partial<Invoice> = {}): Promise<{ terms: Invoice; signature: `0x${string}` }> {
    counter += 1;
    const terms = buildInvoice({
      merchantId: 1n,
      invoiceId: keccak256(toHex(`bench-${counter}`)),
      token: tokenAddress,
      amount: 100n * UNIT,
      expiresAt: BigInt(await time.latest()) + 86_400n,
      holdDuration: 3_600,
      maxFeeBps: 100, // the rate in force, as a merchant signs it
      ...overrides,
    });
    const signature = await signInvoice(operatorAccount, domain, terms);
    return { terms, signature };
  }
  async function paid(overrides: Partial<Invoice> = {}): Promise<Invoice> {
    const { terms, signature } = await invoice(overrides);
    const value = terms.token === zeroAddress ? terms.amount : 0n;
    await (await escrow.connect(payer).pay(terms, signature, { value })).wait();
    return terms;
  }

  step("baseline: plain ERC-20 transferFrom");
  await token.connect(payer).approve(keeper.address, ALLOWANCE);
  const baseline = await gasOf(token.connect(keeper).transferFrom(payer.address, payout.address, 1n * UNIT));
  rows.push({ operation: "ERC-20 transferFrom (OpenZeppelin, baseline)", gas: baseline, anchor: "40.5k" });

  step("escrow: warm-up payment and release");
  const warm = await paid();
  await time.increase(3_600);
  await (await escrow.connect(keeper).release(warm)).wait();

  step("escrow: pay");
  {
    const { terms, signature } = await invoice();
    rows.push({ operation: "pay (ERC-20)", gas: await gasOf(escrow.connect(payer).pay(terms, signature)), target: 90_000n, anchor: "authorize 111.7k + 58.1k pre-approval" });
  }
  {
    const { terms, signature } = await invoice({ token: zeroAddress, amount: ethers.parseEther("0.05") });
    rows.push({ operation: "pay (ETH)", gas: await gasOf(escrow.connect(payer).pay(terms, signature, { value: terms.amount })), target: 90_000n });
  }
  {
    const permitPayer = ethers.Wallet.createRandom(ethers.provider);
    await owner.sendTransaction({ to: permitPayer.address, value: ethers.parseEther("1") });
    await token.mint(permitPayer.address, 1_000n * UNIT);
    const { terms, signature } = await invoice();
    const deadline = BigInt(await time.latest()) + 3_600n;
    const permit = ethers.Signature.from(
      await permitPayer.signTypedData(
        { name: "USD Coin", version: "1", chainId: domain.chainId, verifyingContract: tokenAddress },
        { Permit: [
          { name: "owner", type: "address" }, { name: "spender", type: "address" }, { name: "value", type: "uint256" },
          { name: "nonce", type: "uint256" }, { name: "deadline", type: "uint256" },
        ] },
        { owner: permitPayer.address, spender: escrowAddress, value: terms.amount, nonce: await token.nonces(permitPayer.address), deadline },
      ),
    );
    const gas = await gasOf(escrow.connect(permitPayer).payWithPermit(terms, signature, deadline, permit.v, permit.r, permit.s));
    rows.push({ operation: "pay with EIP-2612 permit (no prior approval)", gas, anchor: "authorize + pre-approval 169.8k" });
  }

  step("deposit addresses: plain transfers, sweeps");
  {
    // The customer's side: a plain transfer to a fresh deposit address (its balance goes from zero to non-zero).
    rows.push({ operation: "ERC-20 transfer (OpenZeppelin, to a warm holder)", gas: await gasOf(token.connect(payer).transfer(payout.address, 1n * UNIT)), note: "what an exchange withdrawal of USDC costs, at best" });
    const { terms, signature } = await invoice();
    const deposit = (await escrow.depositAddress(terms)) as Address;
    rows.push({ operation: "deposit: plain ERC-20 transfer to the invoice's deposit address", gas: await gasOf(token.connect(payer).transfer(deposit, terms.amount)), note: "the customer's own transaction; a fresh holder (zero to non-zero balance)" });
    rows.push({ operation: "sweep (ERC-20, deploys the address's clone)", gas: await gasOf(escrow.connect(keeper).sweepDeposit(terms, signature)), target: 110_000n, note: "records the payment as `pay` does", cause: "the clone's CREATE2 is 32,000 plus 9,000 for its 45 bytes of code, ~2.6k to call through it and 2.1k to read the refund-address word, on top of what `pay` costs without its allowance write; a self-destructing forwarder would save ~7k but is not used (docs/SECURITY.md, Deposit addresses). Swept in batches of 20 it is under target (row below)" });
  }
  {
    const { terms, signature } = await invoice({ token: zeroAddress, amount: ethers.parseEther("0.05") });
    const deposit = (await escrow.depositAddress(terms)) as Address;
    const receipt = await (await payer.sendTransaction({ to: deposit, value: terms.amount })).wait();
    rows.push({ operation: "deposit: plain ETH transfer to the deposit address", gas: receipt!.gasUsed, note: "no code there before the sweep: 21,000 from any wallet or exchange" });
    rows.push({ operation: "sweep (ETH, deploys the address's clone)", gas: await gasOf(escrow.connect(keeper).sweepDeposit(terms, signature)) });
    const topUp = await (await payer.sendTransaction({ to: deposit, value: 1_000n })).wait();
    rows.push({ operation: "plain ETH transfer to a deposit address after its sweep", gas: topUp!.gasUsed, note: "the clone's empty `receive` runs (EIP-1167 delegatecall)" });
  }
  {
    const batch = [];
    for (let index = 0; index < BATCH; index += 1) {
      const signed = await invoice();
      await (await token.connect(payer).transfer((await escrow.depositAddress(signed.terms)) as Address, signed.terms.amount)).wait();
      batch.push(signed);
    }
    const gas = await gasOf(escrow.connect(keeper).sweepDeposits(batch.map((item) => item.terms), batch.map((item) => item.signature)));
    rows.push({ operation: `sweep ${BATCH} ERC-20 deposits in one transaction, per invoice`, gas: gas / BigInt(BATCH), target: 110_000n, note: `${gas} for the batch` });
  }

  step("escrow: release, refunds, dispute");
  {
    const terms = await paid();
    await time.increase(3_600);
    rows.push({ operation: "release (after hold, by a keeper, 1% fee)", gas: await gasOf(escrow.connect(keeper).release(terms)), target: 55_000n, anchor: "capture 65.9k", cause: "the protocol fee is accrued per token (cold read 2.1k + write 2.9k); without a fee the same release is the row below" });
  }
  {
    await (await escrow.connect(owner).setFee(0)).wait();
    const terms = await paid();
    await (await escrow.connect(owner).setFee(100)).wait();
    await time.increase(3_600);
    rows.push({ operation: "release (after hold, no protocol fee)", gas: await gasOf(escrow.connect(keeper).release(terms)), target: 55_000n, anchor: "capture 65.9k" });
  }
  {
    const terms = await paid();
    rows.push({ operation: "release early (payer confirms)", gas: await gasOf(escrow.connect(payer).release(terms)), target: 55_000n, cause: "as above: the fee accrual" });
  }
  {
    const terms = await paid();
    rows.push({ operation: "refund, full", gas: await gasOf(escrow.connect(operator).refund(terms, terms.amount)), target: 50_000n, anchor: "refund 79.1k", cause: "the merchant check reads the signer (cold 2.1k); the same refund without it (automatic refund) is under 50k" });
  }
  {
    const terms = await paid();
    rows.push({ operation: "refund, partial (first)", gas: await gasOf(escrow.connect(operator).refund(terms, terms.amount / 4n)), target: 50_000n, anchor: "refund 79.1k", cause: "the running refund total gets its own storage word (new slot 22.1k): the one-word Payment has no room for an amount beside the payer address" });
    rows.push({ operation: "refund, partial (second)", gas: await gasOf(escrow.connect(operator).refund(terms, terms.amount / 4n)), target: 50_000n, cause: "merchant check (2.1k) and updating the refund-total word (cold read + write 5k)" });
  }
  {
    const now = BigInt(await time.latest());
    const terms = await paid({ fulfillBy: now + 600n, holdDuration: 86_400 });
    await time.increase(601);
    rows.push({ operation: "automatic refund (missed fulfillBy, by a keeper)", gas: await gasOf(escrow.connect(keeper).refundUnfulfilled(terms)), target: 50_000n, anchor: "void/reclaim 52.4k" });
  }
  {
    const terms = await paid();
    rows.push({ operation: "dispute (payer)", gas: await gasOf(escrow.connect(payer).dispute(terms)) });
    await time.increase(3_600 + 7 * 86_400);
    rows.push({ operation: "automatic refund (dispute unresolved at deadline)", gas: await gasOf(escrow.connect(keeper).refundExpiredDispute(terms)), target: 50_000n, anchor: "void/reclaim 52.4k" });
  }
  {
    const terms = await paid({ fulfillBy: BigInt(await time.latest()) + 86_400n });
    rows.push({ operation: "mark fulfilled", gas: await gasOf(escrow.connect(operator).markFulfilled(terms)) });
  }
  rows.push({ operation: "registerMerchant (with the signer's EIP-712 consent)", gas: registerGas, note: "4 new storage words: owner, payout, signer, the signer's nonce" });
  rows.push({ operation: "setMerchantSigner (with the new signer's EIP-712 consent)", gas: setSignerGas, note: "a new signer's first nonce is a new storage word" });

  step("subscriptions: plan, subscribe, renew, cancel");
  const period = 30 * 86_400;
  await (await subscriptions.connect(operator).createPlan(1, tokenAddress, 10n * UNIT, period, 0, 3 * 86_400)).wait();
  // Warm-up subscription so the contract already holds the token and the merchant balance slot is non-zero.
  await (await subscriptions.connect(payer).subscribe(1, 10n * UNIT)).wait();
  rows.push({ operation: "subscribe (first period charged)", gas: await gasOf(subscriptions.connect(payer).subscribe(1, 10n * UNIT)), target: 130_000n, anchor: "charge 120.2k" });
  const subscribers = [];
  for (let index = 0; index < BATCH; index += 1) {
    const wallet = ethers.Wallet.createRandom(ethers.provider);
    await owner.sendTransaction({ to: wallet.address, value: ethers.parseEther("1") });
    await token.mint(wallet.address, 1_000n * UNIT);
    await token.connect(wallet).approve(await subscriptions.getAddress(), ALLOWANCE);
    await (await subscriptions.connect(wallet).subscribe(1, 10n * UNIT)).wait();
    subscribers.push(wallet);
  }
  const firstBatchId = Number(await subscriptions.subscriptionCount()) - BATCH + 1;
  const batchIds = Array.from({ length: BATCH }, (_, index) => firstBatchId + index);
  await time.increase(period);
  // The batch goes first so the merchant's balance slot is already non-zero when the single renewal is measured
  // (steady state); the first credit after a full withdrawal costs a zero-to-non-zero write (+17.1k) once.
  const batchGas = await gasOf(subscriptions.connect(keeper).renew(batchIds));
  rows.push({ operation: `renew in a batch of ${BATCH}, per subscription`, gas: batchGas / BigInt(BATCH), target: 50_000n, note: `${batchGas} for the batch` });
  rows.push({ operation: "renew alone (1 subscription)", gas: await gasOf(subscriptions.connect(keeper).renew([1])), target: 75_000n });
  await time.increase(period / 2);
  rows.push({ operation: "cancel mid-period (pro-rata refund)", gas: await gasOf(subscriptions.connect(subscribers[0]).cancel(batchIds[0])) });
  rows.push({ operation: "merchant withdraw (19 subscriptions collected)", gas: await gasOf(subscriptions.connect(keeper).withdraw(1, tokenAddress, batchIds.slice(1))) });

  const table = render(rows, baseline);
  console.log(table);
  const arch = os.arch() === "x64" ? "x86_64" : os.arch();
  const machine = `${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.cpus().length} cores ${arch}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`;
  const solc = (await import("solc/package.json")).version;
  const markdown = [
    "# Gas benchmark",
    "",
    `Generated by \`npm run bench:gas\` (bench/gas.ts) on ${new Date().toISOString().slice(0, 10)}; machine: ${machine};`,
    `solc ${solc}, optimizer on (10,000 runs), EVM cancun, Hardhat network. Full transaction gas (21k intrinsic`,
    "and calldata included), warm state: balances non-zero, finite allowances (written on every pull), 1% protocol fee.",
    "The anchor column is Base Commerce Payments' comparable operation, compiled with the same solc and token.",
    "Invoices carry a signed protocol-fee cap (`maxFeeBps`, one calldata word: about 150 gas on every invoice call).",
    "",
    table,
    "",
    "## Targets missed, and why",
    "",
    ...rows.filter((row) => row.target !== undefined && row.gas > row.target).map((row) => `- **${row.operation}** (+${row.gas - (row.target ?? 0n)}): ${row.cause ?? "see the table"}.`),
    "",
    "Storage per payment is one packed word keyed by the invoice's EIP-712 digest (callers pass the signed terms",
    "back), as in the anchor; the floor of a refund or release is 21k intrinsic + ~2.2k calldata + ~15.3k for the token",
    "transfer (cold token account, two cold balance slots) before any escrow logic.",
    "",
  ].join("\n");
  await writeFile(path.join(__dirname, "gas.md"), markdown);
  step("wrote bench/gas.md");
}

function render(rows: Row[], baseline: bigint): string {
  const header = "| operation | gas | × transferFrom | target | met | anchor | note |";
  const lines = [header, "|---|---:|---:|---:|:-:|---|---|"];
  for (const row of rows) {
    const ratio = (Number(row.gas) / Number(baseline)).toFixed(2);
    const met = row.target === undefined ? "" : row.gas <= row.target ? "yes" : `no (+${row.gas - row.target})`;
    const target = row.target === undefined ? "" : `≤ ${row.target}`;
    lines.push(`| ${row.operation} | ${row.gas} | ${ratio} | ${target} | ${met} | ${row.anchor ?? ""} | ${row.note ?? ""} |`);
  }
  return lines.join("\n");
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
