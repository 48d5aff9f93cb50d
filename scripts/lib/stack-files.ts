/**
 * Where the local stack keeps its state under the data directory (default `.data/`), and the two small JSON
 * files `npm start` leaves for other tools: `stack.json` (what is running, while it runs) and
 * `demo-merchant.json` (the demo merchant and its API key, reused across runs).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";
import type { Address } from "viem";

export const ROOT = path.join(__dirname, "..", "..");

/**
 * Reads `.env` at the repository root (or the file `CHAINBILL_ENV_FILE` names) when present; variables already
 * set win. Empty values, as in a copied `.env.example` or `DATABASE_URL= npm start`, mean "not set": they are
 * removed so that no child process (Ponder, the API's configuration) reads an empty string as a setting.
 */
export function loadDotEnv(file = process.env.CHAINBILL_ENV_FILE || path.join(ROOT, ".env")): void {
  if (existsSync(file)) {
    for (const [name, value] of Object.entries(parseEnv(readFileSync(file, "utf8")))) process.env[name] ??= value;
  }
  for (const [name, value] of Object.entries(process.env)) if (value?.trim() === "") delete process.env[name];
}

export interface StackPaths {
  dataDir: string;
  logsDir: string;
  hardhatLog: string;
  ponderLog: string;
  deployLog: string;
  keeperLog: string;
  pgliteDir: string;
  apiStoreDir: string;
  stackFile: string;
  demoMerchantFile: string;
}

export function stackPaths(dataDir = process.env.DATA_DIR || ".data"): StackPaths {
  const root = path.resolve(ROOT, dataDir);
  const logsDir = path.join(root, "logs");
  return {
    dataDir: root,
    logsDir,
    hardhatLog: path.join(logsDir, "hardhat-node.log"),
    ponderLog: path.join(logsDir, "ponder.log"),
    deployLog: path.join(logsDir, "deploy.log"),
    keeperLog: path.join(logsDir, "keeper.log"),
    pgliteDir: path.join(root, "ponder"),
    apiStoreDir: path.join(root, "api-store"),
    stackFile: path.join(root, "stack.json"),
    demoMerchantFile: path.join(root, "demo-merchant.json"),
  };
}

/** What a running `npm start` serves (no secrets). */
export interface StackState {
  pid: number;
  apiUrl: string;
  chains: { id: number; rpcUrl: string; local: boolean }[];
  /** The simulated local Bitcoin regtest chain npm start runs (absent with a configured Bitcoin source). */
  bitcoin?: { network: "regtest"; esploraUrl: string; simulated: true };
  startedAt: string;
}

export interface DemoMerchant {
  id: string;
  name: string;
  apiKey: string;
  operatorAddress: Address;
  ownerAddress: Address;
  payoutAddress: Address;
  createdAt: string;
}

export function readJson<T>(file: string): T | undefined {
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as T;
}

export function writeJson(file: string, value: unknown, mode = 0o644): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`, { mode });
}

/** The running stack, if `stack.json` names a live process. */
export function runningStack(paths: StackPaths): StackState | undefined {
  const state = readJson<StackState>(paths.stackFile);
  if (!state) return undefined;
  try {
    process.kill(state.pid, 0);
    return state;
  } catch {
    return undefined;
  }
}
