/**
 * Real-process test stack: Hardhat node(s), the contracts deployed by the real deploy task, and Ponder running
 * the indexer with the chainbill API mounted, on free ports and in a temporary directory. Optionally on a
 * private Postgres (see postgres.ts). Every test of the stack goes through here.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createWriteStream, readFileSync } from "node:fs";
import { createServer } from "node:net";
import os from "node:os";
import path from "node:path";
import {
  createPublicClient,
  createWalletClient,
  http,
  parseEther,
  parseUnits,
  type Abi,
  type Address,
  type Hex,
  type PublicClient,
  type WalletClient,
  type Account,
  type Transport,
} from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { readDeployment, type Deployment } from "../../contracts/addresses";

export const ROOT = path.join(__dirname, "..", "..");
const BIN = path.join(ROOT, "node_modules", ".bin");
const PONDER_CLI = path.join(ROOT, "node_modules", "ponder", "dist", "esm", "bin", "ponder.js");
const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";

/** Hardhat's funded test accounts (index 0 deploys; the others are free for tests). */
export function testAccount(index: number): Account {
  return mnemonicToAccount(HARDHAT_MNEMONIC, { addressIndex: index });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** The mock stablecoin the local deployments carry (mint, approve, balanceOf, …), as compiled. */
export const mockStablecoinArtifact = JSON.parse(
  readFileSync(path.join(ROOT, "artifacts", "contracts", "test", "MockStablecoin.sol", "MockStablecoin.json"), "utf8"),
) as { abi: Abi; bytecode: Hex };
export const mockStablecoinAbi = mockStablecoinArtifact.abi;

/** Base units of the 6-decimal mock USDC, from a decimal amount (exact: parsed as text, never a float). */
export function usdc(amount: number | string): bigint {
  return parseUnits(String(amount), 6);
}

export type TestWallet = WalletClient<Transport, undefined, Account>;

export interface LocalChain {
  id: number;
  rpcUrl: string;
  client: PublicClient;
  deployment: Deployment;
  /** A wallet client for Hardhat test account `index`. */
  wallet(index: number): TestWallet;
}

export interface Stack {
  chains: LocalChain[];
  apiUrl: string;
  adminKey: string;
  directory: string;
  logFile: string;
  /** Calls the API with a bearer key; JSON in and out. */
  api(method: string, route: string, options?: { key?: string; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  /**
   * Stops Ponder (SIGINT, or `signal`: SIGKILL for a crash) and starts it again: on the same data, or `fresh`
   * (empty database: a full backfill).
   */
  restartIndexer(options?: { fresh?: boolean; signal?: NodeJS.Signals }): Promise<void>;
  /** Process id of the Ponder process (indexer + API), for memory measurements. */
  indexerPid(): number | undefined;
  stop(): Promise<void>;
}

export interface StackOptions {
  chainIds?: number[];
  /** Use this Postgres for the indexer and the API store instead of PGlite. */
  databaseUrl?: string;
  env?: Record<string, string>;
  /** Node.js flags for the Ponder process (e.g. `--cpu-prof` when profiling the API). */
  nodeArgs?: string[];
}

const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

function launch(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  const sink = createWriteStream(logFile, { flags: "a" });
  child.stdout?.pipe(sink);
  child.stderr?.pipe(sink);
  children.add(child);
  child.once("exit", () => children.delete(child));
  return child;
}

async function stopProcess(child: ChildProcess | undefined, signal: NodeJS.Signals = "SIGINT"): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

function runOnce(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = launch(command, args, env, logFile);
    child.once("exit", (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(command)} ${args.join(" ")} exited ${code}; see ${logFile}`))));
  });
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const chainIds = options.chainIds ?? [31337];
  const directory = await mkdtemp(path.join(os.tmpdir(), "chainbill-stack-"));
  const logFile = path.join(directory, "stack.log");
  const deploymentsDir = path.join(directory, "deployments");
  const baseEnv = { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true", PONDER_TELEMETRY_DISABLED: "true", DEPLOYMENTS_DIR: deploymentsDir };
  const nodes: ChildProcess[] = [];
  const chains: LocalChain[] = [];

  for (const id of chainIds) {
    const port = await freePort();
    const rpcUrl = `http://127.0.0.1:${port}`;
    nodes.push(launch(path.join(BIN, "hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(port)], { ...baseEnv, HARDHAT_CHAIN_ID: String(id), HARDHAT_BLOCK_INTERVAL_MS: "1000" }, logFile));
    const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) }) as PublicClient;
    await waitUntil(`hardhat node ${id}`, async () => (await client.getChainId()) === id);
    await runOnce(path.join(BIN, "hardhat"), ["deploy", "--network", "localhost"], { ...baseEnv, LOCAL_RPC_URL: rpcUrl, HARDHAT_CHAIN_ID: String(id) }, logFile);
    const deployment = readDeployment(id, deploymentsDir);
    if (!deployment) throw new Error(`deploy wrote no deployments/${id}.json`);
    chains.push({
      id,
      rpcUrl,
      client,
      deployment,
      wallet: (index: number) => createWalletClient({ account: testAccount(index), transport: http(rpcUrl) }),
    });
  }

  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  const adminKey = `admin_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}xxxxxxxx`;
  const ponderEnv: NodeJS.ProcessEnv = {
    ...baseEnv,
    CHAINBILL_CHAINS: chains.map((chain) => `${chain.id}=${chain.rpcUrl}`).join(","),
    PGLITE_DIR: path.join(directory, "ponder"),
    API_STORE_DIR: path.join(directory, "api-store"),
    DATA_DIR: path.join(directory, "data"),
    ADMIN_API_KEY: adminKey,
    LOG_LEVEL: "warn",
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...options.env,
  };
  let schema = `cb_${Date.now().toString(36)}`;
  let ponder: ChildProcess | undefined;
  const startPonder = async (attempts = 2) => {
    const ponderArgs = ["start", "--root", "indexer", "--schema", schema, "--port", String(apiPort)];
    const child = options.nodeArgs
      ? launch(process.execPath, [...options.nodeArgs, PONDER_CLI, ...ponderArgs], ponderEnv, logFile)
      : launch(path.join(BIN, "ponder"), ponderArgs, ponderEnv, logFile);
    ponder = child;
    let exitCode: number | null | undefined;
    child.once("exit", (code) => (exitCode = code));
    await waitUntil("the chainbill API", async () => exitCode !== undefined || (await fetch(`${apiUrl}/openapi.json`)).ok, 120_000);
    if (exitCode === undefined) return;
    // Ponder's crash recovery occasionally replays from the start and exits (UniqueConstraintError, see
    // TOOLCHAIN.md); a second start recovers, as a process supervisor would.
    if (attempts <= 1) throw new Error(`Ponder exited (code ${exitCode}) before the API answered; see ${logFile}`);
    await startPonder(attempts - 1);
  };
  await startPonder();

  const stack: Stack = {
    chains,
    apiUrl,
    adminKey,
    directory,
    logFile,
    api(method, route, { key, body, headers } = {}) {
      return fetch(`${apiUrl}${route}`, {
        method,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...headers,
        },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
    },
    async restartIndexer({ fresh = false, signal = "SIGINT" } = {}) {
      await stopProcess(ponder, signal);
      if (fresh) {
        schema = `cb_${Date.now().toString(36)}`;
        await rm(ponderEnv.PGLITE_DIR as string, { recursive: true, force: true });
      }
      await startPonder();
    },
    indexerPid() {
      return ponder?.pid;
    },
    async stop() {
      await stopProcess(ponder);
      for (const node of nodes) await stopProcess(node, "SIGTERM");
      if (!process.env.KEEP_STACK) await rm(directory, { recursive: true, force: true });
    },
  };
  return stack;
}

export interface TestMerchant {
  id: string;
  apiKey: string;
  operator: Address;
  owner: Account;
  payout: Address;
  /** On-chain merchant id per chain. */
  onchainIds: Map<number, bigint>;
}

/**
 * Creates a merchant through the API (admin key), registers it on every chain from the owner wallet with the
 * transaction the API returned, funds its operator key with ETH for gas, and waits until the API sees it.
 */
export async function createMerchant(stack: Stack, ownerIndex: number, name = "Test merchant"): Promise<TestMerchant> {
  const owner = testAccount(ownerIndex);
  const payout = testAccount(ownerIndex + 1).address;
  const response = await stack.api("POST", "/v1/merchants", {
    key: stack.adminKey,
    body: { name, payoutAddress: payout, ownerAddress: owner.address },
  });
  if (response.status !== 201) throw new Error(`create merchant: ${response.status} ${await response.text()}`);
  const created = (await response.json()) as {
    merchant: { id: string; operatorAddress: Address; chains: { chainId: number; registrationTransaction: { to: Address; data: Hex; value: string } }[] };
    apiKey: { secret: string };
  };
  for (const registration of created.merchant.chains) {
    const chain = stack.chains.find((candidate) => candidate.id === registration.chainId)!;
    const wallet = chain.wallet(ownerIndex);
    const { to, data, value } = registration.registrationTransaction;
    const hash = await wallet.sendTransaction({ to, data, value: BigInt(value), chain: null });
    await chain.client.waitForTransactionReceipt({ hash });
    const funding = await wallet.sendTransaction({ to: created.merchant.operatorAddress, value: parseEther("10"), chain: null });
    await chain.client.waitForTransactionReceipt({ hash: funding });
  }
  const onchainIds = new Map<number, bigint>();
  await waitUntil("merchant registration to be indexed", async () => {
    const me = (await (await stack.api("GET", "/v1/merchants/me", { key: created.apiKey.secret })).json()) as {
      chains: { chainId: number; registered: boolean; onchainMerchantId: string | null }[];
    };
    for (const chain of me.chains) if (chain.onchainMerchantId) onchainIds.set(chain.chainId, BigInt(chain.onchainMerchantId));
    return me.chains.every((chain) => chain.registered);
  });
  return { id: created.merchant.id, apiKey: created.apiKey.secret, operator: created.merchant.operatorAddress, owner, payout, onchainIds };
}
