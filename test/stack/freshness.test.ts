/**
 * The index never goes stale silently: every /v1 answer says up to which block each chain is indexed
 * (`Chainbill-Indexed`), `/status` shows indexed block and head, `/ready` turns false while a chain's index is
 * stalled, and a burst of transactions followed by a jump in time is indexed within seconds.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseEther } from "viem";
import { burst, createMerchant, parseIndexedHeader, payWithInstructions, startStack, testAccount, timeTravel, waitUntil, type LocalChain, type Stack, type TestMerchant } from "./harness";
import { startRpcProxy, type RpcProxy } from "./rpc-proxy";

interface Status {
  chains: { chainId: number; indexedBlock: number | null; indexedBlockTime: string | null; headBlock: number | null; state: string }[];
}

async function status(stack: Stack): Promise<Status> {
  return (await (await fetch(`${stack.apiUrl}/status`)).json()) as Status;
}

describe("stack: index freshness", function () {
  this.timeout(300_000);
  let stack: Stack;
  let chain: LocalChain;
  let proxy: RpcProxy;
  let merchant: TestMerchant;

  before(async () => {
    // The indexer reaches the node through a provider stand-in that the test can freeze; the API reads heads
    // directly, as it would from its own provider.
    stack = await startStack({
      env: { INDEX_STALL_SECONDS: "3", INDEX_RESTART_SECONDS: "12" },
      beforeIndexer: async (chains) => {
        proxy = await startRpcProxy(chains[0].rpcUrl);
        // A websocket for new heads, as on a remote chain: the one way heads can silently stop arriving.
        return { CHAIN_31337_INDEXER_RPC_URL: proxy.url, CHAIN_31337_WS_URL: proxy.wsUrl };
      },
    });
    chain = stack.chains[0];
    merchant = await createMerchant(stack, 1, "Freshness merchant");
  });
  after(async () => {
    await stack?.stop();
    await proxy?.close();
  });

  it("every /v1 answer says up to which block and block time each chain is indexed, and /status adds the head", async () => {
    // The watchdog reads the index every second; until its first reading the header says `state=unknown`.
    let header: Record<string, string> = {};
    await waitUntil("the watchdog's first reading", async () => {
      const response = await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey });
      header = parseIndexedHeader(response.headers.get("chainbill-indexed")).get(chain.id)!;
      return header.state !== "unknown";
    }, 20_000);
    expect(Number(header.block)).to.be.greaterThan(0);
    expect(new Date(header.time).getTime()).to.be.greaterThan(0);
    expect(header.state).to.be.oneOf(["current", "behind"]);
    const problem = await stack.api("GET", "/v1/invoices/inv_missing", { key: merchant.apiKey });
    expect(problem.headers.get("chainbill-indexed")).to.contain(`chain=${chain.id}`);
    const { chains } = await status(stack);
    expect(chains[0].chainId).to.equal(chain.id);
    expect(chains[0].headBlock).to.be.at.least(chains[0].indexedBlock!);
    // Readiness follows the index: right after the first reading it may still be catching up (a slow machine).
    await waitUntil("/ready to answer 200", async () => (await fetch(`${stack.apiUrl}/ready`)).status === 200, 30_000);
  });

  it("a stalled index turns /ready false and every answer says `stalled`; once the provider answers again it catches up and /ready is true", async () => {
    proxy.freeze();
    try {
      const invoice = (await (await stack.api("POST", "/v1/invoices", { key: merchant.apiKey, headers: { "Idempotency-Key": randomUUID() }, body: { chainId: chain.id, amount: "0.01", currency: "ETH" } })).json()) as { id: string; payment: { evm: { transactions: { to: string; data: string; value: string }[] } } };
      await payWithInstructions(chain, 4, invoice.payment.evm.transactions);
      let ready = { ready: true, reasons: [] as string[] };
      await waitUntil("the stall to be noticed", async () => {
        const answer = await fetch(`${stack.apiUrl}/ready`);
        ready = (await answer.json()) as typeof ready;
        return answer.status === 503 && ready.reasons.join(" ").includes(`chain ${chain.id}: index stalled`);
      }, 30_000);
      expect(ready.ready).to.equal(false);
      const read = await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: merchant.apiKey });
      expect(read.status).to.equal(200);
      expect(parseIndexedHeader(read.headers.get("chainbill-indexed")).get(chain.id)!.state).to.equal("stalled");
      // The answer is honest about what it shows: the unindexed payment is not shown as paid.
      expect(((await read.json()) as { status: string }).status).to.equal("open");
    } finally {
      proxy.thaw();
    }
    await waitUntil("the index to catch up", async () => (await fetch(`${stack.apiUrl}/ready`)).status === 200, 60_000);
    // Ready allows a lag of a few blocks ("behind"); on a loaded machine "current" follows a moment later.
    await waitUntil("the index to be current", async () => (await status(stack)).chains[0].state === "current", 30_000);
  });

  it("a subscription that silently stops delivering heads is noticed, and the indexer restarts itself and catches up", async () => {
    const restartsBefore = stack.indexerRestarts();
    proxy.silenceSockets();
    const invoice = (await (await stack.api("POST", "/v1/invoices", { key: merchant.apiKey, headers: { "Idempotency-Key": randomUUID() }, body: { chainId: chain.id, amount: "0.02", currency: "ETH" } })).json()) as { id: string; payment: { evm: { transactions: { to: string; data: string; value: string }[] } } };
    await payWithInstructions(chain, 4, invoice.payment.evm.transactions);
    await waitUntil("the stall to be noticed", async () => (await fetch(`${stack.apiUrl}/ready`).catch(() => undefined))?.status === 503, 30_000);
    // The watchdog gives up waiting after INDEX_RESTART_SECONDS: exit 75, the supervisor starts it again.
    await waitUntil("the indexer to restart", async () => stack.indexerRestarts() > restartsBefore, 90_000);
    await waitUntil("the payment to be indexed after the restart", async () => {
      const read = await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: merchant.apiKey }).catch(() => undefined);
      return read?.status === 200 && ((await read.json()) as { status: string }).status === "paid";
    }, 120_000);
    await waitUntil("ready again", async () => (await fetch(`${stack.apiUrl}/ready`)).status === 200, 60_000);
    expect(readFileSync(stack.logFile, "utf8")).to.contain("restarting the indexer");
  });

  it("a burst of 200 transactions and a 120 s jump in time are indexed within seconds", async () => {
    await burst(chain, 200);
    const jumped = await timeTravel(chain, 120);
    const head = await chain.client.getBlockNumber();
    const started = Date.now();
    await waitUntil("the burst to be indexed", async () => {
      const { chains } = await status(stack);
      return (chains[0].indexedBlock ?? 0) >= Number(head);
    }, 30_000);
    const seconds = (Date.now() - started) / 1000;
    expect(seconds).to.be.lessThan(15);
    // New blocks after the jump keep being indexed (the head kept moving only with transactions).
    const after = await chain.wallet(9).sendTransaction({ to: testAccount(8).address, value: parseEther("0.001"), chain: null });
    const mined = await chain.client.waitForTransactionReceipt({ hash: after });
    await waitUntil("the next block to be indexed", async () => ((await status(stack)).chains[0].indexedBlock ?? 0) >= Number(mined.blockNumber), 15_000);
    expect((await chain.client.getBlock({ blockNumber: mined.blockNumber })).timestamp).to.be.at.least(jumped);
    expect((await fetch(`${stack.apiUrl}/ready`)).status).to.equal(200);
  });
});
