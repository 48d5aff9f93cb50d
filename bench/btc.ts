/**
 * Bitcoin benchmark, each figure beside a baseline measured in the same run:
 *   1. receive addresses per second, P2WPKH (BIP84) and P2TR (BIP86): the batch path, `receiveAddresses`
 *      (api/bitcoin/derive.ts), beside the plain path it replaced — @scure/bip32 deriveChild and @scure/btc-signer
 *      p2wpkh / p2tr for each address — and the one-time cost of its table of multiples of G.
 *   2. the watcher's time per block (api/bitcoin/watcher.ts: one pass that reads, matches, records and settles a
 *      new block) with 100 and with 100,000 watched invoice addresses, beside reading and parsing the same block
 *      from the Esplora API alone (the part no watcher can skip). Real store (PGlite), the regtest chain served
 *      over loopback HTTP, blocks of 1,000 outputs of which 20 pay watched invoices.
 * Prints the machine and a table per section; bench/btc.md keeps the figures.
 *
 * Usage: npx tsx bench/btc.ts [--count 20000] [--runs 3] [--only derivation|watcher]
 */
import os from "node:os";
import { mkdtempSync, rmSync } from "node:fs";
import path from "node:path";
import { randomBytes } from "node:crypto";
import { performance } from "node:perf_hooks";
import pino from "pino";
import { Address } from "@scure/btc-signer";
import { openStore } from "../api/store";
import { btcInvoices, btcWallets } from "../api/store/schema";
import { createEsploraSource } from "../api/bitcoin/source";
import { createBitcoinWatcher } from "../api/bitcoin/watcher";
import { RegtestChain, REGTEST } from "../scripts/lib/bitcoin-regtest/chain";
import { startEsplora } from "../scripts/lib/bitcoin-regtest/servers";
import { p2tr, p2wpkh, NETWORK } from "@scure/btc-signer";
import { receiveAddresses, type ReceiveAddress } from "../api/bitcoin/addresses";
import { parseAccountKey, type AccountKey } from "../api/bitcoin/keys";

const USAGE = `Usage: npx tsx bench/btc.ts [--count N] [--runs R]

  --count N   addresses derived per run and per path (default 20000)
  --runs R    runs per figure; the median is reported (default 3)
  --only S    one section: derivation or watcher
  --help      this text`;

if (process.argv.includes("--help")) {
  console.log(USAGE);
  process.exit(0);
}

function option(name: string, fallback: number): number {
  const flag = process.argv.indexOf(`--${name}`);
  const value = flag === -1 ? fallback : Number(process.argv[flag + 1]);
  if (!Number.isInteger(value) || value <= 0) throw new Error(`--${name} must be a positive integer\n\n${USAGE}`);
  return value;
}
const COUNT = option("count", 20_000);
const RUNS = option("runs", 3);
const TARGET = 5_000;

// The published BIP84 and BIP86 account keys (mainnet): any account key costs the same.
const KEYS: AccountKey[] = [
  parseAccountKey("zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs", "mainnet"),
  parseAccountKey("xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ", "mainnet", { script: "p2tr" }),
];

interface Row {
  measure: string;
  value: string;
  baseline: string;
  target: string;
  met: string;
}
const step = (message: string) => process.stderr.write(`▸ ${message}\n`);
const rate = (perSecond: number) => `${Math.round(perSecond).toLocaleString("en-US")}/s`;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The implementation `receiveAddresses` replaced (mainnet only, which is all this bench derives). */
function baseline(key: AccountKey, from: number, count: number): ReceiveAddress[] {
  const branch = key.account.deriveChild(0);
  const result: ReceiveAddress[] = [];
  for (let index = from; index < from + count; index += 1) {
    const publicKey = branch.deriveChild(index).publicKey!;
    const payment = key.script === "p2tr" ? p2tr(publicKey.subarray(1), undefined, NETWORK) : p2wpkh(publicKey, NETWORK);
    result.push({ index, address: payment.address!, script: Buffer.from(payment.script).toString("hex") });
  }
  return result;
}

/** Median addresses per second over RUNS runs of COUNT fresh indexes each. */
function addressesPerSecond(derive: typeof baseline, key: AccountKey): number {
  const rates: number[] = [];
  for (let run = 0; run < RUNS; run += 1) {
    const started = performance.now();
    derive(key, 1_000 + run * COUNT, COUNT);
    rates.push(COUNT / ((performance.now() - started) / 1_000));
  }
  return median(rates);
}

function derivationSection(): Row[] {
  const rows: Row[] = [];
  const started = performance.now();
  receiveAddresses(KEYS[0], 0, 1);
  const tableMs = performance.now() - started;
  rows.push({ measure: "first call in a process (builds the table of multiples of G, once)", value: `${Math.round(tableMs)} ms`, baseline: "—", target: "—", met: "—" });
  for (const key of KEYS) {
    const name = key.script === "p2tr" ? "P2TR (BIP86)" : "P2WPKH (BIP84)";
    // Warm both paths up (JIT) and check they agree before timing them.
    if (JSON.stringify(baseline(key, 0, 200)) !== JSON.stringify(receiveAddresses(key, 0, 200))) throw new Error(`${name}: the paths disagree`);
    step(`${name}: ${RUNS} runs of ${COUNT.toLocaleString("en-US")} addresses, plain path`);
    const plain = addressesPerSecond(baseline, key);
    step(`${name}: ${RUNS} runs of ${COUNT.toLocaleString("en-US")} addresses, batch path`);
    const batch = addressesPerSecond(receiveAddresses, key);
    rows.push({
      measure: `${name} receive addresses per second, receiveAddresses(key, from, ${COUNT.toLocaleString("en-US")}), median of ${RUNS}`,
      value: rate(batch),
      baseline: `@scure/bip32 + btc-signer per address: ${rate(plain)} (${(batch / plain).toFixed(1)}× faster)`,
      target: `≥ ${TARGET.toLocaleString("en-US")}/s`,
      met: batch >= TARGET ? "yes" : "no",
    });
  }
  return rows;
}

function printSection(title: string, rows: Row[]): void {
  console.log(
    [`## ${title}`, "", "| measure | result | baseline (same run) | target | met |", "|---|---|---|---|:-:|", ...rows.map((row) => `| ${row.measure} | ${row.value} | ${row.baseline} | ${row.target} | ${row.met} |`), ""].join(
      "\n",
    ),
  );
}

const BLOCKS = 5;
const TXS_PER_BLOCK = 20;
const OUTPUTS_PER_TX = 50;
const PAID_PER_BLOCK = 20;

/** A P2WPKH script (hex) of a random key hash, and its regtest address. */
function randomScript(): { script: string; address: string } {
  const hash = randomBytes(20);
  return { script: `0014${hash.toString("hex")}`, address: Address(REGTEST).encode({ type: "wpkh", hash }) };
}

/**
 * The watcher with `watched` invoice addresses: per block, the time of one pass over a new block beside the
 * time to fetch and parse that block alone. Medians over `BLOCKS` blocks.
 */
async function watcherRun(watched: number): Promise<{ pass: number; read: number }> {
  const directory = mkdtempSync(path.join(os.tmpdir(), "chainbill-bench-btc-"));
  const store = await openStore({ directory });
  const chain = new RegtestChain();
  step(`watcher with ${watched.toLocaleString("en-US")} watched addresses: mining coins and storing the invoices`);
  chain.mine(101 + BLOCKS * TXS_PER_BLOCK);
  const merchantId = "mer_bench";
  await store.db.insert(btcWallets).values({ id: "btcw_bench", merchantId, network: "regtest", script: "p2wpkh", descriptor: "bench" });
  const paidTargets: string[] = [];
  const expiresAt = BigInt(Math.floor(Date.now() / 1000) + 86_400 * 365);
  for (let offset = 0; offset < watched; offset += 1_000) {
    const rows = [];
    for (let index = offset; index < Math.min(watched, offset + 1_000); index += 1) {
      const { script, address } = randomScript();
      if (paidTargets.length < BLOCKS * PAID_PER_BLOCK) paidTargets.push(address);
      rows.push({ id: `inv_bench_${index}`, merchantId, walletId: "btcw_bench", network: "regtest", address, addressIndex: index, script, amountSats: 10_000n, expiresAt, detailsHash: "0x" });
    }
    await store.db.insert(btcInvoices).values(rows);
  }
  const server = await startEsplora(chain);
  const source = createEsploraSource(server.url);
  const watcher = createBitcoinWatcher({ db: store.db, source, network: "regtest", logger: pino({ level: "silent" }) });
  await watcher.tick();
  const passes: number[] = [];
  const reads: number[] = [];
  for (let block = 0; block < BLOCKS; block += 1) {
    const targets = paidTargets.slice(block * PAID_PER_BLOCK, (block + 1) * PAID_PER_BLOCK);
    const coins = chain.spendable();
    for (let tx = 0; tx < TXS_PER_BLOCK; tx += 1) {
      const outputs = Array.from({ length: OUTPUTS_PER_TX }, () => ({ address: randomScript().address, amount: 1_000n }));
      outputs[0] = { address: targets[tx % targets.length], amount: 10_000n };
      chain.payMany(outputs, { coins: [coins[block * TXS_PER_BLOCK + tx]] });
    }
    const [mined] = chain.mine();
    const readStart = performance.now();
    await source.block(await source.blockHash(mined.height));
    reads.push(performance.now() - readStart);
    // The transactions were never in the watcher's mempool view: the pass matches all of them from the block.
    const passStart = performance.now();
    await watcher.tick();
    passes.push(performance.now() - passStart);
  }
  await watcher.stop();
  await server.close();
  await store.close();
  rmSync(directory, { recursive: true, force: true });
  return { pass: median(passes), read: median(reads) };
}

async function watcherSection(): Promise<Row[]> {
  const small = await watcherRun(100);
  const large = await watcherRun(100_000);
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const shape = `block of ${TXS_PER_BLOCK * OUTPUTS_PER_TX} outputs, ${PAID_PER_BLOCK} paying watched invoices`;
  return [
    { measure: `one watcher pass over a new block, 100 watched addresses (${shape}), median of ${BLOCKS}`, value: ms(small.pass), baseline: `fetch + parse the block alone: ${ms(small.read)}`, target: "—", met: "—" },
    { measure: `the same with 100,000 watched addresses`, value: ms(large.pass), baseline: `fetch + parse the block alone: ${ms(large.read)}`, target: "—", met: "—" },
    { measure: "ratio 100,000 : 100 watched", value: `${(large.pass / small.pass).toFixed(2)}×`, baseline: "—", target: "near 1", met: large.pass / small.pass < 1.5 ? "yes" : "no" },
  ];
}

async function main(): Promise<void> {
  const cpus = os.cpus();
  const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : undefined;
  console.log(`# Bitcoin benchmark\n\n${new Date().toISOString().slice(0, 10)}; machine: ${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}.\n`);
  if (only !== "watcher") printSection("Receive address derivation", derivationSection());
  if (only !== "derivation") printSection("Watcher: time per block", await watcherSection());
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
