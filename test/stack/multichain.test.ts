/**
 * Two local chains (31337 and 31338) in one stack. The same merchant is registered on both under different
 * on-chain ids, while another merchant holds id 1 on 31338: the indexer and the API must key everything by
 * chain, so each chain shows its own registration, invoices and ledger, and nothing crosses over.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { getAddress, keccak256, parseEther, stringToBytes, type Address, type Hex } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { billingEscrowDomain, buildInvoice, signInvoice, signMerchantRegistration } from "../../contracts/invoice";
import { createMerchant, startStack, testAccount, waitUntil, type LocalChain, type Stack, type TestMerchant } from "./harness";

interface InvoiceJson {
  id: string;
  status: string;
  chainId: number;
  paidTransaction: Hex | null;
  payment: { evm: { chainId: number; contract: Address; invoice: { merchantId: string }; transactions: { to: Address; data: Hex; value: string }[] } };
}

interface StatementJson {
  chains: { chainId: number; onchainMerchantId: string; totals: { paid: string }; entries: { transactionHash: Hex; invoiceId: string | null }[] }[];
}

describe("stack: two chains", function () {
  this.timeout(300_000);
  let stack: Stack;
  let merchant: TestMerchant;
  let chainA: LocalChain;
  let chainB: LocalChain;
  let otherMerchantPayment: Hex;

  before(async () => {
    stack = await startStack({ chainIds: [31337, 31338] });
    [chainA, chainB] = stack.chains;
  });
  after(async () => {
    await stack?.stop();
  });

  it("registers another merchant first on 31338 only, paid directly on-chain (id 1 there)", async () => {
    // Account #7 is owner, payout and signer of a merchant the API does not know.
    const other = chainB.wallet(7);
    const escrow = chainB.deployment.contracts.BillingEscrow.address;
    const domain = billingEscrowDomain(chainB.id, escrow);
    const { args } = await signMerchantRegistration(testAccount(7) as Parameters<typeof signInvoice>[0], domain, {
      owner: other.account.address,
      payout: other.account.address,
      nonce: 0n,
      deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
    });
    const register = await other.writeContract({ address: escrow, abi: billingEscrowAbi, functionName: "registerMerchant", args, chain: null });
    await chainB.client.waitForTransactionReceipt({ hash: register });
    const invoice = buildInvoice({
      merchantId: 1n,
      invoiceId: keccak256(stringToBytes("other-merchant-invoice")),
      amount: parseEther("0.3"),
      expiresAt: BigInt(Math.floor(Date.now() / 1000) + 3600),
      maxFeeBps: 0,
    });
    const signature = await signInvoice(testAccount(7) as Parameters<typeof signInvoice>[0], domain, invoice);
    otherMerchantPayment = await chainB.wallet(8).writeContract({
      address: escrow,
      abi: billingEscrowAbi,
      functionName: "pay",
      args: [invoice, signature],
      value: invoice.amount,
      chain: null,
    });
    expect((await chainB.client.waitForTransactionReceipt({ hash: otherMerchantPayment })).status).to.equal("success");
  });

  it("registers one API merchant on both chains; /v1/merchants/me shows each registration with its own id", async () => {
    merchant = await createMerchant(stack, 1, "Two-chain merchant");
    expect(merchant.onchainIds.get(31337)).to.equal(1n);
    expect(merchant.onchainIds.get(31338)).to.equal(2n);

    const me = (await (await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey })).json()) as {
      chains: { chainId: number; registered: boolean; onchainMerchantId: string; escrow: Address; payout: string }[];
    };
    expect(me.chains.map((chain) => [chain.chainId, chain.onchainMerchantId, chain.escrow])).to.deep.equal([
      [31337, "1", chainA.deployment.contracts.BillingEscrow.address],
      [31338, "2", chainB.deployment.contracts.BillingEscrow.address],
    ]);
    for (const chain of me.chains) expect(chain.payout).to.equal(getAddress(merchant.payout));
  });

  it("creates and pays one invoice per chain; each is signed for, paid on and indexed from its own chain", async () => {
    const invoices = new Map<number, InvoiceJson>();
    for (const [chain, amount] of [[chainA, "0.1"], [chainB, "0.2"]] as const) {
      const response = await stack.api("POST", "/v1/invoices", {
        key: merchant.apiKey,
        headers: { "Idempotency-Key": randomUUID() },
        body: { chainId: chain.id, amount, currency: "ETH", description: `Invoice on ${chain.id}` },
      });
      expect(response.status, await response.clone().text()).to.equal(201);
      const invoice = (await response.json()) as InvoiceJson;
      expect(invoice.chainId).to.equal(chain.id);
      expect(invoice.payment.evm.chainId).to.equal(chain.id);
      expect(invoice.payment.evm.contract).to.equal(chain.deployment.contracts.BillingEscrow.address);
      expect(BigInt(invoice.payment.evm.invoice.merchantId)).to.equal(merchant.onchainIds.get(chain.id));
      invoices.set(chain.id, invoice);
    }

    const paidWith = new Map<number, Hex>();
    for (const chain of [chainA, chainB]) {
      const wallet = chain.wallet(3);
      for (const transaction of invoices.get(chain.id)!.payment.evm.transactions) {
        const hash = await wallet.sendTransaction({ to: transaction.to, data: transaction.data, value: BigInt(transaction.value), chain: null });
        expect((await chain.client.waitForTransactionReceipt({ hash })).status).to.equal("success");
        paidWith.set(chain.id, hash);
      }
    }
    for (const chain of [chainA, chainB]) {
      const id = invoices.get(chain.id)!.id;
      let current: InvoiceJson | undefined;
      await waitUntil(`invoice on ${chain.id} paid`, async () => {
        current = (await (await stack.api("GET", `/v1/invoices/${id}`, { key: merchant.apiKey })).json()) as InvoiceJson;
        return current.status === "paid";
      }, 30_000);
      expect(current!.paidTransaction).to.equal(paidWith.get(chain.id));
    }

    // The statement has one part per chain, each with its own merchant id and only its own movements: the
    // other merchant's payment to id 1 on 31338 appears nowhere, not even under id 1 on 31337.
    let statement: StatementJson | undefined;
    await waitUntil("both payments in the statement", async () => {
      const response = await stack.api("GET", "/v1/statements?currency=ETH", { key: merchant.apiKey });
      expect(response.status, await response.clone().text()).to.equal(200);
      statement = (await response.json()) as StatementJson;
      return statement.chains.every((chain) => chain.entries.length > 0);
    }, 5_000);
    const parts = statement!.chains.map((chain) => ({
      chainId: chain.chainId,
      merchantId: chain.onchainMerchantId,
      paid: chain.totals.paid,
      transactions: chain.entries.map((entry) => entry.transactionHash),
      invoices: chain.entries.map((entry) => entry.invoiceId),
    }));
    expect(parts).to.deep.equal([
      { chainId: 31337, merchantId: "1", paid: "0.10", transactions: [paidWith.get(31337)], invoices: [invoices.get(31337)!.id] },
      { chainId: 31338, merchantId: "2", paid: "0.20", transactions: [paidWith.get(31338)], invoices: [invoices.get(31338)!.id] },
    ]);
    expect(parts.flatMap((part) => part.transactions)).not.to.include(otherMerchantPayment);
  });
});
