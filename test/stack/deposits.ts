/**
 * Paying by plain transfer on the whole stack (run on the keeper test's stack): an invoice's deposit address and
 * its EIP-681 link in the API answer, a customer's plain USDC transfer seen by the deposit watcher (`underpaid`
 * with what is missing, then `pending`), webhooks `invoice.payment_detected` / `invoice.underpaid`, the keeper's
 * sweep turning it into the invoice's payment (indexed: `overpaid` while an excess is held), a refund refused
 * until the refund address is set through the API (once, never the deposit address), the keeper returning the
 * excess, a refund through the API to that address, the hold ending and the keeper releasing to the merchant;
 * an ETH invoice paid by a plain 21,000-gas send the same way.
 */
import { expect } from "chai";
import { getAddress, parseEther, zeroAddress, type Address } from "viem";
import { depositAddress } from "../../contracts/invoice";
import type { KeeperAction } from "../../scripts/lib/keeper";
import { invoicesOf, mintStablecoin, mockStablecoinAbi, testAccount, timeTravel, usdc, waitUntil, type LocalChain, type Stack, type TestMerchant } from "./harness";

export interface DepositContext {
  stack: Stack;
  chain: LocalChain;
  merchant: TestMerchant;
  keeper: () => Promise<KeeperAction[]>;
}

const CUSTOMER = 6;

export function depositTests(context: () => DepositContext): void {
  describe("paying by plain transfer to the invoice's deposit address", () => {
    const done = (actions: KeeperAction[], label: string) => actions.filter((action) => action.label.startsWith(label) && action.hash && !action.skipped);
    /** Every event of the invoice, paging through GET /v1/events. */
    const eventsOf = async (ctx: DepositContext, invoiceId: string) => {
      const types: string[] = [];
      let after: string | null = null;
      for (;;) {
        const path: string = `/v1/events?limit=100${after ? `&after=${encodeURIComponent(after)}` : ""}`;
        const page = (await (await ctx.stack.api("GET", path, { key: ctx.merchant.apiKey })).json()) as { data: { type: string; data: { invoiceId?: string } }[]; nextCursor: string | null; hasMore: boolean };
        types.push(...page.data.filter((event) => event.data.invoiceId === invoiceId).map((event) => event.type));
        if (!page.hasMore || !page.nextCursor) return types;
        after = page.nextCursor;
      }
    };

    it("USDC: underpaid, topped up, swept by the keeper, overpaid until the excess is returned to the refund address set through the API, refunded through the API, then released", async () => {
      const ctx = context();
      const { chain, merchant, stack } = ctx;
      const { create, read } = invoicesOf(stack, merchant, chain);
      const token = chain.deployment.contracts.MockStablecoin!.address;
      await mintStablecoin(chain, CUSTOMER, usdc(1_000));
      const invoice = await create({ currency: "USDC", amount: "25.00", holdSeconds: 3_600 });
      const evm = invoice.payment.evm!;
      const deposit = evm.depositAddress as Address;
      expect(deposit).to.equal(depositAddress(chain.deployment.contracts.BillingEscrow.address, evm.invoiceKey as `0x${string}`));
      expect(evm.depositUri).to.equal(`ethereum:${getAddress(token)}@${chain.id}/transfer?address=${deposit}&uint256=25000000`);
      expect(invoice.deposit).to.deep.include({ address: deposit, waitingAmount: "0.00", refundAddress: null });

      const transfer = async (amount: bigint) => {
        const hash = await chain.wallet(CUSTOMER).writeContract({ address: token, abi: mockStablecoinAbi, functionName: "transfer", args: [deposit, amount], chain: null });
        await chain.client.waitForTransactionReceipt({ hash });
      };
      await transfer(usdc(10));
      await waitUntil("the deposit watcher to see 10 USDC", async () => (await read(invoice.id)).status === "underpaid", 30_000);
      const underpaid = await read(invoice.id);
      expect(underpaid.deposit).to.deep.include({ waitingAmount: "10.00", dueAmount: "15.00", excessAmount: "0.00" });
      expect(done(await ctx.keeper(), `sweep the deposit address of ${invoice.id}`)).to.have.length(0); // not enough yet

      await transfer(usdc(15) + 1n); // the rest, and one base unit too many
      await waitUntil("enough to be seen", async () => (await read(invoice.id)).status === "pending", 30_000);
      expect((await read(invoice.id)).deposit).to.deep.include({ waitingAmount: "25.000001", dueAmount: "0.00", excessAmount: "0.000001" });

      expect(done(await ctx.keeper(), `sweep the deposit address of ${invoice.id}`)).to.have.length(1);
      await waitUntil("the sweep to be indexed", async () => (await read(invoice.id)).status === "overpaid", 30_000);
      const overpaid = await read(invoice.id);
      expect(overpaid.payer).to.equal(null); // from an exchange: nobody known yet
      expect(overpaid.heldAmount).to.equal("25.00");
      expect(overpaid.deposit).to.deep.include({ excessAmount: "0.000001", waitingAmount: "0.00", refundAddress: null });
      await waitUntil("the deposit webhooks", async () => {
        const types = await eventsOf(ctx, invoice.id);
        return ["invoice.payment_detected", "invoice.underpaid", "invoice.paid", "invoice.overpaid"].every((type) => types.includes(type));
      }, 30_000);

      // A refund through the API before anyone is known: a clear 409 that says what to do; nothing moves.
      const refundEarly = await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: "5.00" } });
      expect(refundEarly.status).to.equal(409);
      expect(((await refundEarly.json()) as { type: string; detail: string }).detail).to.contain(`PUT /v1/invoices/${invoice.id}/refund-address`);

      // The customer gave a refund address; the merchant sets it through the API (on-chain, with the operator key).
      const refundTo = testAccount(7).address;
      const bad = await stack.api("PUT", `/v1/invoices/${invoice.id}/refund-address`, { key: merchant.apiKey, body: { address: "0x00000000000000000000000000000000000000zz" } });
      expect(bad.status).to.equal(422);
      const loop = await stack.api("PUT", `/v1/invoices/${invoice.id}/refund-address`, { key: merchant.apiKey, body: { address: deposit } });
      expect(loop.status).to.equal(422); // its own deposit address: the money would come back where it is
      const set = await stack.api("PUT", `/v1/invoices/${invoice.id}/refund-address`, { key: merchant.apiKey, body: { address: refundTo.toLowerCase() } });
      expect(set.status).to.equal(200);
      expect(((await set.json()) as { deposit: { refundAddress: string } }).deposit.refundAddress).to.equal(refundTo);
      const again = await stack.api("PUT", `/v1/invoices/${invoice.id}/refund-address`, { key: merchant.apiKey, body: { address: testAccount(9).address } });
      expect(again.status).to.equal(409);
      expect(((await again.json()) as { type: string }).type).to.contain("refund-address-locked");
      const before = (await chain.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [refundTo] })) as bigint;
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(done(await ctx.keeper(), `return a deposit of ${invoice.id}`)).to.have.length(1);
      const after = (await chain.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [refundTo] })) as bigint;
      expect(after - before).to.equal(1n);
      await waitUntil("the return to be indexed", async () => (await read(invoice.id)).status === "paid", 30_000);
      expect((await read(invoice.id)).payer).to.equal(refundTo);

      // Refunded through the API: to the refund address.
      const refund = await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: "5.00" } });
      expect(refund.status).to.equal(202);
      await waitUntil("the refund to be indexed", async () => (await read(invoice.id)).status === "partially_refunded", 30_000);
      const afterRefund = (await chain.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [refundTo] })) as bigint;
      expect(afterRefund - after).to.equal(usdc(5));

      await timeTravel(chain, 3_601);
      await new Promise((resolve) => setTimeout(resolve, 800));
      expect(done(await ctx.keeper(), `release ${invoice.id}`)).to.have.length(1);
      await waitUntil("the release to be indexed", async () => (await read(invoice.id)).status === "released", 30_000);
    });

    it("ETH: a plain 21,000-gas send is seen as pending within a block, swept by the keeper, then refunded in part and released through the API", async () => {
      const ctx = context();
      const { chain, merchant, stack } = ctx;
      const { create, read } = invoicesOf(stack, merchant, chain);
      const invoice = await create({ currency: "ETH", amount: "0.01", holdSeconds: 0 });
      const evm = invoice.payment.evm!;
      const deposit = evm.depositAddress as Address;
      expect(evm.depositUri).to.equal(`ethereum:${deposit}@${chain.id}?value=${parseEther("0.01")}`);
      expect(invoice.token).to.equal(zeroAddress);
      const hash = await chain.wallet(CUSTOMER).sendTransaction({ to: deposit, value: parseEther("0.01"), chain: null });
      const receipt = await chain.client.waitForTransactionReceipt({ hash });
      expect(receipt.gasUsed).to.equal(21_000n);
      await waitUntil("the deposit watcher to see the ETH", async () => (await read(invoice.id)).status === "pending", 30_000);
      expect(done(await ctx.keeper(), `sweep the deposit address of ${invoice.id}`)).to.have.length(1);
      await waitUntil("the sweep to be indexed", async () => (await read(invoice.id)).status === "paid", 30_000);
      const paid = await read(invoice.id);
      expect(paid.heldAmount).to.equal("0.01");
      expect(paid.deposit).to.deep.include({ waitingAmount: "0.00", excessAmount: "0.00" });

      // Refunded in part and released through the API, like any payment, once the customer's address is known.
      const refundTo = testAccount(9).address;
      expect((await stack.api("PUT", `/v1/invoices/${invoice.id}/refund-address`, { key: merchant.apiKey, body: { address: refundTo } })).status).to.equal(200);
      const before = await chain.client.getBalance({ address: refundTo });
      expect((await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: { amount: "0.004" } })).status).to.equal(202);
      await waitUntil("the refund to be indexed", async () => (await read(invoice.id)).status === "partially_refunded", 30_000);
      expect((await chain.client.getBalance({ address: refundTo })) - before).to.equal(parseEther("0.004"));
      expect((await stack.api("POST", `/v1/invoices/${invoice.id}/release`, { key: merchant.apiKey })).status).to.be.oneOf([202, 409]); // 409: the keeper was first
      await waitUntil("the release to be indexed", async () => (await read(invoice.id)).status === "released", 30_000);
      expect((await read(invoice.id)).releasedAmount).to.not.equal("0.00");
    });
  });
}
