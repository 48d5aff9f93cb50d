/**
 * The toolkit of every stack test: real Hardhat node(s), the contracts deployed by the real deploy task, and
 * Ponder running the indexer with the chainbill API in its process, on free ports in a temporary directory
 * (optionally on a private Postgres, see postgres.ts). Processes are supervised with the same code `npm start`
 * uses (scripts/lib); wallets pay with nothing but the API's instructions (`payWithInstructions`), the clock
 * moves one block at a time (`timeTravel`), and `stack.client(key)` is the typed client integrators use.
 */
import { randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import {
  createPublicClient,
  createWalletClient,
  http,
  parseEther,
  parseUnits,
  type Abi,
  type Account,
  type Address,
  type Hex,
  type PublicClient,
  type Transport,
  type WalletClient,
} from "viem";
import { readDeployment, type Deployment } from "../../contracts/addresses";
import { createChainbillClient, type ChainbillClient, type components } from "../../api/client";
import { testAccount, timeTravel as moveClock } from "../../scripts/lib/local-chain";
import { freePort, runToCompletion, startChild, stopChild, waitFor, type Supervised } from "../../scripts/lib/processes";

export { freePort } from "../../scripts/lib/processes";

export { testAccount } from "../../scripts/lib/local-chain";

export const ROOT = path.join(__dirname, "..", "..");
const BIN = path.join(ROOT, "node_modules", ".bin");
const PONDER_CLI = path.join(ROOT, "node_modules", "ponder", "dist", "esm", "bin", "ponder.js");

/** What the API answers, as the typed client (generated from the OpenAPI document) describes it. */
export type Schemas = components["schemas"];
export type InvoiceJson = Schemas["Invoice"];
export type PaymentTransaction = Schemas["PaymentTransaction"];


/** Polls `probe` every 100 ms until it holds; throws after `timeoutMs` naming `what`. */
export function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  return waitFor(what, probe, timeoutMs, 100);
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

/**
 * Moves the chain's clock forward and mines exactly one block (which Ponder follows), then lets the API's
 * head cache (0.5 s) see that block, so "now" on the chain is the new time for the next request.
 */
export async function timeTravel(chain: LocalChain, seconds: number): Promise<bigint> {
  const time = await moveClock(chain.client, seconds);
  await new Promise((resolve) => setTimeout(resolve, 600));
  return time;
}

/**
 * Sends exactly the transactions the API listed (`payment.evm.transactions`, a plan's `subscribe.transactions`),
 * in order, from Hardhat account `walletIndex`; every one must succeed. Returns their hashes.
 */
export async function payWithInstructions(
  chain: LocalChain,
  walletIndex: number,
  transactions: readonly { to: string; data: string; value: string; description?: string }[],
): Promise<Hex[]> {
  const wallet = chain.wallet(walletIndex);
  const hashes: Hex[] = [];
  for (const transaction of transactions) {
    const hash = await wallet.sendTransaction({ to: transaction.to as Address, data: transaction.data as Hex, value: BigInt(transaction.value), chain: null });
    const receipt = await chain.client.waitForTransactionReceipt({ hash });
    if (receipt.status !== "success") throw new Error(`${transaction.description ?? "transaction"} reverted (${hash})`);
    hashes.push(hash);
  }
  return hashes;
}

/** The `Chainbill-Indexed` header, per chain: `{ block, time, head, state }`. */
export function parseIndexedHeader(header: string | null): Map<number, Record<string, string>> {
  const chains = new Map<number, Record<string, string>>();
  for (const part of (header ?? "").split(",").map((item) => item.trim()).filter(Boolean)) {
    const fields = Object.fromEntries(part.split(" ").map((pair) => pair.split("=") as [string, string]));
    chains.set(Number(fields.chain), fields);
  }
  return chains;
}

/** Sends `count` plain transfers back to back (automine: one block each, as fast as the node mines them). */
export async function burst(chain: LocalChain, count: number): Promise<void> {
  const wallet = chain.wallet(9);
  let nonce = await chain.client.getTransactionCount({ address: wallet.account.address });
  let last: `0x${string}` | undefined;
  for (let index = 0; index < count; index += 1) {
    last = await wallet.sendTransaction({ to: testAccount(8).address, value: 1n, nonce: nonce++, chain: null, gas: 21_000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 1n });
  }
  if (last) await chain.client.waitForTransactionReceipt({ hash: last, pollingInterval: 50 });
}

export interface Stack {
  chains: LocalChain[];
  apiUrl: string;
  /** Ponder's own server (loopback): /status, /metrics, and /graphql with INDEXER_QUERY_API=true. */
  indexerUrl(): string;
  adminKey: string;
  directory: string;
  logFile: string;
  /** Calls the API with a bearer key; JSON in and out. */
  api(method: string, route: string, options?: { key?: string; body?: unknown; headers?: Record<string, string> }): Promise<Response>;
  /** The typed client (api/client) with a bearer key. */
  client(key: string): ChainbillClient;
  /**
   * Stops Ponder (SIGINT, or `signal`: SIGKILL for a crash) and starts it again: on the same data, or `fresh`
   * (empty database: a full backfill).
   */
  restartIndexer(options?: { fresh?: boolean; signal?: NodeJS.Signals; env?: Record<string, string> }): Promise<void>;
  /** Process id of the Ponder process (indexer + API), for memory measurements. */
  indexerPid(): number | undefined;
  /** How many times the indexer exited with code 75 and was started again (as a supervisor would). */
  indexerRestarts(): number;
  /** The environment the indexer/API process runs with (to start replicas and workers beside it). */
  processEnv(): NodeJS.ProcessEnv;
  stop(): Promise<void>;
}

export interface StackOptions {
  chainIds?: number[];
  /** Use this Postgres for the indexer and the API store instead of PGlite. */
  databaseUrl?: string;
  env?: Record<string, string>;
  /** Node.js flags for the Ponder process (e.g. `--cpu-prof` when profiling the API). */
  nodeArgs?: string[];
  /** Protocol fee of the deployment, in basis points (default 0). */
  feeBps?: number;
  /** Leave ADMIN_API_KEY unset: the API generates one into its data directory (read back into `adminKey`). */
  generatedAdminKey?: boolean;
  /** Runs once the chains are deployed, before the indexer starts; returns extra environment for it. */
  beforeIndexer?: (chains: LocalChain[]) => Promise<Record<string, string>>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const chainIds = options.chainIds ?? [31337];
  const directory = await mkdtemp(path.join(os.tmpdir(), "chainbill-stack-"));
  const logFile = path.join(directory, "stack.log");
  const deploymentsDir = path.join(directory, "deployments");
  // Ponder reads PORT before its --port flag: the API's port is passed as API_PORT instead.
  const { PORT: _port, ...inherited } = process.env;
  const baseEnv: NodeJS.ProcessEnv = { ...inherited, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true", PONDER_TELEMETRY_DISABLED: "true", DEPLOYMENTS_DIR: deploymentsDir };
  const nodes: Supervised[] = [];
  const chains: LocalChain[] = [];

  for (const id of chainIds) {
    const port = await freePort();
    const rpcUrl = `http://127.0.0.1:${port}`;
    nodes.push(
      startChild("hardhat node", path.join(BIN, "hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
        cwd: ROOT,
        env: { ...baseEnv, HARDHAT_CHAIN_ID: String(id), HARDHAT_BLOCK_INTERVAL_MS: "1000" },
        logFile,
      }),
    );
    const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) }) as PublicClient;
    await waitUntil(`hardhat node ${id}`, async () => (await client.getChainId()) === id);
    await runToCompletion("deploy", path.join(BIN, "hardhat"), ["deploy", "--network", "localhost", "--fee-bps", String(options.feeBps ?? 0)], {
      cwd: ROOT,
      env: { ...baseEnv, LOCAL_RPC_URL: rpcUrl, HARDHAT_CHAIN_ID: String(id) },
      logFile,
    });
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

  const extraEnv = options.beforeIndexer ? await options.beforeIndexer(chains) : {};
  const apiPort = await freePort();
  const apiUrl = `http://127.0.0.1:${apiPort}`;
  let adminKey = `admin_${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}xxxxxxxx`;
  let schema = `cb_${Date.now().toString(36)}`;
  const ponderEnv = (): NodeJS.ProcessEnv => ({
    ...baseEnv,
    CHAINBILL_CHAINS: chains.map((chain) => `${chain.id}=${chain.rpcUrl}`).join(","),
    DATABASE_SCHEMA: schema,
    API_PORT: String(apiPort),
    API_HOST: "127.0.0.1",
    PGLITE_DIR: path.join(directory, "ponder"),
    API_STORE_DIR: path.join(directory, "api-store"),
    DATA_DIR: path.join(directory, "data"),
    ...(options.generatedAdminKey ? {} : { ADMIN_API_KEY: adminKey }),
    LOG_LEVEL: "warn",
    // Tests make many requests from one address in bursts.
    RATE_LIMIT_PER_CLIENT_PER_MINUTE: "100000",
    // Webhook receivers in tests listen on loopback.
    WEBHOOK_ALLOW_PRIVATE_URLS: "true",
    ...(options.databaseUrl ? { DATABASE_URL: options.databaseUrl } : {}),
    ...options.env,
    ...extraEnv,
    ...restartEnv,
  });
  let ponder: Supervised | undefined;
  let internalPort = 0;
  /** Set while the test itself stops Ponder (restartIndexer, stop): an exit then is expected. */
  let stopping = false;
  let restarts = 0;
  /** Extra environment of the next start only (restartIndexer's `env`). */
  let restartEnv: Record<string, string> = {};
  const startPonder = async (attempts = 2): Promise<void> => {
    internalPort = await freePort();
    const ponderArgs = ["start", "--root", "indexer", "--port", String(internalPort), "--hostname", "127.0.0.1", "--log-format", "json"];
    const child = options.nodeArgs
      ? startChild("ponder", process.execPath, [...options.nodeArgs, PONDER_CLI, ...ponderArgs], { cwd: ROOT, env: ponderEnv(), logFile, stopSignal: "SIGINT" })
      : startChild("ponder", path.join(BIN, "ponder"), ponderArgs, { cwd: ROOT, env: ponderEnv(), logFile, stopSignal: "SIGINT" });
    ponder = child;
    let exitCode: number | null | undefined;
    void child.exited.then((code) => (exitCode = code));
    await waitUntil("the chainbill API", async () => exitCode !== undefined || (await fetch(`${apiUrl}/openapi.json`)).ok, 120_000);
    if (exitCode === undefined) {
      // Like a process supervisor: an exit with code 75 (retryable, e.g. the watchdog restarting a stalled
      // indexer) starts it again.
      void child.exited.then((code) => {
        if (code === 75 && !stopping && ponder === child) {
          restarts += 1;
          void startPonder();
        }
      });
      return;
    }
    // Ponder's crash recovery occasionally replays from the start and exits (UniqueConstraintError); a second
    // start recovers, as a process supervisor would.
    if (attempts <= 1) throw new Error(`Ponder exited (code ${exitCode}) before the API answered; see ${logFile}`);
    await startPonder(attempts - 1);
  };
  await startPonder();
  if (options.generatedAdminKey) adminKey = readFileSync(path.join(directory, "data", "admin-api-key"), "utf8").trim();

  const stack: Stack = {
    chains,
    apiUrl,
    indexerUrl: () => `http://127.0.0.1:${internalPort}`,
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
    client(key) {
      return createChainbillClient({ baseUrl: apiUrl, apiKey: key });
    },
    async restartIndexer({ fresh = false, signal = "SIGINT", env } = {}) {
      stopping = true;
      restartEnv = env ?? {};
      if (ponder) {
        if (signal === "SIGINT") await stopChild(ponder);
        else {
          ponder.child.kill(signal);
          await ponder.exited;
        }
      }
      if (fresh) {
        schema = `cb_${Date.now().toString(36)}`;
        await rm(path.join(directory, "ponder"), { recursive: true, force: true });
      }
      stopping = false;
      await startPonder();
    },
    indexerRestarts: () => restarts,
    processEnv: () => ponderEnv(),
    indexerPid() {
      return ponder?.child.pid;
    },
    async stop() {
      stopping = true;
      if (ponder) await stopChild(ponder);
      for (const node of nodes) await stopChild(node);
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
export async function createMerchant(stack: Stack, ownerIndex: number, name = "Test merchant", options: { operatorFunding?: bigint } = {}): Promise<TestMerchant> {
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
    await payWithInstructions(chain, ownerIndex, [registration.registrationTransaction]);
    const funding = options.operatorFunding ?? parseEther("10");
    if (funding > 0n) {
      const hash = await chain.wallet(ownerIndex).sendTransaction({ to: created.merchant.operatorAddress, value: funding, chain: null });
      await chain.client.waitForTransactionReceipt({ hash });
    }
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

/** Mints the local mock stablecoin (6 decimals) to Hardhat account `holderIndex`. */
export async function mintStablecoin(chain: LocalChain, holderIndex: number, amount: bigint): Promise<void> {
  const token = chain.deployment.contracts.MockStablecoin!.address;
  const hash = await chain.wallet(0).writeContract({ address: token, abi: mockStablecoinAbi, functionName: "mint", args: [testAccount(holderIndex).address, amount], chain: null });
  await chain.client.waitForTransactionReceipt({ hash });
}

/** A merchant's invoices through the API: create (201 expected), read, and create-then-pay with the API's instructions. */
export function invoicesOf(stack: Stack, merchant: TestMerchant, chain: LocalChain) {
  const read = async (id: string) => (await (await stack.api("GET", `/v1/invoices/${id}`, { key: merchant.apiKey })).json()) as InvoiceJson;
  const create = async (body: Record<string, unknown>): Promise<InvoiceJson> => {
    const response = await stack.api("POST", "/v1/invoices", { key: merchant.apiKey, headers: { "Idempotency-Key": randomUUID() }, body: { chainId: chain.id, ...body } });
    const text = await response.text();
    if (response.status !== 201) throw new Error(`POST /v1/invoices → ${response.status}: ${text}`);
    return JSON.parse(text) as InvoiceJson;
  };
  const paid = async (body: Record<string, unknown>, payerIndex = 4): Promise<InvoiceJson> => {
    const invoice = await create(body);
    await payWithInstructions(chain, payerIndex, invoice.payment.evm!.transactions);
    await waitUntil("the payment to be indexed", async () => (await read(invoice.id)).status === "paid");
    return invoice;
  };
  return { create, read, paid };
}
