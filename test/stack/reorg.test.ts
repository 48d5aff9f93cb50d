import { expect } from "chai";
import { startReceiver } from "../helpers/receiver";
import { createMerchant, startStack, waitUntil, type Stack } from "./harness";

/**
 * A chain reorganisation removes indexed events, and the API follows: Hardhat's evm_revert drops the blocks
 * after a snapshot, new blocks are mined one at a time on the other branch, and Ponder rolls back what it had
 * indexed from the dropped blocks.
 */
describe("stack: chain reorganisation", function () {
  this.timeout(240_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.stop();
  });

  it("a registration removed by a reorg disappears from the API, and reappears when it is mined again", async () => {
    const chain = stack.chains[0];
    const snapshot = (await chain.client.request({ method: "evm_snapshot" as never })) as string;
    const merchant = await createMerchant(stack, 7, "Reorged merchant");
    const me = async () =>
      (await (await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey })).json()) as {
        chains: { registered: boolean; registrationTransaction: { to: `0x${string}`; data: `0x${string}`; value: string } | null }[];
      };
    expect((await me()).chains[0].registered).to.equal(true);

    const reverted = await chain.client.request({ method: "evm_revert" as never, params: [snapshot] as never });
    expect(reverted).to.equal(true);
    // The other branch must grow past the old head for Ponder to switch to it; one block per call.
    for (let index = 0; index < 4; index += 1) await chain.client.request({ method: "evm_mine" as never });
    await waitUntil("the reorg to reach the API", async () => (await me()).chains[0].registered === false, 60_000);

    const { registrationTransaction } = (await me()).chains[0];
    expect(registrationTransaction).to.not.equal(null);
    const wallet = chain.wallet(7);
    const { to, data, value } = registrationTransaction!;
    await chain.client.waitForTransactionReceipt({ hash: await wallet.sendTransaction({ to, data, value: BigInt(value), chain: null }) });
    await waitUntil("registration indexed again", async () => (await me()).chains[0].registered === true, 60_000);
  });

  it("a payment removed by a reorg moves the invoice back to open, rolls the ledger back, and sends invoice.payment_reverted after invoice.paid", async () => {
    const chain = stack.chains[0];
    const merchant = await createMerchant(stack, 9, "Reorged payment merchant");
    const receiver = await startReceiver();
    const endpoint = await stack.api("POST", "/v1/webhook-endpoints", { key: merchant.apiKey, body: { url: receiver.url } });
    expect(endpoint.status).to.equal(201);
    receiver.secrets = [((await endpoint.json()) as { secret: string }).secret];
    const statement = async () =>
      ((await (await stack.api("GET", "/v1/statements?currency=ETH&from=2020-01-01", { key: merchant.apiKey })).json()) as {
        chains: { closingBalanceBaseUnits: string; entries: unknown[] }[];
      }).chains[0];
    const created = await stack.api("POST", "/v1/invoices", {
      key: merchant.apiKey,
      headers: { "Idempotency-Key": "reorg-invoice" },
      body: { amount: "0.25", currency: "ETH", chainId: chain.id },
    });
    expect(created.status).to.equal(201);
    const invoice = (await created.json()) as { id: string; payment: { evm: { transactions: { to: `0x${string}`; data: `0x${string}`; value: string }[] } } };
    const status = async () => ((await (await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: merchant.apiKey })).json()) as { status: string }).status;

    const snapshot = (await chain.client.request({ method: "evm_snapshot" as never })) as string;
    const pay = invoice.payment.evm.transactions.at(-1)!;
    const wallet = chain.wallet(11);
    await chain.client.waitForTransactionReceipt({ hash: await wallet.sendTransaction({ to: pay.to, data: pay.data, value: BigInt(pay.value), chain: null }) });
    await waitUntil("paid", async () => (await status()) === "paid", 60_000);
    await waitUntil("invoice.paid delivered", async () => receiver.received.some((entry) => entry.event.type === "invoice.paid"), 30_000);
    await waitUntil("the payment in the ledger", async () => (await statement()).closingBalanceBaseUnits === "250000000000000000", 30_000);

    await chain.client.request({ method: "evm_revert" as never, params: [snapshot] as never });
    for (let index = 0; index < 3; index += 1) await chain.client.request({ method: "evm_mine" as never });
    await waitUntil("the invoice back to open", async () => (await status()) === "open", 60_000);
    await waitUntil("the ledger rolled back", async () => (await statement()).closingBalanceBaseUnits === "0", 30_000);
    expect((await statement()).entries).to.deep.equal([]);
    await waitUntil("invoice.payment_reverted delivered", async () => receiver.received.some((entry) => entry.event.type === "invoice.payment_reverted"), 30_000);
    try {
      const types = receiver.received.map((entry) => entry.event.type).filter((type) => type !== "invoice.confirmed");
      expect(types).to.deep.equal(["invoice.paid", "invoice.payment_reverted"]);
      const [paid, reverted] = receiver.received.filter((entry) => entry.event.type !== "invoice.confirmed");
      expect(paid.verifiedWith).to.equal(0);
      expect(reverted.verifiedWith).to.equal(0);
      expect(reverted.event.data).to.include({ invoiceId: invoice.id, revertedEventId: paid.id });
      const events = (await (await stack.api("GET", `/v1/events/${paid.id}`, { key: merchant.apiKey })).json()) as { reverted: boolean };
      expect(events.reverted).to.equal(true);
    } finally {
      await receiver.close();
    }
  });
});
