import { expect } from "chai";
import { createBitcoinCoreSource, createEsploraSource, parseBlock, SourceUnavailableError, type ChainSource } from "../../api/bitcoin/source";
import { rawBlock, startBitcoinCore, startEsplora, type BitcoinServer } from "../../scripts/lib/bitcoin-regtest/servers";
import { RegtestChain } from "../../scripts/lib/bitcoin-regtest/chain";

/**
 * The two chain sources against loopback servers answering in each real API's documented format from the same
 * regtest chain: the same blocks, transactions and exact satoshi amounts through both; a block costs one
 * request; timeouts, 429 and 503 are retried; unknown ids are `undefined`, a refused broadcast says why.
 */
describe("unit: Bitcoin chain sources (Esplora REST, Bitcoin Core JSON-RPC)", function () {
  this.timeout(60_000);
  const chain = new RegtestChain();
  const auth = { username: "chainbill", password: "regtest-password" };
  const fast = { timeoutMs: 300, attempts: 3, backoffMs: 20 };
  let esplora: BitcoinServer;
  let core: BitcoinServer;
  const sources: [string, () => { source: ChainSource; server: BitcoinServer }][] = [
    ["Esplora", () => ({ source: createEsploraSource(`${esplora.url}/`, fast), server: esplora })],
    ["Bitcoin Core", () => ({ source: createBitcoinCoreSource(core.url, auth, fast), server: core })],
  ];

  before(async () => {
    chain.fund();
    chain.pay(chain.walletAddress, 123_456_789n);
    chain.mine(1);
    chain.pay(chain.walletAddress, 1n + 546n);
    esplora = await startEsplora(chain);
    core = await startBitcoinCore(chain, auth);
  });
  after(async () => {
    await esplora?.close();
    await core?.close();
  });

  it("parses a raw block into the chain's own hashes, txids and exact amounts", () => {
    const block = chain.tip();
    const parsed = parseBlock(rawBlock(block));
    expect(parsed.hash).to.equal(block.hash);
    expect(parsed.previous).to.equal(block.previous);
    expect(parsed.time).to.equal(block.time);
    expect(parsed.txs.map((tx) => tx.txid)).to.deep.equal(block.txs.map((tx) => tx.txid));
    expect(parsed.txs[1].outputs.map((output) => output.amount)).to.deep.equal(block.txs[1].outputs.map((output) => output.amount));
    expect(() => parseBlock(rawBlock(block).subarray(0, 100))).to.throw();
  });

  for (const [name, make] of sources) {
    describe(name, () => {
      it("reads the tip, block hashes, whole blocks (one request each), the mempool and transactions", async () => {
        const { source, server } = make();
        expect(await source.tipHeight()).to.equal(chain.height);
        expect(await source.blockHash(chain.height)).to.equal(chain.tip().hash);
        const before = server.requests.length;
        const block = await source.block(chain.tip().hash);
        expect(server.requests.length - before).to.equal(1);
        expect(block.txs.map((tx) => tx.txid)).to.deep.equal(chain.tip().txs.map((tx) => tx.txid));
        const payment = chain.tip().txs[1];
        expect(block.txs[1].outputs.find((output) => output.amount === 123_456_789n)?.script).to.equal(payment.outputs[0].script);
        expect(await source.mempoolTxids()).to.deep.equal([...chain.mempool.keys()]);
        const pending = [...chain.mempool.values()][0];
        const fetched = await source.transaction(pending.txid);
        expect(fetched?.txid).to.equal(pending.txid);
        expect(fetched?.rbf).to.equal(true);
        expect(fetched?.outputs[0].amount).to.equal(547n);
        expect(await source.transaction("ab".repeat(32))).to.equal(undefined);
        expect(await source.feeRate(3)).to.be.a("number").and.at.least(1);
      });

      it("broadcasts a signed transaction, and says why the node refuses one", async () => {
        const { source } = make();
        const spare = new RegtestChain();
        spare.fund();
        const foreign = spare.pay(spare.walletAddress, 10_000n);
        await expect(source.broadcast(foreign.raw)).to.be.rejectedWith(SourceUnavailableError, /missingorspent/);
        const local = chain.pay(chain.walletAddress, 20_000n);
        chain.mempool.delete(local.txid);
        expect(await source.broadcast(local.raw)).to.equal(local.txid);
        expect(chain.mempool.has(local.txid)).to.equal(true);
      });

      it("retries a hung request, a 429 and a 503, and gives up with SourceUnavailableError when every attempt fails", async () => {
        const { source, server } = make();
        server.faults.push("hang", "503");
        expect(await source.tipHeight()).to.equal(chain.height);
        server.faults.push("429");
        const started = Date.now();
        expect(await source.blockHash(0)).to.equal(chain.blocks[0].hash);
        expect(Date.now() - started).to.be.at.least(900); // Retry-After: 1
        server.faults.push("503", "503", "503");
        await expect(source.tipHeight()).to.be.rejectedWith(SourceUnavailableError, /HTTP 503 after 3 attempts/);
        expect(await source.tipHeight()).to.equal(chain.height);
      });
    });
  }
});
