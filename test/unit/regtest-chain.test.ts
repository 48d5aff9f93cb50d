import { expect } from "chai";
import { HDKey } from "@scure/bip32";
import { mnemonicToSeedSync } from "@scure/bip39";
import { Transaction } from "@scure/btc-signer";
import { parseAccountKey } from "../../api/bitcoin/keys";
import { receiveAddress } from "../../api/bitcoin/addresses";
import { display, internal, merkleRoot, RegtestChain, REGTEST_TARGET, sha256d } from "../../scripts/lib/bitcoin-regtest/chain";

/**
 * The in-memory regtest chain the Bitcoin tests run against must be what a node would serve: real txids and
 * witness txids, real merkle roots and witness commitments, headers that link and meet the regtest target,
 * coinbase maturity, replace-by-fee rules and reorganisations.
 */
describe("unit: the regtest test chain (scripts/lib/bitcoin-regtest/chain.ts)", function () {
  this.timeout(60_000);
  const chain = new RegtestChain();
  // The merchant's account: BIP84 test-network account 0 of the BIP84 mnemonic, as a tpub.
  const account = HDKey.fromMasterSeed(mnemonicToSeedSync(`${"abandon ".repeat(11)}about`), { private: 0x04358394, public: 0x043587cf }).derive("m/84'/1'/0'");
  const merchant = parseAccountKey(account.publicExtendedKey, "regtest");
  const address = (index: number) => receiveAddress(merchant, index).address;

  before(() => chain.fund());

  it("serves blocks whose headers link, hash to their id, meet the target and commit to their transactions", () => {
    expect(chain.height).to.equal(101);
    for (const block of chain.blocks) {
      const header = Buffer.from(block.header, "hex");
      expect(display(sha256d(header))).to.equal(block.hash);
      expect(BigInt(`0x${block.hash}`) <= REGTEST_TARGET).to.equal(true);
      expect(display(header.subarray(4, 36))).to.equal(block.previous);
      expect(display(merkleRoot(block.txs.map((tx) => internal(tx.txid))))).to.equal(block.merkleRoot);
      if (block.height > 0) expect(block.previous).to.equal(chain.blocks[block.height - 1].hash);
    }
  });

  it("pays with signed segwit transactions whose txids are the hash of their serialization without witnesses", () => {
    const payment = chain.pay(address(0), 150_000n);
    const parsed = Transaction.fromRaw(Buffer.from(payment.raw, "hex"));
    expect(parsed.id).to.equal(payment.txid);
    expect(display(sha256d(parsed.toBytes(true, false)))).to.equal(payment.txid);
    expect(display(sha256d(Buffer.from(payment.raw, "hex")))).to.equal(payment.wtxid);
    expect(parsed.getInput(0).finalScriptWitness).to.have.length(2); // signature and public key
    expect(payment.outputs[0]).to.deep.include({ address: address(0), amount: 150_000n });
    const [block] = chain.mine(1);
    expect(block.txs.map((tx) => tx.txid)).to.include(payment.txid);
    // The coinbase commits to the witness merkle root (BIP141).
    const commitment = block.txs[0].outputs[1].script;
    const witnessRoot = merkleRoot([new Uint8Array(32), ...block.txs.slice(1).map((tx) => internal(tx.wtxid))]);
    expect(commitment).to.equal(`6a24aa21a9ed${Buffer.from(sha256d(new Uint8Array([...witnessRoot, ...new Uint8Array(32)]))).toString("hex")}`);
    expect(chain.transaction(payment.txid)!.height).to.equal(block.height);
  });

  it("replaces a signalling payment by fee and refuses a double spend that does not outbid it", () => {
    const original = chain.pay(address(1), 80_000n);
    expect(() => chain.replace(original.txid, [{ address: address(1), amount: 70_000n }], 1n)).to.throw(/more fee/);
    const replacement = chain.replace(original.txid, [{ address: address(2), amount: 80_000n }]);
    expect(chain.mempool.has(original.txid)).to.equal(false);
    expect(chain.mempool.has(replacement.txid)).to.equal(true);
    const final = chain.pay(address(3), 10_000n, { rbf: false });
    expect(() => chain.replace(final.txid, [{ address: address(3), amount: 5_000n }])).to.throw(/replace-by-fee/);
    chain.mine(1);
  });

  it("reorganises: the disconnected blocks' payments go back to the mempool, and a competing branch takes over", () => {
    const payment = chain.pay(address(4), 42_000n);
    const [mined] = chain.mine(1);
    const oldTip = chain.tip().hash;
    const back = chain.disconnect(1);
    expect(back.map((tx) => tx.txid)).to.deep.equal([payment.txid]);
    expect(chain.mempool.has(payment.txid)).to.equal(true);
    chain.mempool.delete(payment.txid); // the competing branch leaves it out
    const branch = chain.mine(2);
    expect(branch[0].height).to.equal(mined.height);
    expect(branch[0].hash).to.not.equal(oldTip);
    expect(chain.transaction(payment.txid)).to.equal(undefined);
  });
});
