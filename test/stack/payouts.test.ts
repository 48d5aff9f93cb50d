/**
 * Money out through the API: `POST /v1/invoices/{id}/release` when the escrow's rules allow it (and clear
 * conflicts when they do not), and `GET /v1/payouts`: every release, withdrawal, deferred payout and claim with
 * its transaction, as the payout address received it.
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { encodeFunctionData, getAddress, parseEther, type Abi, type Address, type Hex } from "viem";
import { billingEscrowAbi, subscriptionManagerAbi } from "../../contracts/abi";
import { invoiceFromJson, type InvoiceJson as Terms } from "../../contracts/invoice";
import { createMerchant, invoicesOf, mintStablecoin, mockStablecoinAbi, payWithInstructions, ROOT, startStack, timeTravel, usdc, waitUntil, type InvoiceJson, type LocalChain, type Stack, type TestMerchant } from "./harness";

interface Payout {
  kind: string;
  amount: string;
  fee: string;
  to: string;
  invoiceId: string | null;
  transactionHash: Hex;
  currency: string;
}

interface Problem {
  type: string;
  status: number;
}

describe("stack: payouts", function () {
  this.timeout(300_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let token: Address;
  let create: ReturnType<typeof invoicesOf>["create"];
  let read: ReturnType<typeof invoicesOf>["read"];
  let paid: ReturnType<typeof invoicesOf>["paid"];

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
    token = chain.deployment.contracts.MockStablecoin!.address;
    merchant = await createMerchant(stack, 1, "Payout merchant");
    await mintStablecoin(chain, 4, usdc(1000));
    ({ create, read, paid } = invoicesOf(stack, merchant, chain));
  });
  after(async () => {
    await stack?.stop();
  });

  const release = (id: string) => stack.api("POST", `/v1/invoices/${id}/release`, { key: merchant.apiKey });
  const balance = async (holder: Address) => (await chain.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [holder] })) as bigint;
  const payouts = async () => ((await (await stack.api("GET", "/v1/payouts", { key: merchant.apiKey })).json()) as { data: Payout[]; nextCursor: string | null }).data;

  it("releases a held payment once its hold is over: 409 hold-not-ended before, then the payout address receives it", async () => {
    const invoice = await paid({ amount: "40.00", currency: "USDC", holdSeconds: 3600 });
    const early = await release(invoice.id);
    expect(early.status).to.equal(409);
    expect(((await early.json()) as Problem).type).to.equal("/problems/hold-not-ended");
    await timeTravel(chain, 3601);
    const before = await balance(merchant.payout);
    const answer = await release(invoice.id);
    expect(answer.status, await answer.clone().text()).to.equal(202);
    const body = (await answer.json()) as { transactionHash: Hex; invoice: InvoiceJson };
    expect(body.invoice.status).to.equal("released");
    expect(body.invoice.releasedAmount).to.equal("40.00");
    expect((await balance(merchant.payout)) - before).to.equal(usdc(40));
    const [latest] = await payouts();
    expect(latest).to.include({ kind: "release", amount: "40.00", fee: "0.00", currency: "USDC", invoiceId: invoice.id, transactionHash: body.transactionHash });
    expect(latest.to).to.equal(getAddress(merchant.payout));
    // Released once: a second release is a conflict, and nothing moves.
    const again = await release(invoice.id);
    expect(again.status).to.equal(409);
    expect(((await again.json()) as Problem).type).to.equal("/problems/invoice-not-held");
  });

  it("refuses to release an invoice with fulfillBy until it is fulfilled, and a disputed one", async () => {
    const fulfilBy = new Date((Number((await chain.client.getBlock()).timestamp) + 7 * 86_400) * 1000).toISOString();
    const unfulfilled = await paid({ amount: "1.00", currency: "USDC", fulfillBy: fulfilBy });
    const refused = await release(unfulfilled.id);
    expect(((await refused.json()) as Problem).type).to.equal("/problems/not-fulfilled");
    expect((await stack.api("POST", `/v1/invoices/${unfulfilled.id}/fulfill`, { key: merchant.apiKey })).status).to.equal(202);
    expect((await release(unfulfilled.id)).status).to.equal(202);

    const disputed = await paid({ amount: "2.00", currency: "USDC", holdSeconds: 86_400 });
    const hash = await chain.wallet(4).writeContract({ address: disputed.payment.evm!.contract as Address, abi: billingEscrowAbi, functionName: "dispute", args: [invoiceFromJson(disputed.payment.evm!.invoice as Terms)], chain: null });
    await chain.client.waitForTransactionReceipt({ hash });
    await waitUntil("disputed", async () => (await read(disputed.id)).status === "disputed");
    const answer = await release(disputed.id);
    expect(answer.status).to.equal(409);
    expect(((await answer.json()) as Problem).type).to.equal("/problems/invoice-disputed");
  });

  it("lists subscription income withdrawn to the payout address", async () => {
    const plan = (await (await stack.api("POST", "/v1/plans", { key: merchant.apiKey, body: { chainId: chain.id, currency: "USDC", amount: "10.00", periodSeconds: 30 * 86_400 } })).json()) as {
      id: string;
      subscribe: { transactions: { to: string; data: string; value: string }[] };
    };
    await payWithInstructions(chain, 4, plan.subscribe.transactions);
    await timeTravel(chain, 30 * 86_400 + 1);
    const onchainId = merchant.onchainIds.get(chain.id)!;
    const before = await balance(merchant.payout);
    const hash = await chain.wallet(9).writeContract({
      address: chain.deployment.contracts.SubscriptionManager.address,
      abi: subscriptionManagerAbi,
      functionName: "withdraw",
      args: [onchainId, token, [1n]],
      chain: null,
    });
    await chain.client.waitForTransactionReceipt({ hash });
    expect((await balance(merchant.payout)) - before).to.equal(usdc(10));
    await waitUntil("withdrawal indexed", async () => (await payouts()).some((payout) => payout.transactionHash === hash));
    const withdrawal = (await payouts()).find((payout) => payout.transactionHash === hash)!;
    expect(withdrawal).to.include({ kind: "withdrawal", amount: "10.00", invoiceId: null });
  });

  it("shows a payout the address could not receive as deferred (claimable), and pages with a cursor", async () => {
    // The owner points the payout at a contract that refuses ETH: the release is credited to it instead.
    const artifact = JSON.parse(readFileSync(path.join(ROOT, "artifacts/contracts/test/Receivers.sol/RevertingReceiver.json"), "utf8")) as { abi: Abi; bytecode: Hex };
    const deployed = await chain.client.waitForTransactionReceipt({ hash: await chain.wallet(1).deployContract({ abi: artifact.abi, bytecode: artifact.bytecode, chain: null }) });
    const receiver = deployed.contractAddress!;
    const escrow = chain.deployment.contracts.BillingEscrow.address;
    const repoint = await chain.wallet(1).sendTransaction({ to: escrow, data: encodeFunctionData({ abi: billingEscrowAbi, functionName: "setMerchantPayout", args: [merchant.onchainIds.get(chain.id)!, receiver] }), chain: null });
    await chain.client.waitForTransactionReceipt({ hash: repoint });
    const invoice = await paid({ amount: "0.01", currency: "ETH" });
    const answer = await release(invoice.id);
    expect(answer.status, await answer.clone().text()).to.equal(202);
    const { transactionHash } = (await answer.json()) as { transactionHash: Hex };
    expect(await chain.client.readContract({ address: escrow, abi: billingEscrowAbi, functionName: "claimable", args: [receiver, "0x0000000000000000000000000000000000000000"] })).to.equal(parseEther("0.01"));
    await waitUntil("deferral indexed", async () => (await payouts()).some((payout) => payout.kind === "deferred"));
    const ofRelease = (await payouts()).filter((payout) => payout.transactionHash === transactionHash).map((payout) => [payout.kind, payout.amount, payout.to]);
    expect(ofRelease).to.deep.include.members([
      ["release", "0.01", getAddress(receiver)],
      ["deferred", "0.01", getAddress(receiver)],
    ]);

    const first = (await (await stack.api("GET", "/v1/payouts?limit=2", { key: merchant.apiKey })).json()) as { data: Payout[]; nextCursor: string };
    expect(first.data).to.have.length(2);
    const rest = (await (await stack.api("GET", `/v1/payouts?limit=100&cursor=${first.nextCursor}`, { key: merchant.apiKey })).json()) as { data: Payout[]; nextCursor: string | null };
    const all = await payouts();
    expect([...first.data, ...rest.data].map((payout) => `${payout.transactionHash}:${payout.kind}`)).to.deep.equal(all.map((payout) => `${payout.transactionHash}:${payout.kind}`));
    expect(rest.nextCursor).to.equal(null);
    // Another merchant sees none of it.
    const other = await createMerchant(stack, 5, "Other");
    expect(((await (await stack.api("GET", "/v1/payouts", { key: other.apiKey })).json()) as { data: unknown[] }).data).to.deep.equal([]);
  });
});
