/**
 * A Bitcoin regtest chain in memory, for tests: the one stand-in for a Bitcoin node (which cannot run here).
 * Everything it serves is consensus-valid and real: transactions are built and signed with @scure/btc-signer
 * (real txids and witnesses), coinbases carry the BIP34 height and the regtest subsidy, blocks have real merkle
 * roots (and BIP141 witness commitments) and headers whose hash meets the regtest target. It keeps a mempool
 * (with replace-by-fee) and can reorganise: drop the last N blocks and mine a competing branch.
 *
 * Its test wallet (a BIP84 account of a fixed mnemonic) receives the coinbases and pays from them, so tests
 * can send exact, under- and over-payments, several payments to one address, RBF replacements and double
 * spends to the addresses chainbill derives.
 */
import { createHash } from "node:crypto";
import { HDKey } from "@scure/bip32";
import { mnemonicToSeedSync } from "@scure/bip39";
import { p2wpkh, RawTx, Transaction, TEST_NETWORK } from "@scure/btc-signer";

export const REGTEST = { ...TEST_NETWORK, bech32: "bcrt" };
const MNEMONIC = "test test test test test test test test test test test junk";
const COINBASE_MATURITY = 100;
/** nBits of regtest blocks: target 0x7fffff · 256^29 (about half of all hashes meet it). */
const REGTEST_BITS = 0x207fffff;
const TARGET = 0x7fffffn << (8n * (0x20n - 3n));

const sha256d = (data: Uint8Array) => new Uint8Array(createHash("sha256").update(createHash("sha256").update(data).digest()).digest());
const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");
const reversed = (bytes: Uint8Array) => new Uint8Array(bytes).reverse();
/** Internal byte order (as hashed) → display order (as txids and block hashes are written). */
const display = (bytes: Uint8Array) => hex(reversed(bytes));
const internal = (id: string) => reversed(Buffer.from(id, "hex"));

export interface ChainTx {
  txid: string;
  /** Witness txid (BIP141). */
  wtxid: string;
  /** Full serialization (with witnesses), hex. */
  raw: string;
  outputs: { address: string | null; script: string; amount: bigint }[];
  inputs: { txid: string; index: number }[];
  fee: bigint;
  vsize: number;
  rbf: boolean;
}

export interface ChainBlock {
  height: number;
  hash: string;
  previous: string;
  merkleRoot: string;
  time: number;
  bits: number;
  nonce: number;
  /** 80-byte header, hex. */
  header: string;
  txs: ChainTx[];
}

interface Coin {
  txid: string;
  index: number;
  amount: bigint;
  /** Height of the block that created it (coinbase maturity). */
  height: number;
  coinbase: boolean;
}

function merkleRoot(hashes: Uint8Array[]): Uint8Array {
  let level = hashes;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let index = 0; index < level.length; index += 2) {
      const right = level[index + 1] ?? level[index];
      next.push(sha256d(new Uint8Array([...level[index], ...right])));
    }
    level = next;
  }
  return level[0];
}

/** BIP34: the height as a minimal script number push. */
function heightPush(height: number): Uint8Array {
  const bytes: number[] = [];
  let value = height;
  while (value > 0) {
    bytes.push(value & 0xff);
    value >>= 8;
  }
  if (bytes.length === 0 || bytes[bytes.length - 1] & 0x80) bytes.push(0);
  return new Uint8Array([bytes.length, ...bytes]);
}

function subsidy(height: number): bigint {
  return 5_000_000_000n >> BigInt(Math.floor(height / 150)); // regtest halves every 150 blocks
}

function describe(tx: Transaction, raw: Uint8Array, fee: bigint, rbf: boolean): ChainTx {
  const outputs = [];
  for (let index = 0; index < tx.outputsLength; index += 1) {
    const output = tx.getOutput(index);
    let address: string | null = null;
    try {
      address = tx.getOutputAddress(index, REGTEST) ?? null;
    } catch {
      address = null;
    }
    outputs.push({ address, script: hex(output.script!), amount: output.amount! });
  }
  const inputs = [];
  for (let index = 0; index < tx.inputsLength; index += 1) {
    const input = tx.getInput(index);
    inputs.push({ txid: hex(input.txid!), index: input.index! });
  }
  return { txid: tx.id, wtxid: display(sha256d(raw)), raw: hex(raw), outputs, inputs, fee, vsize: tx.vsize, rbf };
}

export class RegtestChain {
  readonly blocks: ChainBlock[] = [];
  readonly mempool = new Map<string, ChainTx>();
  private readonly key: HDKey;
  readonly walletAddress: string;
  private readonly walletScript: Uint8Array;
  private clock = 1_700_000_000;
  private readonly wallClock: boolean;

  /** @param options.wallClock stamp blocks with the wall clock (a local chain people watch) instead of +600 s each. */
  constructor(options: { wallClock?: boolean } = {}) {
    this.wallClock = options.wallClock ?? false;
    this.key = HDKey.fromMasterSeed(mnemonicToSeedSync(MNEMONIC)).derive("m/84'/1'/0'/0/0");
    const payment = p2wpkh(this.key.publicKey!, REGTEST);
    this.walletAddress = payment.address!;
    this.walletScript = payment.script;
    this.mineBlock([]);
  }

  /**
   * Moves the clock `seconds` past the later of itself and the wall clock (as `setmocktime` moves a regtest
   * node's): the next block is stamped 600 s after that.
   */
  advanceTime(seconds: number): void {
    this.clock = Math.max(this.clock, Math.floor(Date.now() / 1000)) + seconds;
  }

  /** The chain and mempool as JSON (amounts as decimal strings), to keep a local chain across restarts. */
  snapshot(): string {
    return JSON.stringify({ blocks: this.blocks, mempool: [...this.mempool.values()], clock: this.clock }, (_key, value: unknown) =>
      typeof value === "bigint" ? { $sats: value.toString() } : value,
    );
  }

  /** A chain saved by `snapshot()`. */
  static restore(text: string, options: { wallClock?: boolean } = {}): RegtestChain {
    const saved = JSON.parse(text, (_key, value: unknown) =>
      value !== null && typeof value === "object" && "$sats" in value ? BigInt((value as { $sats: string }).$sats) : value,
    ) as { blocks: ChainBlock[]; mempool: ChainTx[]; clock: number };
    const chain = new RegtestChain(options);
    if (saved.blocks[0]?.hash !== chain.blocks[0].hash) throw new Error("the saved chain has another genesis block");
    chain.blocks.splice(0, chain.blocks.length, ...saved.blocks);
    for (const tx of saved.mempool) chain.mempool.set(tx.txid, tx);
    chain.clock = saved.clock;
    return chain;
  }

  get height(): number {
    return this.blocks.length - 1;
  }

  tip(): ChainBlock {
    return this.blocks[this.blocks.length - 1];
  }

  /** The transaction, mined (with its block height) or in the mempool (height null). */
  transaction(txid: string): { tx: ChainTx; height: number | null } | undefined {
    for (const block of this.blocks) {
      const tx = block.txs.find((candidate) => candidate.txid === txid);
      if (tx) return { tx, height: block.height };
    }
    const pending = this.mempool.get(txid);
    return pending ? { tx: pending, height: null } : undefined;
  }

  /** Mines `count` blocks including the whole mempool in the first one. */
  mine(count = 1): ChainBlock[] {
    const mined: ChainBlock[] = [];
    for (let index = 0; index < count; index += 1) {
      const txs = [...this.mempool.values()];
      this.mempool.clear();
      mined.push(this.mineBlock(txs));
    }
    return mined;
  }

  /** Drops the last `depth` blocks; their transactions go back to the mempool unless `dropTransactions`. */
  disconnect(depth: number, options: { dropTransactions?: boolean } = {}): ChainTx[] {
    if (depth < 1 || depth > this.height) throw new RangeError(`cannot disconnect ${depth} blocks at height ${this.height}`);
    const removed = this.blocks.splice(this.blocks.length - depth, depth);
    const txs = removed.flatMap((block) => block.txs.slice(1));
    if (!options.dropTransactions) for (const tx of txs) this.mempool.set(tx.txid, tx);
    // Anything in the mempool spending a vanished coinbase is invalid now.
    for (const [txid, tx] of this.mempool) if (tx.inputs.some((input) => !this.coinExists(input))) this.mempool.delete(txid);
    return txs;
  }

  /** Pays `amount` sats to `address` from the wallet's mature coins; the change goes back to the wallet. */
  pay(address: string, amount: bigint, options: { feeRate?: bigint; rbf?: boolean; coins?: Coin[] } = {}): ChainTx {
    return this.payMany([{ address, amount }], options);
  }

  payMany(outputs: { address: string; amount: bigint }[], options: { feeRate?: bigint; rbf?: boolean; coins?: Coin[] } = {}): ChainTx {
    const feeRate = options.feeRate ?? 2n;
    const wanted = outputs.reduce((sum, output) => sum + output.amount, 0n);
    const coins = options.coins ?? this.spendable();
    const chosen: Coin[] = [];
    let total = 0n;
    for (const coin of coins) {
      if (total >= wanted + 10_000n * feeRate) break;
      chosen.push(coin);
      total += coin.amount;
    }
    const build = (fee: bigint) => {
      const tx = new Transaction();
      for (const coin of chosen) {
        tx.addInput({
          txid: coin.txid,
          index: coin.index,
          witnessUtxo: { script: this.walletScript, amount: coin.amount },
          sequence: options.rbf === false ? 0xffffffff : 0xfffffffd,
        });
      }
      for (const output of outputs) tx.addOutputAddress(output.address, output.amount, REGTEST);
      const change = total - wanted - fee;
      if (change < 0n) throw new Error(`the test wallet holds ${total} sats in mature coins, not enough for ${wanted} + fee ${fee}`);
      if (change >= 546n) tx.addOutputAddress(this.walletAddress, change, REGTEST);
      tx.sign(this.key.privateKey!);
      tx.finalize();
      return tx;
    };
    const draft = build(0n);
    const fee = BigInt(draft.vsize + 40) * feeRate;
    const tx = build(fee);
    return this.admit(describe(tx, tx.extract(), fee, options.rbf !== false));
  }

  /** Accepts a signed transaction (hex) into the mempool, as `sendrawtransaction` would; throws why not. */
  acceptRaw(rawHex: string): ChainTx {
    const raw = Buffer.from(rawHex, "hex");
    const tx = Transaction.fromRaw(raw, { allowUnknownOutputs: true, disableScriptCheck: true });
    let spent = 0n;
    for (let index = 0; index < tx.inputsLength; index += 1) {
      const input = tx.getInput(index);
      const coin = this.coin({ txid: hex(input.txid!), index: input.index! });
      if (!coin) throw new Error("bad-txns-inputs-missingorspent");
      if (this.spentInChain(coin)) throw new Error("bad-txns-inputs-missingorspent");
      spent += coin.amount;
    }
    let paid = 0n;
    for (let index = 0; index < tx.outputsLength; index += 1) paid += tx.getOutput(index).amount!;
    if (paid > spent) throw new Error("bad-txns-in-belowout");
    const rbf = [...Array(tx.inputsLength).keys()].some((index) => (tx.getInput(index).sequence ?? 0xffffffff) < 0xfffffffe);
    return this.admit(describe(tx, raw, spent - paid, rbf));
  }

  private spentInChain(coin: { txid: string; index: number }): boolean {
    return this.blocks.some((block) => block.txs.some((tx) => tx.inputs.some((input) => input.txid === coin.txid && input.index === coin.index)));
  }

  private admit(described: ChainTx): ChainTx {
    for (const [txid, pending] of this.mempool) {
      if (pending.inputs.some((input) => described.inputs.some((spent) => spent.txid === input.txid && spent.index === input.index))) {
        if (!pending.rbf) throw new Error(`${txid} spends the same coins and does not signal replace-by-fee`);
        if (described.fee <= pending.fee) throw new Error(`a replacement must pay more fee than ${txid} (${pending.fee} sats)`);
        this.mempool.delete(txid);
      }
    }
    this.mempool.set(described.txid, described);
    return described;
  }

  /** Replaces a mempool transaction (BIP125): same coins, the given outputs, a higher fee rate. */
  replace(txid: string, outputs: { address: string; amount: bigint }[], feeRate = 10n): ChainTx {
    const pending = this.mempool.get(txid);
    if (!pending) throw new Error(`${txid} is not in the mempool`);
    const coins = pending.inputs.map((input) => this.coin(input)!);
    return this.payMany(outputs, { feeRate, coins });
  }

  /** The wallet's mature unspent coins, oldest first (not spent by the chain or the mempool). */
  spendable(): Coin[] {
    const spent = new Set<string>();
    const all: Coin[] = [];
    for (const block of this.blocks) {
      for (const [position, tx] of block.txs.entries()) {
        for (const input of tx.inputs) spent.add(`${input.txid}:${input.index}`);
        tx.outputs.forEach((output, index) => {
          if (output.script === hex(this.walletScript)) all.push({ txid: tx.txid, index, amount: output.amount, height: block.height, coinbase: position === 0 });
        });
      }
    }
    for (const tx of this.mempool.values()) for (const input of tx.inputs) spent.add(`${input.txid}:${input.index}`);
    return all.filter((coin) => !spent.has(`${coin.txid}:${coin.index}`) && (!coin.coinbase || this.height - coin.height + 1 > COINBASE_MATURITY));
  }

  /** Makes the wallet able to pay: mines past coinbase maturity. */
  fund(): void {
    if (this.spendable().length === 0) this.mine(COINBASE_MATURITY + 1);
  }

  private coin(outpoint: { txid: string; index: number }): Coin | undefined {
    for (const block of this.blocks) {
      for (const [position, tx] of block.txs.entries()) {
        if (tx.txid !== outpoint.txid) continue;
        const output = tx.outputs[outpoint.index];
        return output && { txid: tx.txid, index: outpoint.index, amount: output.amount, height: block.height, coinbase: position === 0 };
      }
    }
    return undefined;
  }

  private coinExists(outpoint: { txid: string; index: number }): boolean {
    return this.coin(outpoint) !== undefined || [...this.mempool.values()].some((tx) => tx.txid === outpoint.txid);
  }

  private mineBlock(txs: ChainTx[]): ChainBlock {
    const height = this.blocks.length;
    const previous = height === 0 ? "00".repeat(32) : this.tip().hash;
    const fees = txs.reduce((sum, tx) => sum + tx.fee, 0n);
    // BIP141 witness commitment: sha256d(witness merkle root ‖ 32-byte reserved value), wtxid of the coinbase = 0.
    const witnessRoot = merkleRoot([new Uint8Array(32), ...txs.map((tx) => internal(tx.wtxid))]);
    const commitment = sha256d(new Uint8Array([...witnessRoot, ...new Uint8Array(32)]));
    const coinbaseRaw = RawTx.encode({
      version: 2,
      segwitFlag: true,
      inputs: [{ txid: new Uint8Array(32), index: 0xffffffff, finalScriptSig: new Uint8Array([...heightPush(height), 0x00]), sequence: 0xffffffff }],
      outputs: [
        { amount: subsidy(height) + fees, script: this.walletScript },
        { amount: 0n, script: new Uint8Array([0x6a, 0x24, 0xaa, 0x21, 0xa9, 0xed, ...commitment]) },
      ],
      witnesses: [[new Uint8Array(32)]],
      lockTime: 0,
    });
    const coinbase = Transaction.fromRaw(coinbaseRaw, { allowUnknownInputs: true, allowUnknownOutputs: true, disableScriptCheck: true });
    const coinbaseTx = describe(coinbase, coinbaseRaw, 0n, false);
    const all = [coinbaseTx, ...txs];
    const root = merkleRoot(all.map((tx) => internal(tx.txid)));
    this.clock = this.wallClock ? Math.max(this.clock + 1, Math.floor(Date.now() / 1000)) : this.clock + 600;
    const header = new Uint8Array(80);
    const view = new DataView(header.buffer);
    view.setUint32(0, 0x20000000, true);
    header.set(internal(previous), 4);
    header.set(root, 36);
    view.setUint32(68, this.clock, true);
    view.setUint32(72, REGTEST_BITS, true);
    let nonce = 0;
    let hash: Uint8Array;
    for (;;) {
      view.setUint32(76, nonce, true);
      hash = sha256d(header);
      if (BigInt(`0x${display(hash)}`) <= TARGET) break;
      nonce += 1;
    }
    const block: ChainBlock = { height, hash: display(hash), previous, merkleRoot: display(root), time: this.clock, bits: REGTEST_BITS, nonce, header: hex(header), txs: all };
    this.blocks.push(block);
    return block;
  }
}

export { sha256d, merkleRoot, display, internal, TARGET as REGTEST_TARGET };
