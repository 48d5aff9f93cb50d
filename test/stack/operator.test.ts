/**
 * Transactions the API sends with a merchant's operator key: one path for every action (simulate in the
 * operator's queue, map the contract's error, check gas, send, wait), so a failure is a clear problem and never a
 * state the chain does not have; concurrent actions give one success and clear conflicts; retries with an
 * Idempotency-Key replay the first answer.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import type { Address } from "viem";
import { createMerchant, mockStablecoinAbi, payWithInstructions, startStack, testAccount, usdc, waitUntil, type InvoiceJson, type LocalChain, type Stack, type TestMerchant } from "./harness";

interface Problem {
  type: string;
  status: number;
  detail: string;
  operator?: string;
  balanceWei?: string;
  neededWei?: string;
}

describe("stack: operator transactions", function () {
  this.timeout(300_000);
  let stack: Stack;
  let chain: LocalChain;

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
  });
  after(async () => {
    await stack?.stop();
  });

  async function createInvoice(key: string, body: Record<string, unknown> = {}): Promise<InvoiceJson> {
    const response = await stack.api("POST", "/v1/invoices", { key, headers: { "Idempotency-Key": randomUUID() }, body: { chainId: chain.id, amount: "0.1", currency: "ETH", ...body } });
    expect(response.status, await response.clone().text()).to.equal(201);
    return (await response.json()) as InvoiceJson;
  }

  async function read(key: string, id: string): Promise<InvoiceJson> {
    return (await (await stack.api("GET", `/v1/invoices/${id}`, { key })).json()) as InvoiceJson;
  }

  describe("an operator without ETH for gas", () => {
    let merchant: TestMerchant;
    before(async () => {
      merchant = await createMerchant(stack, 1, "Unfunded operator", { operatorFunding: 0n });
    });

    it("a void answers 503 operator-needs-gas naming the operator and its balance; the invoice stays open and payable", async () => {
      const invoice = await createInvoice(merchant.apiKey);
      const response = await stack.api("POST", `/v1/invoices/${invoice.id}/void`, { key: merchant.apiKey });
      expect(response.status).to.equal(503);
      const problem = (await response.json()) as Problem;
      expect(problem.type).to.equal("/problems/operator-needs-gas");
      expect(problem.operator).to.equal(merchant.operator);
      expect(problem.balanceWei).to.equal("0");
      expect(BigInt(problem.neededWei!)).to.be.greaterThan(0n);
      expect(problem.detail).to.contain(merchant.operator).and.not.to.match(/viem|Details:|Version:/);

      const after = await read(merchant.apiKey, invoice.id);
      expect(after.status).to.equal("open");
      expect(after.voidedAt).to.equal(null);
      await payWithInstructions(chain, 4, invoice.payment.evm!.transactions);
      await waitUntil("payment indexed", async () => (await read(merchant.apiKey, invoice.id)).status === "paid");
    });

    it("a refund answers 503 too and changes nothing; once funded, the same request succeeds", async () => {
      const invoice = await createInvoice(merchant.apiKey);
      await payWithInstructions(chain, 4, invoice.payment.evm!.transactions);
      await waitUntil("payment indexed", async () => (await read(merchant.apiKey, invoice.id)).status === "paid");
      const refused = await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: "0.05" } });
      expect(refused.status).to.equal(503);
      expect((await read(merchant.apiKey, invoice.id)).refundedAmount).to.equal("0.00");
      await payWithInstructions(chain, 1, [{ to: merchant.operator, data: "0x", value: (10n ** 17n).toString() }]);
      const accepted = await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: "0.05" } });
      expect(accepted.status, await accepted.clone().text()).to.equal(202);
      expect(((await accepted.json()) as { invoice: InvoiceJson }).invoice.refundedAmount).to.equal("0.05");
    });
  });

  describe("concurrent actions", () => {
    let merchant: TestMerchant;
    before(async () => {
      merchant = await createMerchant(stack, 5, "Busy merchant");
    });

    it("five concurrent cancels of one subscription: one 202 and four 409 subscription-not-cancelable", async () => {
      const plan = await stack.api("POST", "/v1/plans", { key: merchant.apiKey, body: { chainId: chain.id, currency: "USDC", amount: "10.00", periodSeconds: 30 * 86_400 } });
      expect(plan.status, await plan.clone().text()).to.equal(201);
      const planBody = (await plan.json()) as { id: string; subscribe: { transactions: { to: Address; data: `0x${string}`; value: string }[] } };
      const token = chain.deployment.contracts.MockStablecoin!.address;
      const subscriber = chain.wallet(7);
      const mint = await chain.wallet(0).writeContract({ address: token, abi: mockStablecoinAbi, functionName: "mint", args: [testAccount(7).address, usdc(100)], chain: null });
      await chain.client.waitForTransactionReceipt({ hash: mint });
      await payWithInstructions(chain, 7, planBody.subscribe.transactions);
      let id = "";
      await waitUntil("subscription indexed", async () => {
        const list = (await (await stack.api("GET", `/v1/subscriptions?subscriber=${subscriber.account.address}`, { key: merchant.apiKey })).json()) as { data: { id: string }[] };
        id = list.data[0]?.id ?? "";
        return id !== "";
      });
      const answers = await Promise.all(Array.from({ length: 5 }, () => stack.api("POST", `/v1/subscriptions/${id}/cancel`, { key: merchant.apiKey })));
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses).to.deep.equal([202, 409, 409, 409, 409]);
      for (const answer of answers.filter((candidate) => candidate.status === 409)) {
        expect(((await answer.json()) as Problem).type).to.equal("/problems/subscription-not-cancelable");
      }
    });

    it("five concurrent full refunds of one invoice: one 202, the others 409 and nothing refunded twice", async () => {
      const invoice = await createInvoice(merchant.apiKey, { amount: "0.2" });
      await payWithInstructions(chain, 4, invoice.payment.evm!.transactions);
      await waitUntil("payment indexed", async () => (await read(merchant.apiKey, invoice.id)).status === "paid");
      const answers = await Promise.all(Array.from({ length: 5 }, () => stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey })));
      const statuses = answers.map((answer) => answer.status).sort();
      expect(statuses).to.deep.equal([202, 409, 409, 409, 409]);
      for (const answer of answers.filter((candidate) => candidate.status === 409)) {
        const problem = (await answer.json()) as Problem;
        expect(["/problems/invoice-not-refundable", "/problems/refund-exceeds-held"]).to.include(problem.type);
      }
      expect((await read(merchant.apiKey, invoice.id)).refundedAmount).to.equal("0.20");
    });

    it("an action retried with the same Idempotency-Key replays the first answer and sends nothing twice", async () => {
      const invoice = await createInvoice(merchant.apiKey, { amount: "0.3" });
      await payWithInstructions(chain, 4, invoice.payment.evm!.transactions);
      await waitUntil("payment indexed", async () => (await read(merchant.apiKey, invoice.id)).status === "paid");
      const key = randomUUID();
      const [first, second] = await Promise.all(
        [0, 1].map(() => stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: "0.10" }, headers: { "Idempotency-Key": key } })),
      );
      expect([first.status, second.status]).to.deep.equal([202, 202]);
      const [a, b] = [await first.text(), await second.text()];
      expect(a).to.equal(b);
      expect([first.headers.get("idempotent-replayed"), second.headers.get("idempotent-replayed")]).to.include("true");
      const reused = await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: "0.20" }, headers: { "Idempotency-Key": key } });
      expect(reused.status).to.equal(409);
      expect((await read(merchant.apiKey, invoice.id)).refundedAmount).to.equal("0.10");
    });

    it("every state-changing route documents the Idempotency-Key header", async () => {
      const document = (await (await fetch(`${stack.apiUrl}/openapi.json`)).json()) as { paths: Record<string, Record<string, { parameters?: { in: string; name: string }[] }>> };
      for (const [path, operations] of Object.entries(document.paths)) {
        // Outside /v1 only the customer's refund link: a PUT of one value (idempotent by itself), with no merchant key.
        if (!path.startsWith("/v1/")) continue;
        for (const [method, operation] of Object.entries(operations)) {
          if (method === "get") continue;
          const header = (operation.parameters ?? []).some((parameter) => parameter.in === "header" && parameter.name.toLowerCase() === "idempotency-key");
          expect(header, `${method.toUpperCase()} ${path}`).to.equal(true);
        }
      }
    });
  });
});
