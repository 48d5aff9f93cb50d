import { expect } from "chai";
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

  it("a payment removed by a reorg moves the invoice back from paid to open", async () => {
    const chain = stack.chains[0];
    const merchant = await createMerchant(stack, 9, "Reorged payment merchant");
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

    await chain.client.request({ method: "evm_revert" as never, params: [snapshot] as never });
    for (let index = 0; index < 3; index += 1) await chain.client.request({ method: "evm_mine" as never });
    await waitUntil("the invoice back to open", async () => (await status()) === "open", 60_000);
  });
});
