/**
 * Invoices through the real stack (Hardhat node + deployed contracts + Ponder with the API): create, pay with
 * nothing but the API's instructions, watch the status follow the chain, refund, release, expire, void,
 * fulfil, list, and idempotency.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import {
  createTestClient,
  encodeFunctionData,
  getAddress,
  hashTypedData,
  http,
  keccak256,
  parseUnits,
  recoverTypedDataAddress,
  stringToBytes,
  zeroAddress,
  type Address,
  type Hex,
  type TypedDataDefinition,
} from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import type { Invoice as Terms } from "../../contracts/invoice";
import { canonicalJson } from "../../api/canonical-json";
import { termsFromJson, type InvoiceTermsJson } from "../../api/invoices/instructions";
import { createMerchant, startStack, testAccount, waitUntil, type LocalChain, type Stack, type TestMerchant, mockStablecoinAbi, mockStablecoinArtifact } from "./harness";


interface InvoiceJson {
  id: string;
  status: string;
  amount: string;
  amountBaseUnits: string;
  currency: string;
  token: Address;
  decimals: number;
  chainId: number;
  createdAt: string;
  expiresAt: string;
  description: string | null;
  lineItems: { description: string; quantity: number; unitAmount: string }[];
  customer: { id: string; email?: string } | null;
  metadata: Record<string, string>;
  allowedPayer: Address | null;
  fulfillBy: string | null;
  fulfilled: boolean;
  voidedAt: string | null;
  payer: Address | null;
  paidAt: string | null;
  paidTransaction: Hex | null;
  confirmations: number | null;
  heldAmount: string;
  refundedAmount: string;
  releasedAmount: string;
  invoiceKey: Hex;
  detailsHash: Hex;
  payment: {
    evm: {
      chainId: number;
      contract: Address;
      invoiceKey: Hex;
      invoice: InvoiceTermsJson;
      typedData: {
        domain: { name: string; version: string; chainId: number; verifyingContract: Address };
        types: Record<string, { name: string; type: string }[]>;
        primaryType: "Invoice";
        message: InvoiceTermsJson;
      };
      signature: Hex;
      transactions: { description: string; to: Address; data: Hex; value: string }[];
      uri: string;
    };
  };
}

interface ListJson {
  data: InvoiceJson[];
  hasMore: boolean;
  nextCursor: string | null;
}


const termsOf = termsFromJson;

describe("stack: invoices", function () {
  this.timeout(300_000);
  let stack: Stack;
  let merchant: TestMerchant;
  let chain: LocalChain;
  let escrow: Address;
  let usdc: Address;

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
    escrow = chain.deployment.contracts.BillingEscrow.address;
    usdc = chain.deployment.contracts.MockStablecoin!.address;
    merchant = await createMerchant(stack, 1);
  });
  after(async () => {
    await stack?.stop();
  });

  async function create(body: Record<string, unknown>, key: string = randomUUID()): Promise<Response> {
    return stack.api("POST", "/v1/invoices", { key: merchant.apiKey, body, headers: { "Idempotency-Key": key } });
  }

  async function createOk(body: Record<string, unknown>): Promise<InvoiceJson> {
    const response = await create({ chainId: chain.id, ...body });
    const text = await response.text();
    expect(response.status, text).to.equal(201);
    return JSON.parse(text) as InvoiceJson;
  }

  async function get(id: string): Promise<InvoiceJson> {
    const response = await stack.api("GET", `/v1/invoices/${id}`, { key: merchant.apiKey });
    expect(response.status).to.equal(200);
    return (await response.json()) as InvoiceJson;
  }

  async function waitForInvoice(id: string, what: string, predicate: (invoice: InvoiceJson) => boolean): Promise<InvoiceJson> {
    let last: InvoiceJson | undefined;
    await waitUntil(
      `invoice ${id} ${what}`,
      async () => {
        await new Promise((resolve) => setTimeout(resolve, 150));
        last = await get(id);
        return predicate(last);
      },
      30_000,
    );
    return last!;
  }

  /** Sends exactly the transactions the API lists, in order, from Hardhat account `walletIndex`. */
  async function payWithInstructions(invoice: InvoiceJson, walletIndex: number): Promise<Hex[]> {
    const wallet = chain.wallet(walletIndex);
    const hashes: Hex[] = [];
    for (const transaction of invoice.payment.evm.transactions) {
      const hash = await wallet.sendTransaction({
        to: transaction.to,
        data: transaction.data,
        value: BigInt(transaction.value),
        chain: null,
      });
      const receipt = await chain.client.waitForTransactionReceipt({ hash });
      expect(receipt.status, transaction.description).to.equal("success");
      hashes.push(hash);
    }
    return hashes;
  }

  async function jumpTime(seconds: number): Promise<void> {
    const testClient = createTestClient({ mode: "hardhat", transport: http(chain.rpcUrl) });
    await testClient.increaseTime({ seconds });
    await testClient.mine({ blocks: 1 }); // one block at a time while Ponder follows the chain
  }

  async function chainTime(): Promise<number> {
    return Number((await chain.client.getBlock()).timestamp);
  }

  async function usdcBalance(account: Address): Promise<bigint> {
    return (await chain.client.readContract({ address: usdc, abi: mockStablecoinAbi, functionName: "balanceOf", args: [account] })) as bigint;
  }

  async function mintUsdc(to: Address, amount: string): Promise<void> {
    const wallet = chain.wallet(0);
    const hash = await wallet.writeContract({
      address: usdc,
      abi: mockStablecoinAbi,
      functionName: "mint",
      args: [to, parseUnits(amount, 6)],
      chain: null,
    });
    await chain.client.waitForTransactionReceipt({ hash });
  }

  async function refund(id: string, body?: Record<string, unknown>): Promise<Response> {
    return stack.api("POST", `/v1/invoices/${id}/refund`, { key: merchant.apiKey, body });
  }

  async function expectProblem(response: Response, status: number, type?: string): Promise<Record<string, unknown>> {
    const text = await response.text();
    expect(response.status, text).to.equal(status);
    expect(response.headers.get("content-type")).to.contain("application/problem+json");
    const body = JSON.parse(text) as Record<string, unknown>;
    if (type) expect(body.type).to.equal(`/problems/${type}`);
    return body;
  }

  let paidEthInvoice: InvoiceJson;

  it("creates an ETH invoice whose signed terms the escrow and any verifier accept", async () => {
    const invoice = await createOk({
      amount: "0.25",
      currency: "ETH",
      description: "Consulting, March",
      lineItems: [{ description: "Hours", quantity: 5, unitAmount: "0.05" }],
      customer: { id: "cus_eth", email: "ada@example.com" },
      metadata: { order: "A-1001" },
    });
    expect(invoice.id).to.match(/^inv_/);
    expect(invoice.status).to.equal("open");
    expect(invoice.amount).to.equal("0.25");
    expect(invoice.amountBaseUnits).to.equal(parseUnits("0.25", 18).toString());
    expect(invoice.currency).to.equal("ETH");
    expect(invoice.token).to.equal(zeroAddress);
    expect(invoice.decimals).to.equal(18);
    expect(invoice.chainId).to.equal(chain.id);
    expect(invoice.confirmations).to.equal(0);
    expect(invoice.paidAt).to.equal(null);
    expect(invoice.refundedAmount).to.equal("0.00");
    expect(new Date(invoice.expiresAt).getTime()).to.be.greaterThan(Date.now() + 50 * 60_000);

    const evm = invoice.payment.evm;
    expect(evm.contract).to.equal(escrow);
    expect(evm.transactions).to.have.length(1);
    expect(evm.transactions[0].to).to.equal(escrow);
    expect(evm.transactions[0].value).to.equal(invoice.amountBaseUnits);
    expect(evm.uri).to.equal(`ethereum:${escrow}@${chain.id}?value=${invoice.amountBaseUnits}&data=${evm.transactions[0].data}`);
    expect(evm.invoice.invoiceId).to.equal(keccak256(stringToBytes(invoice.id)));
    expect(BigInt(evm.invoice.merchantId)).to.equal(merchant.onchainIds.get(chain.id));

    // The escrow computes the same key from the terms; the typed data hashes to it; the operator signed it.
    const terms = termsOf(evm.invoice);
    const onchainKey = await chain.client.readContract({ address: escrow, abi: billingEscrowAbi, functionName: "invoiceKey", args: [terms] });
    expect(onchainKey).to.equal(evm.invoiceKey);
    expect(invoice.invoiceKey).to.equal(evm.invoiceKey);
    const typedData = { ...evm.typedData, message: terms } as unknown as TypedDataDefinition;
    expect(hashTypedData(typedData)).to.equal(evm.invoiceKey);
    expect(await recoverTypedDataAddress({ ...typedData, signature: evm.signature } as Parameters<typeof recoverTypedDataAddress>[0])).to.equal(
      getAddress(merchant.operator),
    );
    // detailsHash commits to the off-chain details exactly as returned.
    const details = { customer: invoice.customer, description: invoice.description, lineItems: invoice.lineItems, metadata: invoice.metadata };
    expect(keccak256(stringToBytes(canonicalJson(details)))).to.equal(evm.invoice.detailsHash);
  });

  it("pays an ETH invoice with only the API's transactions; GET shows it paid with confirmations", async () => {
    const invoice = await createOk({ amount: "0.1", currency: "ETH", customer: { id: "cus_eth_paid" } });
    const payer = testAccount(5).address;
    const [hash] = await payWithInstructions(invoice, 5);
    const paid = await waitForInvoice(invoice.id, "paid", (current) => current.status === "paid" && (current.confirmations ?? 0) >= 1);
    expect(paid.payer).to.equal(payer);
    expect(paid.paidTransaction).to.equal(hash);
    expect(paid.paidAt).to.be.a("string");
    expect(paid.heldAmount).to.equal("0.10");
    paidEthInvoice = paid;

    // Paying twice is refused by the escrow.
    let reverted = false;
    try {
      await payWithInstructions(invoice, 6);
    } catch {
      reverted = true;
    }
    expect(reverted, "a second payment must revert").to.equal(true);
  });

  it("USDC invoice: approve + pay from the API's instructions, partial refund, then full refund", async () => {
    const payerIndex = 6;
    const payer = testAccount(payerIndex).address;
    await mintUsdc(payer, "100");
    const invoice = await createOk({ amount: "12.50", currency: "USDC", customer: { id: "cus_usdc" } });
    expect(invoice.currency).to.equal("USDC");
    expect(invoice.token).to.equal(usdc);
    expect(invoice.decimals).to.equal(6);
    expect(invoice.amountBaseUnits).to.equal("12500000");
    const [approve, pay] = invoice.payment.evm.transactions;
    expect(approve.to).to.equal(usdc);
    expect(approve.description).to.match(/skip/i);
    expect(approve.data).to.equal(
      encodeFunctionData({ abi: mockStablecoinAbi, functionName: "approve", args: [escrow, 12_500_000n] }),
    );
    expect(pay.to).to.equal(escrow);
    expect(pay.value).to.equal("0");
    expect(invoice.payment.evm.uri).to.equal(`ethereum:${usdc}@${chain.id}/approve?address=${escrow}&uint256=12500000`);
    // A customer who scans links needs both: one per transaction, in order (the first alone only approves).
    const [approveUri, payUri] = (invoice.payment.evm.transactions as unknown as { uri: string }[]).map((transaction) => transaction.uri);
    expect(approveUri).to.equal(invoice.payment.evm.uri);
    expect(payUri).to.equal(`ethereum:${escrow}@${chain.id}?value=0&data=${pay.data}`);

    await payWithInstructions(invoice, payerIndex);
    expect(await usdcBalance(payer)).to.equal(parseUnits("87.5", 6));
    await waitForInvoice(invoice.id, "paid", (current) => current.status === "paid" && (current.confirmations ?? 0) >= 1);

    const tooMuch = await refund(invoice.id, { amount: "20" });
    const tooMuchBody = await expectProblem(tooMuch, 409, "refund-exceeds-held");
    expect(tooMuchBody.detail).to.contain("12.50");

    const partial = await refund(invoice.id, { amount: "2.50" });
    expect(partial.status, await partial.clone().text()).to.equal(202);
    const partialBody = (await partial.json()) as { transactionHash: Hex; invoice: InvoiceJson };
    expect(partialBody.transactionHash).to.match(/^0x[0-9a-f]{64}$/);
    expect(partialBody.invoice.status).to.equal("partially_refunded");
    expect(partialBody.invoice.refundedAmount).to.equal("2.50");
    expect(partialBody.invoice.heldAmount).to.equal("10.00");
    expect(await usdcBalance(payer)).to.equal(parseUnits("90", 6));
    expect((await get(invoice.id)).status).to.equal("partially_refunded");

    const full = await refund(invoice.id);
    expect(full.status).to.equal(202);
    const fullBody = (await full.json()) as { invoice: InvoiceJson };
    expect(fullBody.invoice.status).to.equal("refunded");
    expect(fullBody.invoice.refundedAmount).to.equal("12.50");
    expect(fullBody.invoice.heldAmount).to.equal("0.00");
    expect(await usdcBalance(payer)).to.equal(parseUnits("100", 6));

    await expectProblem(await refund(invoice.id, { amount: "1" }), 409, "invoice-not-refundable");
  });

  it("refuses to refund an unpaid invoice", async () => {
    const invoice = await createOk({ amount: "1", currency: "ETH" });
    await expectProblem(await refund(invoice.id), 409, "invoice-not-paid");
  });

  it("releases after the hold when any account calls release", async () => {
    const invoice = await createOk({ amount: "0.3", currency: "ETH", holdSeconds: 30 });
    await payWithInstructions(invoice, 7);
    await waitForInvoice(invoice.id, "paid", (current) => current.status === "paid");
    const terms = termsOf(invoice.payment.evm.invoice);
    const stranger = chain.wallet(8);
    const release = () =>
      stranger.writeContract({ address: escrow, abi: billingEscrowAbi, functionName: "release", args: [terms], chain: null });

    let early = false;
    try {
      await release();
    } catch {
      early = true;
    }
    expect(early, "release before the hold ends must revert").to.equal(true);

    const payoutBefore = await chain.client.getBalance({ address: merchant.payout });
    await jumpTime(31);
    const hash = await release();
    expect((await chain.client.waitForTransactionReceipt({ hash })).status).to.equal("success");
    const released = await waitForInvoice(invoice.id, "released", (current) => current.status === "released");
    expect(released.releasedAmount).to.equal("0.30");
    expect(released.heldAmount).to.equal("0.00");
    expect(await chain.client.getBalance({ address: merchant.payout })).to.equal(payoutBefore + parseUnits("0.3", 18));
    await expectProblem(await refund(invoice.id), 409, "invoice-not-refundable");
  });

  it("expires an unpaid invoice at expiresAt (chain time)", async () => {
    const invoice = await createOk({ amount: "0.01", currency: "ETH", expiresInSeconds: 60 });
    expect(invoice.status).to.equal("open");
    await jumpTime(61);
    const expired = await waitForInvoice(invoice.id, "expired", (current) => current.status === "expired");
    expect(expired.paidAt).to.equal(null);
    // Paying it now is refused by the escrow, and voiding it is pointless.
    let reverted = false;
    try {
      await payWithInstructions(invoice, 9);
    } catch {
      reverted = true;
    }
    expect(reverted).to.equal(true);
    await expectProblem(await stack.api("POST", `/v1/invoices/${invoice.id}/void`, { key: merchant.apiKey }), 409, "invoice-not-open");
  });

  it("voids an open invoice on-chain so its signature can never be used", async () => {
    const invoice = await createOk({ amount: "0.02", currency: "ETH" });
    const response = await stack.api("POST", `/v1/invoices/${invoice.id}/void`, { key: merchant.apiKey });
    expect(response.status, await response.clone().text()).to.equal(202);
    const body = (await response.json()) as { transactionHash: Hex; invoice: InvoiceJson };
    expect(body.invoice.status).to.equal("void");
    expect(body.invoice.voidedAt).to.be.a("string");
    const receipt = await chain.client.getTransactionReceipt({ hash: body.transactionHash });
    expect(receipt.status).to.equal("success");
    expect(getAddress(receipt.from)).to.equal(getAddress(merchant.operator));
    expect((await get(invoice.id)).status).to.equal("void");

    let reverted = false;
    try {
      await payWithInstructions(invoice, 9);
    } catch {
      reverted = true;
    }
    expect(reverted, "paying a voided invoice must revert").to.equal(true);
    await expectProblem(await stack.api("POST", `/v1/invoices/${invoice.id}/void`, { key: merchant.apiKey }), 409, "invoice-not-open");
    // A paid invoice cannot be voided.
    const paidVoid = await expectProblem(
      await stack.api("POST", `/v1/invoices/${paidEthInvoice.id}/void`, { key: merchant.apiKey }),
      409,
      "invoice-not-open",
    );
    expect(paidVoid.detail).to.match(/refund/);
  });

  it("marks a paid invoice with a fulfilment deadline fulfilled", async () => {
    const fulfillBy = new Date((await chainTime()) * 1000 + 86_400_000).toISOString();
    const invoice = await createOk({ amount: "0.05", currency: "ETH", fulfillBy });
    expect(invoice.fulfillBy).to.equal(new Date(Math.floor(Date.parse(fulfillBy) / 1000) * 1000).toISOString());
    expect(invoice.payment.evm.invoice.fulfillBy).to.equal(String(Math.floor(Date.parse(fulfillBy) / 1000)));
    const fulfil = () => stack.api("POST", `/v1/invoices/${invoice.id}/fulfill`, { key: merchant.apiKey });

    await expectProblem(await fulfil(), 409, "invoice-not-paid");
    await payWithInstructions(invoice, 10);
    await waitForInvoice(invoice.id, "paid", (current) => current.status === "paid");
    const response = await fulfil();
    expect(response.status, await response.clone().text()).to.equal(202);
    const body = (await response.json()) as { transactionHash: Hex; invoice: InvoiceJson };
    expect(body.invoice.fulfilled).to.equal(true);
    expect(body.invoice.status).to.equal("paid");
    expect((await get(invoice.id)).fulfilled).to.equal(true);
    await expectProblem(await fulfil(), 409, "already-fulfilled");
    await expectProblem(
      await stack.api("POST", `/v1/invoices/${paidEthInvoice.id}/fulfill`, { key: merchant.apiKey }),
      409,
      "no-fulfillment-deadline",
    );
  });

  it("creates an invoice in any ERC-20 by address, reading its decimals and symbol on-chain", async () => {
    const deployer = chain.wallet(0);
    const hash = await deployer.deployContract({
      abi: mockStablecoinAbi,
      bytecode: mockStablecoinArtifact.bytecode,
      args: ["Euro Coin", "EURC", 2],
      chain: null,
    });
    const { contractAddress } = await chain.client.waitForTransactionReceipt({ hash });
    const token = getAddress(contractAddress!);
    const invoice = await createOk({ amount: "10.05", currency: token.toLowerCase() });
    expect(invoice.currency).to.equal("EURC");
    expect(invoice.token).to.equal(token);
    expect(invoice.decimals).to.equal(2);
    expect(invoice.amountBaseUnits).to.equal("1005");
    expect(invoice.payment.evm.transactions).to.have.length(2);
    const tooPrecise = await expectProblem(await create({ chainId: chain.id, amount: "10.005", currency: token }), 422, "validation-error");
    expect((tooPrecise.errors as { field: string }[]).map((error) => error.field)).to.deep.equal(["amount"]);
  });

  it("lists invoices newest first with filters and cursor pagination", async () => {
    const customer = `cus_list_${randomUUID()}`;
    const created: InvoiceJson[] = [];
    for (let index = 0; index < 5; index += 1) {
      created.push(await createOk({ amount: `${index + 1}`, currency: "USDC", customer: { id: customer } }));
    }
    const newestFirst = created.map((invoice) => invoice.id).reverse();
    const list = async (query: string) => {
      const response = await stack.api("GET", `/v1/invoices?${query}`, { key: merchant.apiKey });
      expect(response.status, await response.clone().text()).to.equal(200);
      return (await response.json()) as ListJson;
    };

    const all = await list(`customerId=${customer}`);
    expect(all.data.map((invoice) => invoice.id)).to.deep.equal(newestFirst);
    expect(all.hasMore).to.equal(false);
    expect(all.nextCursor).to.equal(null);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: ListJson = await list(`customerId=${customer}&limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      pages += 1;
      expect(page.data.length).to.be.at.most(2);
      seen.push(...page.data.map((invoice) => invoice.id));
      expect(page.hasMore).to.equal(page.nextCursor !== null);
      cursor = page.nextCursor;
    } while (cursor);
    expect(pages).to.equal(3);
    expect(seen).to.deep.equal(newestFirst);

    // Status is derived from the chain: void one, then filter by status.
    const voided = await stack.api("POST", `/v1/invoices/${created[1].id}/void`, { key: merchant.apiKey });
    expect(voided.status).to.equal(202);
    expect((await list(`customerId=${customer}&status=void`)).data.map((invoice) => invoice.id)).to.deep.equal([created[1].id]);
    const open = await list(`customerId=${customer}&status=open&limit=2`);
    expect(open.data.map((invoice) => invoice.id)).to.deep.equal([newestFirst[0], newestFirst[1]]);
    expect(open.hasMore).to.equal(true);
    const openRest = await list(`customerId=${customer}&status=open&limit=2&cursor=${encodeURIComponent(open.nextCursor!)}`);
    expect(openRest.data.map((invoice) => invoice.id)).to.deep.equal([newestFirst[2], newestFirst[4]]);
    expect(openRest.hasMore).to.equal(false);

    const paid = await list("status=paid");
    expect(paid.data.map((invoice) => invoice.id)).to.include(paidEthInvoice.id);
    expect(paid.data.every((invoice) => invoice.status === "paid")).to.equal(true);

    expect((await list(`customerId=${customer}&chainId=${chain.id}`)).data).to.have.length(5);
    expect((await list(`customerId=${customer}&chainId=999`)).data).to.have.length(0);
    const middle = created[2].createdAt;
    expect((await list(`customerId=${customer}&createdAfter=${encodeURIComponent(middle)}`)).data.map((invoice) => invoice.id)).to.deep.equal(
      newestFirst.slice(0, 2),
    );
    expect((await list(`customerId=${customer}&createdBefore=${encodeURIComponent(middle)}`)).data.map((invoice) => invoice.id)).to.deep.equal(
      newestFirst.slice(3),
    );
    expect((await list(`createdAfter=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`)).data).to.have.length(0);
  });

  it("replays the same response for the same Idempotency-Key and body, and refuses the key with another body", async () => {
    const key = randomUUID();
    const body = { chainId: chain.id, amount: "3.00", currency: "USDC", customer: { id: "cus_idem" } };
    const first = await create(body, key);
    const firstText = await first.text();
    expect(first.status).to.equal(201);
    // Same body with its keys in another order is the same request.
    const second = await create({ customer: { id: "cus_idem" }, currency: "USDC", amount: "3.00", chainId: chain.id }, key);
    expect(second.status).to.equal(201);
    expect(second.headers.get("idempotent-replayed")).to.equal("true");
    expect(await second.text()).to.equal(firstText);

    const reused = await create({ ...body, amount: "4.00" }, key);
    const problem = await expectProblem(reused, 409, "idempotency-key-reused");
    expect((problem.errors as { field: string }[])[0].field).to.equal("Idempotency-Key");

    // The key is per merchant: another merchant may use the same key for its own invoice.
    const other = await createMerchant(stack, 11, "Other merchant");
    const otherResponse = await stack.api("POST", "/v1/invoices", { key: other.apiKey, body, headers: { "Idempotency-Key": key } });
    expect(otherResponse.status).to.equal(201);
    expect(((await otherResponse.json()) as InvoiceJson).id).to.not.equal((JSON.parse(firstText) as InvoiceJson).id);
  });

  it("creates exactly one invoice for 20 concurrent identical requests", async () => {
    const key = randomUUID();
    const customer = `cus_concurrent_${randomUUID()}`;
    const body = { chainId: chain.id, amount: "7.77", currency: "USDC", customer: { id: customer } };
    const responses = await Promise.all(Array.from({ length: 20 }, () => create(body, key)));
    const texts = await Promise.all(responses.map((response) => response.text()));
    expect(responses.map((response) => response.status)).to.deep.equal(Array(20).fill(201));
    const ids = new Set(texts.map((text) => (JSON.parse(text) as InvoiceJson).id));
    expect(ids.size).to.equal(1);
    expect(new Set(texts).size).to.equal(1);
    const list = (await (await stack.api("GET", `/v1/invoices?customerId=${customer}`, { key: merchant.apiKey })).json()) as ListJson;
    expect(list.data).to.have.length(1);
    expect(list.data[0].id).to.equal([...ids][0]);
  });
});
