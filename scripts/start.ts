/**
 * `npm start`: the whole chainbill stack in one command (SPEC §7).
 *
 *   1. a chain: a local Hardhat node (unless RPC_URL or CHAINBILL_CHAINS name running chains);
 *   2. the contracts, deployed when deployments/<chainId>.json does not describe live contracts;
 *   3. Ponder (`ponder start --root indexer`): the indexer plus the chainbill API mounted in its HTTP server;
 *   4. on local chains, a demo merchant created through the API and registered on-chain, its operator funded,
 *      and mock stablecoins minted to the customer test accounts;
 *   5. a summary: URLs, keys, addresses, accounts, logs. Ctrl-C stops every child (Ponder gets SIGINT).
 *
 * Re-running on an existing .data/ resumes: the indexer keeps its data while the chain and indexer code are the
 * same (scripts/lib/indexer.ts), and the demo merchant is reused from .data/demo-merchant.json.
 */
import { randomBytes } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { createPublicClient, formatEther, formatUnits, http, parseEther, parseUnits, type PublicClient } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { z } from "zod";
import { readDeployment, type Deployment } from "../contracts/addresses";
import { parseChainList } from "../indexer/chains";
import { createApiClient, probeApi } from "./lib/api-client";
import { ensureDemoMerchant, type DemoChain } from "./lib/demo-merchant";
import { indexerSchemaName, prepareIndexerData, waitUntilIndexed } from "./lib/indexer";
import { isLocalChain, mockStablecoinAbi, testAccount, testAccountKey, topUpStablecoin, walletFor } from "./lib/local-chain";
import { detail, followFile, seconds, step, tailFile } from "./lib/output";
import { isRunning, isStopping, onShutdown, runToCompletion, startChild, stopAll, waitFor, type Supervised } from "./lib/processes";
import { loadDotEnv, ROOT, stackPaths, writeJson, type StackState } from "./lib/stack-files";

const BIN = path.join(ROOT, "node_modules", ".bin");
const CUSTOMER_ACCOUNTS = [2, 3, 4];
const CUSTOMER_STABLECOIN = "10000";

const HELP = `npm start — run the whole chainbill stack

  npm start [-- options]

Locally (no RPC_URL): starts a Hardhat node on 127.0.0.1:$HARDHAT_PORT, deploys the contracts, starts the
indexer and API (Ponder) on $PORT, creates a demo merchant through the API, registers it on-chain from test
account #1, funds its operator key, mints mock USDC to test accounts #2-#4, and prints URLs, keys, addresses
and accounts. Ctrl-C stops everything. Re-running resumes from .data/.

Against running chains (RPC_URL or CHAINBILL_CHAINS): no node is started; contracts are deployed only when
deployments/<chainId>.json is missing or stale (needs DEPLOYER_PRIVATE_KEY); no demo merchant unless asked.

Options:
  --demo-merchant       create/reuse the demo merchant on a testnet too (owner: DEPLOYER_PRIVATE_KEY's account)
  --no-demo-merchant    skip the demo merchant locally
  --reset               delete the data directory first (indexer data, API store, demo merchant, logs)
  -h, --help            this text

Environment (also read from .env when present):
  PORT                  port of the API (default 8787); HOST to bind (default 127.0.0.1)
  HARDHAT_PORT          port of the local Hardhat node (default 8545; a node already running there is reused)
  HARDHAT_BLOCK_INTERVAL_MS  the local node also mines a block every N ms (default: only on transactions)
  RPC_URL               one running chain instead of a local node (e.g. a Sepolia RPC URL)
  CHAINBILL_CHAINS      several running chains: 11155111=https://…,84532=https://…
  DEPLOYER_PRIVATE_KEY  deploys to RPC_URL/CHAINBILL_CHAINS chains that lack a deployment
  ADMIN_API_KEY         admin key of the API (≥ 24 characters); a random one is generated and printed when unset
  DATABASE_URL          Postgres for the indexer and the API store (default: PGlite under the data directory)
  DATABASE_SCHEMA       indexer schema (default: derived from the indexer code and the chains)
  DATA_DIR              data directory (default .data); DEPLOYMENTS_DIR (default deployments/)

Logs: <data directory>/logs/ponder.log (indexer and API), <data directory>/logs/hardhat-node.log.
`;

const nonEmpty = z.string().trim().min(1);
const EnvSchema = z.object({
  PORT: z.coerce.number().int().min(1).max(65_535).default(8787),
  HOST: nonEmpty.default("127.0.0.1"),
  HARDHAT_PORT: z.coerce.number().int().min(1).max(65_535).default(8545),
  RPC_URL: z.url().optional(),
  CHAINBILL_CHAINS: nonEmpty.optional(),
  DEPLOYER_PRIVATE_KEY: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x followed by 64 hex digits").optional(),
  ADMIN_API_KEY: z.string().min(24, "must be at least 24 characters").optional(),
  DATABASE_URL: z.url().optional(),
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,44}$/, "lowercase letters, digits and _ (max 45)").optional(),
  DATA_DIR: nonEmpty.optional(),
  DEPLOYMENTS_DIR: nonEmpty.optional(),
});

type StartConfig = z.infer<typeof EnvSchema> & {
  local: boolean;
  demoMerchant: boolean;
  reset: boolean;
  adminApiKey: string;
  adminApiKeyGenerated: boolean;
};

function readConfig(argv: string[], env: NodeJS.ProcessEnv): StartConfig {
  const known = new Set(["--demo-merchant", "--no-demo-merchant", "--reset"]);
  const unknown = argv.filter((arg) => !known.has(arg));
  if (unknown.length) throw new Error(`Unknown option ${unknown.join(" ")}; see npm start -- --help`);
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new Error(`Invalid environment:\n${parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`).join("\n")}`);
  }
  const local = !parsed.data.RPC_URL && !parsed.data.CHAINBILL_CHAINS;
  return {
    ...parsed.data,
    local,
    demoMerchant: argv.includes("--demo-merchant") || (local && !argv.includes("--no-demo-merchant")),
    reset: argv.includes("--reset"),
    adminApiKey: parsed.data.ADMIN_API_KEY ?? `admin_${randomBytes(24).toString("base64url")}`,
    adminApiKeyGenerated: !parsed.data.ADMIN_API_KEY,
  };
}

interface Chain {
  id: number;
  rpcUrl: string;
  local: boolean;
  client: PublicClient;
  deployment: Deployment;
}

/** An RPC URL without its path and query, where providers put API keys. */
function redacted(rpcUrl: string): string {
  const url = new URL(rpcUrl);
  return url.pathname.length > 1 || url.search ? `${url.protocol}//${url.host}/…` : `${url.protocol}//${url.host}`;
}

/** A path for people: relative to the repository when inside it. */
function shown(file: string): string {
  const relative = path.relative(ROOT, file);
  return relative.startsWith("..") ? file : relative;
}

function publicClient(rpcUrl: string): PublicClient {
  return createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) }) as PublicClient;
}

function watchForCrash(supervised: Supervised, logFile: string): void {
  void supervised.exited.then(async (code) => {
    if (isStopping()) return;
    process.stderr.write(`\n✗ ${supervised.name} exited unexpectedly (code ${code}). Last lines of ${logFile}:\n${tailFile(logFile)}\n`);
    await stopAll();
    process.exit(1);
  });
}

/** Step 1: the chains, with a local Hardhat node started when none is given. */
async function startChains(config: StartConfig, hardhatLog: string): Promise<{ id: number; rpcUrl: string; local: boolean; client: PublicClient }[]> {
  if (config.local) {
    const rpcUrl = `http://127.0.0.1:${config.HARDHAT_PORT}`;
    const client = publicClient(rpcUrl);
    if (await client.getChainId().then(() => true, () => false)) {
      step(`using the Hardhat node already running at ${rpcUrl} (it keeps running after Ctrl-C)`);
    } else {
      step(`starting a Hardhat node at ${rpcUrl}`);
      rmSync(hardhatLog, { force: true });
      const node = startChild("hardhat node", path.join(BIN, "hardhat"), ["node", "--hostname", "127.0.0.1", "--port", String(config.HARDHAT_PORT)], {
        cwd: ROOT,
        env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true" },
        logFile: hardhatLog,
      });
      watchForCrash(node, hardhatLog);
      await waitFor("the Hardhat node to answer", () => client.getChainId().then(() => true), 60_000);
    }
    return [{ id: await client.getChainId(), rpcUrl, local: true, client }];
  }
  const declared = config.RPC_URL ? [{ id: undefined, rpcUrl: config.RPC_URL }] : parseChainList(config.CHAINBILL_CHAINS!);
  return Promise.all(
    declared.map(async ({ id, rpcUrl }) => {
      const client = publicClient(rpcUrl);
      const actual = await client.getChainId().catch((error: unknown) => {
        throw new Error(`The RPC at ${redacted(rpcUrl)} does not answer: ${error instanceof Error ? error.message.split("\n")[0] : error}`);
      });
      if (id !== undefined && id !== actual) throw new Error(`CHAINBILL_CHAINS says ${redacted(rpcUrl)} is chain ${id}, but it is chain ${actual}`);
      step(`using chain ${actual} at ${redacted(rpcUrl)}`);
      return { id: actual, rpcUrl, local: isLocalChain(actual), client };
    }),
  );
}

async function isLive(deployment: Deployment, client: PublicClient): Promise<boolean> {
  for (const contract of Object.values(deployment.contracts)) {
    const code = await client.getCode({ address: contract.address }).catch(() => undefined);
    if (!code || code === "0x") return false;
  }
  return true;
}

/** Step 2: contracts on every chain, deployed (compile included) only when the recorded ones are not live. */
async function ensureDeployment(
  config: StartConfig,
  chain: Omit<Chain, "deployment">,
  deploymentsDir: string | undefined,
  deployLog: string,
): Promise<Deployment> {
  const recorded = readDeployment(chain.id, deploymentsDir);
  if (recorded && (await isLive(recorded, chain.client))) {
    step(`contracts on chain ${chain.id} are deployed (deployments/${chain.id}.json)`);
    return recorded;
  }
  if (!chain.local && !config.DEPLOYER_PRIVATE_KEY) {
    throw new Error(
      `Chain ${chain.id} has no live chainbill deployment in deployments/${chain.id}.json. ` +
        "Set DEPLOYER_PRIVATE_KEY (a funded testnet key) to deploy it now, or deploy with npx hardhat deploy.",
    );
  }
  step(`compiling and deploying the contracts to chain ${chain.id} (output: ${deployLog})`);
  await runToCompletion("deploy", path.join(BIN, "hardhat"), ["run", "scripts/deploy.ts", "--network", chain.local ? "localhost" : "custom"], {
    cwd: ROOT,
    env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true", LOCAL_RPC_URL: chain.rpcUrl, CUSTOM_RPC_URL: chain.rpcUrl },
    logFile: deployLog,
    // The compiler's warnings stay in the log; the deploy task's own progress lines are shown.
    onLine: (line) => {
      if (/^(Compiled \d+|Nothing to compile|chainbill deploy|  [✓…]|  deployer balance|  wrote )/.test(line)) detail(line.trim());
      else if (/^Error|HH\d+/.test(line)) detail(line);
    },
  });
  const deployment = readDeployment(chain.id, deploymentsDir);
  if (!deployment || !(await isLive(deployment, chain.client))) throw new Error(`the deploy wrote no live deployment for chain ${chain.id}`);
  return deployment;
}

async function portIsFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

/** Step 3: Ponder with the API, on `port`; resolves when `GET /openapi.json` answers 200. */
async function startIndexerAndApi(config: StartConfig, chains: Chain[], paths: ReturnType<typeof stackPaths>, apiUrl: string): Promise<void> {
  const schema = config.DATABASE_SCHEMA ?? (await indexerSchemaName(chains));
  const outcome = prepareIndexerData({ dataDir: paths.dataDir, pgliteDir: paths.pgliteDir, schema, postgres: Boolean(config.DATABASE_URL) });
  const database = config.DATABASE_URL ? "Postgres (DATABASE_URL)" : `PGlite in ${shown(paths.pgliteDir)}`;
  step(`starting the indexer and API (Ponder) on ${apiUrl}`);
  detail(`database: ${database}, schema ${schema} (${{ new: "new", resumed: "resuming the previous run", reset: "new chain or indexer code: previous indexer data cleared" }[outcome]})`);
  rmSync(paths.ponderLog, { force: true });
  const follow = followFile(paths.ponderLog);
  const ponder = startChild(
    "ponder",
    path.join(BIN, "ponder"),
    ["start", "--root", "indexer", "--schema", schema, "--port", String(config.PORT), "--hostname", config.HOST],
    {
      cwd: ROOT,
      logFile: paths.ponderLog,
      stopSignal: "SIGINT",
      env: {
        ...process.env,
        PONDER_TELEMETRY_DISABLED: "true",
        CHAINBILL_CHAINS: chains.map((chain) => `${chain.id}=${chain.rpcUrl}`).join(","),
        ADMIN_API_KEY: config.adminApiKey,
        DATA_DIR: paths.dataDir,
        PGLITE_DIR: paths.pgliteDir,
        API_STORE_DIR: paths.apiStoreDir,
      },
    },
  );
  let failed: string | undefined;
  void ponder.exited.then((code) => {
    failed ??= `Ponder exited (code ${code}) before the API answered. Last lines of ${paths.ponderLog}:\n${tailFile(paths.ponderLog)}`;
  });
  const deadline = Date.now() + 180_000;
  let lastNote = Date.now();
  let failingSince: number | undefined;
  for (;;) {
    if (failed) throw new Error(failed);
    for (const line of follow()) {
      if (/Schema is locked/.test(line)) detail("the previous run did not stop cleanly: Ponder waits up to 25 s for its lock on the schema to expire");
      if (/crash recovery/i.test(line)) detail("Ponder resumes the previous run's data, re-indexing from its last finalized block");
    }
    const probe = await probeApi(apiUrl);
    if (probe.ok) break;
    // The server answers, but not with the API document: a broken route definition, not a slow start.
    if (probe.status !== undefined) {
      failingSince ??= Date.now();
      if (Date.now() - failingSince > 10_000) {
        throw new Error(`The server answers GET /openapi.json with ${probe.status}: ${probe.body}\nSee ${paths.ponderLog}.`);
      }
    }
    if (Date.now() > deadline) throw new Error(`The API did not answer within 180 s; see ${paths.ponderLog}:\n${tailFile(paths.ponderLog)}`);
    if (Date.now() - lastNote > 15_000) {
      lastNote = Date.now();
      detail(`still starting… (log: ${paths.ponderLog})`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  watchForCrash(ponder, paths.ponderLog);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  loadDotEnv();
  const config = readConfig(argv, process.env);
  const paths = stackPaths(config.DATA_DIR);
  const deploymentsDir = config.DEPLOYMENTS_DIR ? path.resolve(ROOT, config.DEPLOYMENTS_DIR) : undefined;
  const apiUrl = `http://${config.HOST === "0.0.0.0" || config.HOST === "::" ? "127.0.0.1" : config.HOST}:${config.PORT}`;

  onShutdown(async () => {
    await stopAll((line) => detail(line));
    rmSync(paths.stackFile, { force: true });
  });
  if (config.reset) {
    step(`--reset: deleting ${paths.dataDir}`);
    rmSync(paths.dataDir, { recursive: true, force: true });
  }

  if (!(await portIsFree(config.HOST, config.PORT))) {
    throw new Error(`Port ${config.PORT} on ${config.HOST} is in use (another npm start?). Stop it, or choose another with PORT=…`);
  }
  const started = await startChains(config, paths.hardhatLog);
  const remoteOwner = config.DEPLOYER_PRIVATE_KEY ? privateKeyToAccount(config.DEPLOYER_PRIVATE_KEY as `0x${string}`) : undefined;
  if (config.demoMerchant && started.some((chain) => !chain.local) && !remoteOwner) {
    throw new Error("--demo-merchant on a testnet needs DEPLOYER_PRIVATE_KEY: its account owns the demo merchant and funds its operator");
  }
  const chains: Chain[] = [];
  for (const chain of started) chains.push({ ...chain, deployment: await ensureDeployment(config, chain, deploymentsDir, paths.deployLog) });

  await startIndexerAndApi(config, chains, paths, apiUrl);
  const api = createApiClient(apiUrl);

  let demo: Awaited<ReturnType<typeof ensureDemoMerchant>> | undefined;
  if (config.demoMerchant) {
    // Whether the merchant is registered is read from indexed data: it must be current (see waitUntilIndexed).
    step(`waiting for the indexer to index the next block of chain ${chains.map((chain) => chain.id).join(", ")}`);
    await waitUntilIndexed(apiUrl, chains);
    step("setting up the demo merchant through the API");
    const demoChains: DemoChain[] = chains.map((chain) => ({
      id: chain.id,
      client: chain.client,
      owner: walletFor(chain.local ? testAccount(1) : remoteOwner!, chain.rpcUrl),
      operatorFundingWei: chain.local ? parseEther("10") : parseEther("0.005"),
    }));
    demo = await ensureDemoMerchant({ api, adminKey: config.adminApiKey, file: paths.demoMerchantFile, chains: demoChains, log: detail });
  }

  const stablecoins = chains.filter((chain) => chain.local && chain.deployment.contracts.MockStablecoin);
  for (const chain of stablecoins) {
    const token = chain.deployment.contracts.MockStablecoin!.address;
    step(`minting mock USDC on chain ${chain.id} to customer accounts #${CUSTOMER_ACCOUNTS.join(", #")}`);
    const minter = walletFor(testAccount(0), chain.rpcUrl);
    const decimals = await chain.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "decimals" });
    for (const index of CUSTOMER_ACCOUNTS) {
      await topUpStablecoin(chain.client, minter, token, testAccount(index).address, parseUnits(CUSTOMER_STABLECOIN, decimals));
    }
  }

  const state: StackState = {
    pid: process.pid,
    apiUrl,
    chains: chains.map((chain) => ({ id: chain.id, rpcUrl: chain.rpcUrl, local: chain.local })),
    startedAt: new Date().toISOString(),
  };
  writeJson(paths.stackFile, state, 0o600);
  process.stdout.write(await summary(config, chains, apiUrl, paths, demo));
}

async function summary(
  config: StartConfig,
  chains: Chain[],
  apiUrl: string,
  paths: ReturnType<typeof stackPaths>,
  demo: Awaited<ReturnType<typeof ensureDemoMerchant>> | undefined,
): Promise<string> {
  const lines = [
    "",
    `chainbill is running (ready in ${seconds()})`,
    "",
    `  API            ${apiUrl}/v1`,
    `  API docs       ${apiUrl}/docs`,
    `  OpenAPI        ${apiUrl}/openapi.json`,
    `  admin key      ${config.adminApiKey}${config.adminApiKeyGenerated ? "   (generated for this run; set ADMIN_API_KEY to keep one)" : ""}`,
  ];
  if (demo) {
    lines.push(
      `  demo merchant  ${demo.merchant.id} "${demo.merchant.name}", operator ${demo.merchant.operatorAddress}`,
      `                 on-chain id ${demo.merchant.chains.map((chain) => `${chain.onchainMerchantId} on chain ${chain.chainId}`).join(", ")}`,
      `  merchant key   ${demo.stored.apiKey}   (saved in ${shown(paths.demoMerchantFile)})`,
      "",
      `  try it:  curl -s -H "Authorization: Bearer ${demo.stored.apiKey}" ${apiUrl}/v1/merchants/me`,
    );
  }
  for (const chain of chains) {
    lines.push("", `Chain ${chain.id} at ${redacted(chain.rpcUrl)}`);
    for (const [name, contract] of Object.entries(chain.deployment.contracts)) {
      lines.push(`  ${name.padEnd(20)} ${contract.address}`);
    }
  }
  const local = chains.find((chain) => chain.local);
  if (local) {
    const token = local.deployment.contracts.MockStablecoin?.address;
    const roles = ["deployer", demo ? "demo merchant owner and payout" : "", "customer", "customer", "customer"];
    const decimals = token ? await local.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "decimals" }) : 6;
    lines.push("", `Funded test accounts on chain ${local.id} (Hardhat's public keys: never use them on a real network)`);
    for (let index = 0; index < roles.length; index += 1) {
      const account = testAccount(index);
      const eth = formatEther(await local.client.getBalance({ address: account.address }));
      const usdc = token
        ? formatUnits(await local.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [account.address] }), decimals)
        : "0";
      // Truncated as text to two decimals for the table: money never goes through a float.
      const [whole, fraction = ""] = eth.split(".");
      const ethShown = `${whole}.${fraction.padEnd(2, "0").slice(0, 2)}`;
      lines.push(`  #${index} ${account.address}  ${ethShown.padStart(9)} ETH  ${usdc.padStart(6)} USDC  ${roles[index]}`.trimEnd());
      lines.push(`     key ${testAccountKey(index)}`);
    }
  }
  lines.push(
    "",
    "Logs",
    `  indexer + API  ${paths.ponderLog}`,
    ...(isRunning("hardhat node") ? [`  hardhat node   ${paths.hardhatLog}`] : []),
    ...(existsSync(paths.deployLog) ? [`  deploy         ${paths.deployLog}`] : []),
    "",
    ...(local && demo ? ["Next: npm run demo (in another terminal) walks through invoices, refunds, subscriptions and statements."] : []),
    "Press Ctrl-C to stop.",
    "",
  );
  return lines.join("\n");
}

main().catch(async (error: unknown) => {
  process.stderr.write(`\n✗ npm start failed: ${error instanceof Error ? error.message : String(error)}\n`);
  await stopAll();
  process.exit(1);
});
