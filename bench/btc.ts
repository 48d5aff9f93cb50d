/**
 * Bitcoin benchmark, each figure beside a baseline measured in the same run:
 *   1. receive addresses per second, P2WPKH (BIP84) and P2TR (BIP86): the batch path, `receiveAddresses`
 *      (api/bitcoin/derive.ts), beside the plain path it replaced — @scure/bip32 deriveChild and @scure/btc-signer
 *      p2wpkh / p2tr for each address — and the one-time cost of its table of multiples of G.
 * Prints the machine and a table per section; bench/btc.md keeps the figures.
 *
 * Usage: npx tsx bench/btc.ts [--count 20000] [--runs 3]
 */
import os from "node:os";
import { p2tr, p2wpkh, NETWORK } from "@scure/btc-signer";
import { receiveAddresses, type ReceiveAddress } from "../api/bitcoin/addresses";
import { parseAccountKey, type AccountKey } from "../api/bitcoin/keys";

const USAGE = `Usage: npx tsx bench/btc.ts [--count N] [--runs R]

  --count N   addresses derived per run and per path (default 20000)
  --runs R    runs per figure; the median is reported (default 3)
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

async function main(): Promise<void> {
  const cpus = os.cpus();
  console.log(`# Bitcoin benchmark\n\n${new Date().toISOString().slice(0, 10)}; machine: ${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}.\n`);
  printSection("Receive address derivation", derivationSection());
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
