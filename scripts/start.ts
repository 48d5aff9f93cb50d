/**
 * `npm start`: the whole chainbill stack in one command.
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
import { existsSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { createPublicClient, formatEther, formatUnits, http, parseAbi, parseEther, parseUnits, type PublicClient } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { z } from "zod";
import { readDeployment, type Deployment } from "../contracts/addresses";
import { generateAdminKey, localSecret } from "../api/config";
import { parseChainList } from "../contracts/chains";
import { startLocalRegtest, type LocalRegtest } from "./lib/bitcoin-regtest/local";
import { createApiClient, probeApi } from "./lib/api-client";
import { ensureDemoMerchant, type DemoChain } from "./lib/demo-merchant";
import { indexerSchemaName, prepareIndexerData, waitUntilIndexed } from "./lib/indexer";
import { isLocalChain, mockStablecoinAbi, testAccount, testAccountKey, topUpStablecoin, walletFor } from "./lib/local-chain";
import { detail, followFile, seconds, step, tailFile } from "./lib/output";
import { freePort, isRunning, isStopping, onShutdown, runToCompletion, startChild, stopAll, waitFor, type Supervised } from "./lib/processes";
import { loadDotEnv, ROOT, stackPaths, writeJson, type StackState } from "./lib/stack-files";

const BIN = path.join(ROOT, "node_modules", ".bin");
const CUSTOMER_ACCOUNTS = [2, 3, 4];
const CUSTOMER_STABLECOIN = "10000";

const HELP = `npm start — run the whole chainbill stack

  npm start [-- options]

Locally (no RPC_URL): starts a Hardhat node on 127.0.0.1:$HARDHAT_PORT, deploys the contracts, starts the
indexer and API on $PORT, creates a demo merchant through the API, registers it on-chain from test account #1,
funds its operator key, mints mock USDC to test accounts #2-#4, and prints URLs, keys, addresses and accounts.
Ctrl-C stops everything. Re-running resumes from the data directory.

Against running chains (RPC_URL or CHAINBILL_CHAINS): no node is started; contracts are deployed only when
deployments/<chainId>.json is missing or stale (needs DEPLOYER_PRIVATE_KEY); no demo merchant unless asked;
ADMIN_API_KEY and OPERATOR_KEY_SECRET must be set (or ALLOW_GENERATED_SECRETS=true).

Options:
  --demo-merchant       create/reuse the demo merchant on a testnet too (owner: DEPLOYER_PRIVATE_KEY's account)
  --no-demo-merchant    skip the demo merchant locally
  --reset               delete the data directory first (indexer data, API store, secrets, demo merchant, logs)
  -h, --help            this text

Environment (also read from .env when present; empty values mean "not set"):
 chains and contracts
  HARDHAT_PORT          port of the local Hardhat node (default 8545; a node already running there is reused)
  HARDHAT_BLOCK_INTERVAL_MS  the local node also mines a block every N ms (default: only on transactions)
  RPC_URL               one running chain instead of a local node (e.g. a Sepolia RPC URL)
  CHAINBILL_CHAINS      several running chains: 11155111=https://…,84532=https://…
  CHAIN_<id>_WS_URL     websocket of chain <id>, to follow new blocks without polling (never for local nodes)
  CHAIN_<id>_INDEXER_RPC_URL  RPC URL the indexer uses for chain <id> (default: the chain's URL)
  DEPLOYER_PRIVATE_KEY  deploys to RPC_URL/CHAINBILL_CHAINS chains that lack a deployment
  DEPLOY_OWNER, DEPLOY_FEE_RECIPIENT, DEPLOY_FEE_BPS, DEPLOY_DISPUTE_PERIOD
                        deployment parameters (default: deployer, owner, 0, 604800 s)
  DEPLOYMENTS_DIR       where deployments/<chainId>.json live (default deployments/)
 the API
  PORT, HOST            where the API listens (default 8787 on 127.0.0.1; HOST=0.0.0.0 for every interface)
  ADMIN_API_KEY         admin key (≥ 24 characters); locally generated once into <data>/admin-api-key
  OPERATOR_KEY_SECRET   64 hex characters encrypting the merchants' operator keys; locally generated once into
                        <data>/operator-key-secret. Keep it: without it the stored operator keys cannot be used
  ALLOW_GENERATED_SECRETS=true  generate the two secrets above against a non-local chain too (test deployments)
  CORS_ORIGINS          browser origins allowed to call the API (comma-separated; default: none)
  TRUST_PROXY=true      take the client address from X-Forwarded-For (behind a proxy that sets it)
  RATE_LIMIT_PER_MINUTE requests per merchant per minute (default 600)
  RATE_LIMIT_PER_CLIENT_PER_MINUTE  requests per client address per minute, before authentication (default 3000)
  AUTH_FAILURES_PER_CLIENT_PER_MINUTE  unknown keys per client address per minute before it is refused (default 60)
  BODY_LIMIT_BYTES      largest request body (default 65536)
  INVOICE_DEFAULT_EXPIRY_SECONDS, INVOICE_DEFAULT_HOLD_SECONDS  invoice defaults (3600, 0)
  LINK_INVOICES_PER_CLIENT_PER_MINUTE, LINK_INVOICES_PER_LINK_PER_MINUTE  invoices the public payment-link
                        endpoints create per client address (10) and per link (30) per minute
  CHAIN_<id>_PRICE_FEEDS  Chainlink feeds for fiat prices on chain <id>: ETH/USD=0x…@3600,USDC/USD=0x…@86400
                        (pair=address@heartbeat seconds; local chains get mock feeds; docs/PRICES.md)
  PLAN_REPRICE_INTERVAL_MS  how often plans priced in fiat are checked against the rate and repriced on-chain
                        when off by more than 0.5% (default 60000)
  LOG_LEVEL             fatal, error, warn, info (default), debug, trace, silent
 webhooks (docs/WEBHOOKS.md)
  WEBHOOK_ALLOW_PRIVATE_URLS=true  endpoints may be private/loopback or plain-http URLs (npm start sets it locally)
  WEBHOOK_RETRY_SCHEDULE  seconds before each retry, comma-separated (default 5,300,1800,7200,18000,36000,50400,
                        72000,72000: ten attempts over about three days, then failed)
  WEBHOOK_DISABLE_AFTER_SECONDS  an endpoint failing continuously this long is disabled (default 432000, 5 days)
  WEBHOOK_TIMEOUT_MS    how long an endpoint has to answer (default 10000)
  WEBHOOK_WORKER=false  deliver only from separate \`npm run webhooks:worker\` processes, not from the API process
  WEBHOOK_BATCH_SIZE    deliveries a worker claims at once (default 100)
  WEBHOOK_REORG_WINDOW_BLOCKS  recent blocks re-checked for reorgs (default 64)
  CHAINBILL_API_URL, CHAINBILL_API_KEY  the API and merchant key \`npm run listen\` uses (default: this local stack
                        and its demo merchant)
 bitcoin (docs/BITCOIN.md; locally npm start runs a labelled in-process regtest chain)
  BITCOIN_NETWORK       mainnet, testnet, signet or regtest (default mainnet; regtest locally)
  BITCOIN_ESPLORA_URL   an Esplora REST API (electrs, mempool.space, self-hosted or public), e.g. https://mempool.space/api
  BITCOIN_RPC_URL, BITCOIN_RPC_USER, BITCOIN_RPC_PASSWORD  or a Bitcoin Core node's JSON-RPC instead
  BITCOIN_POLL_MS       how often the watcher asks the source for new blocks and mempool transactions (default 2000)
  BITCOIN_ADDRESS_REUSE_AFTER_SECONDS  an expired invoice's address, if nothing ever arrived on it, is given to a
                        new invoice this long after expiry (default 86400)
  BITCOIN_REGTEST=false no local regtest chain (locally, without a source above, npm start simulates one in its own
                        process, kept in <data>/bitcoin-regtest: not a Bitcoin node, not a real network)
  BITCOIN_REGTEST_BLOCK_SECONDS  the local regtest chain mines a block this often while transactions wait (default 10)
 the indexer
  DATABASE_URL          Postgres for the indexer and the API store (default: PGlite under the data directory)
  DATABASE_SCHEMA       indexer schema (default: derived from the indexer code and the chains)
  INDEX_STALL_SECONDS   behind the head with no new block indexed this long: the index stalled (default 15)
  INDEX_RESTART_SECONDS stalled this long: the indexer exits (code 75) and is started again (default 60; 0 never)
  INDEX_MAX_LAG_BLOCKS  behind by more blocks than this: /ready answers 503 (default 5)
 the keeper (npm run keeper; npm start runs it)
  KEEPER_PRIVATE_KEY    the keeper's key; locally generated once into <data>/keeper-key and funded, required
                        (and funded by you) against other chains
  KEEPER_INTERVAL_SECONDS, KEEPER_MAX_GAS_PER_RUN, KEEPER_API_URL  seconds between runs (15), gas per run (5000000),
                        the API it asks (default: this stack's)
  INDEXER_QUERY_API=true  also serve Ponder's /graphql and /sql on its internal loopback port
  DATA_DIR              data directory (default .data)
  CHAINBILL_ENV_FILE    the .env file to read (default .env at the repository root)

Logs: <data directory>/logs/ponder.log (indexer and API, JSON lines), keeper.log, hardhat-node.log, deploy.log.
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
  OPERATOR_KEY_SECRET: z.string().regex(/^[0-9a-fA-F]{64}$/, "must be 64 hex characters").optional(),
  ALLOW_GENERATED_SECRETS: z.enum(["true", "false", "1", "0"]).optional(),
  DATABASE_URL: z.url().optional(),
  DATABASE_SCHEMA: z.string().regex(/^[a-z_][a-z0-9_]{0,44}$/, "lowercase letters, digits and _ (max 45)").optional(),
  DATA_DIR: nonEmpty.optional(),
  DEPLOYMENTS_DIR: nonEmpty.optional(),
});

type StartConfig = z.infer<typeof EnvSchema> & {
  local: boolean;
  demoMerchant: boolean;
  reset: boolean;
  allowGeneratedSecrets: boolean;
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
    allowGeneratedSecrets: parsed.data.ALLOW_GENERATED_SECRETS === "true" || parsed.data.ALLOW_GENERATED_SECRETS === "1",
  };
}

/**
 * The admin key: configured, or generated once into the data directory (local chains, or when allowed). It is
 * passed to the API process in its environment and shown in this terminal only: never written to a log.
 */
function adminApiKey(config: StartConfig, paths: ReturnType<typeof stackPaths>, remote: number[]): { key: string; file?: string } {
  if (remote.length > 0 && !config.allowGeneratedSecrets) {
    const missing = [!config.ADMIN_API_KEY && "ADMIN_API_KEY", !config.OPERATOR_KEY_SECRET && "OPERATOR_KEY_SECRET"].filter(Boolean);
    if (missing.length > 0) {
      throw new Error(
        `${missing.join(" and ")} must be set for chain ${remote.join(", ")} (not a local chain): put them in .env ` +
          "(OPERATOR_KEY_SECRET: `openssl rand -hex 32`; keep a backup, the merchants' operator keys are encrypted with it), " +
          "or set ALLOW_GENERATED_SECRETS=true to generate them into the data directory for a throwaway test deployment.",
      );
    }
  }
  if (config.ADMIN_API_KEY) return { key: config.ADMIN_API_KEY };
  return { key: localSecret(paths.dataDir, "admin-api-key", generateAdminKey), file: path.join(paths.dataDir, "admin-api-key") };
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
  for (const contract of [...Object.values(deployment.contracts), ...Object.values(deployment.priceFeeds ?? {})]) {
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
  // A local deployment from before price feeds existed gets them (the deploy keeps every live contract).
  if (recorded && (!chain.local || recorded.priceFeeds) && (await isLive(recorded, chain.client))) {
    step(`contracts on chain ${chain.id} are deployed (deployments/${chain.id}.json)`);
    return recorded;
  }
  if (!chain.local && !config.DEPLOYER_PRIVATE_KEY) {
    throw new Error(
      `Chain ${chain.id} has no live chainbill deployment in deployments/${chain.id}.json. ` +
        "Set DEPLOYER_PRIVATE_KEY (a funded testnet key) to deploy it now, or deploy with npx hardhat deploy.",
    );
  }
  if (!existsSync(path.join(ROOT, "artifacts", "contracts", "BillingEscrow.sol", "BillingEscrow.json"))) {
    step("compiling the contracts (the first time only: about 30 s)");
    await runToCompletion("compile", path.join(BIN, "hardhat"), ["compile"], {
      cwd: ROOT,
      env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true" },
      logFile: deployLog,
      onLine: (line) => {
        if (/^(Compiled \d+|Generating typings|Successfully generated|Nothing to compile)/.test(line)) detail(line.trim());
      },
    });
  }
  step(`deploying the contracts to chain ${chain.id} (output: ${shown(deployLog)})`);
  const recent: string[] = [];
  try {
    await runToCompletion("deploy", path.join(BIN, "hardhat"), ["run", "scripts/deploy.ts", "--network", chain.local ? "localhost" : "custom"], {
      cwd: ROOT,
      env: { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true", LOCAL_RPC_URL: chain.rpcUrl, CUSTOM_RPC_URL: chain.rpcUrl },
      logFile: deployLog,
      // The deploy task's own progress lines are shown; everything is in the log.
      onLine: (line) => {
        recent.push(line);
        if (recent.length > 40) recent.shift();
        if (/^(Compiled \d+|Nothing to compile|chainbill deploy|  [✓…]|  deployer balance|  wrote |  needs )/.test(line)) detail(line.trim());
      },
    });
  } catch (error) {
    // Show why in the terminal (an unfunded deployer, a gas estimate that failed), not only in the log.
    const first = recent.findIndex((line) => /error|insufficient|needs|revert/i.test(line));
    const reason = first >= 0 ? recent.slice(first, first + 8).join("\n") : recent.slice(-8).join("\n");
    throw new Error(`Deploying to chain ${chain.id} failed:\n${reason}\n(full output: ${shown(deployLog)})`, { cause: error });
  }
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

/** A configuration error the API process stopped on (its message says what to do), from Ponder's JSON log. */
function configErrorIn(logFile: string): string | undefined {
  const match = /(OPERATOR_KEY_SECRET does not open[^"\\]*|Invalid API configuration[^"]*|(?:ADMIN_API_KEY|OPERATOR_KEY_SECRET)[^"\\]* not set, and chain[^"\\]*)/.exec(tailFile(logFile, 200));
  return match?.[1];
}

/**
 * Step 3: Ponder (the indexer) with the API in its process. The API serves on HOST:PORT; Ponder's own server
 * (its /metrics, /status and optional query APIs) listens on a free loopback port. Resolves when
 * `GET /openapi.json` answers 200.
 */
async function startIndexerAndApi(
  config: StartConfig,
  chains: Chain[],
  paths: ReturnType<typeof stackPaths>,
  apiUrl: string,
  adminKey: string,
  bitcoin: LocalRegtest | undefined,
): Promise<void> {
  const schema = config.DATABASE_SCHEMA ?? (await indexerSchemaName(chains));
  const outcome = prepareIndexerData({ dataDir: paths.dataDir, pgliteDir: paths.pgliteDir, schema, postgres: Boolean(config.DATABASE_URL) });
  const database = config.DATABASE_URL ? "Postgres (DATABASE_URL)" : `PGlite in ${shown(paths.pgliteDir)}`;
  step(`starting the indexer and API (Ponder) on ${apiUrl}`);
  detail(`database: ${database}, schema ${schema} (${{ new: "new", resumed: "resuming the previous run", reset: "new chain or indexer code: previous indexer data cleared" }[outcome]})`);
  rmSync(paths.ponderLog, { force: true });
  const follow = followFile(paths.ponderLog);
  // Ponder reads PORT itself (before --port): the API's port goes to it as API_PORT instead.
  const { PORT: _port, HOST: _host, ...inherited } = process.env;
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    PONDER_TELEMETRY_DISABLED: "true",
    DATABASE_SCHEMA: schema,
    API_PORT: String(config.PORT),
    API_HOST: config.HOST,
    CHAINBILL_CHAINS: chains.map((chain) => `${chain.id}=${chain.rpcUrl}`).join(","),
    ADMIN_API_KEY: adminKey,
    DATA_DIR: paths.dataDir,
    PGLITE_DIR: paths.pgliteDir,
    API_STORE_DIR: paths.apiStoreDir,
    // A local stack's webhook receivers run on this machine (npm run listen, the demo): allow loopback URLs.
    ...(config.local && inherited.WEBHOOK_ALLOW_PRIVATE_URLS === undefined ? { WEBHOOK_ALLOW_PRIVATE_URLS: "true" } : {}),
    ...(bitcoin ? { BITCOIN_NETWORK: "regtest", BITCOIN_ESPLORA_URL: bitcoin.url, BITCOIN_POLL_MS: "500" } : {}),
  };
  const launch = async () =>
    startChild("ponder", path.join(BIN, "ponder"), ["start", "--root", "indexer", "--port", String(await freePort()), "--hostname", "127.0.0.1", "--log-format", "json"], {
      cwd: ROOT,
      logFile: paths.ponderLog,
      stopSignal: "SIGINT",
      env,
    });
  const ponder = await launch();
  let failed: string | undefined;
  void ponder.exited.then((code) => {
    const reason = configErrorIn(paths.ponderLog);
    failed ??= reason
      ? `The API stopped on its configuration: ${reason}`
      : `Ponder exited (code ${code}) before the API answered. Last lines of ${paths.ponderLog}:\n${tailFile(paths.ponderLog)}`;
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
  superviseIndexer(ponder, launch, paths.ponderLog);
}

/** Restarts within this window are counted; more than `MAX_RESTARTS` of them and the stack stops. */
const RESTART_WINDOW_MS = 10 * 60_000;
const MAX_RESTARTS = 3;

/**
 * Keeps the indexer running: an exit with code 75 (Ponder's "retryable": a stalled index the watchdog gave up
 * on, a lost database connection) starts it again, at most MAX_RESTARTS times in ten minutes; any other exit
 * stops the stack with the end of its log.
 */
function superviseIndexer(first: Supervised, launch: () => Promise<Supervised>, logFile: string): void {
  const restarts: number[] = [];
  const watch = (current: Supervised) => {
    void current.exited.then(async (code) => {
      if (isStopping()) return;
      const now = Date.now();
      while (restarts.length > 0 && now - restarts[0] > RESTART_WINDOW_MS) restarts.shift();
      if (code !== 75 || restarts.length >= MAX_RESTARTS) {
        watchForCrash(current, logFile);
        return;
      }
      restarts.push(now);
      const reason = /IndexStalledError[^"]*"?,?"?(?:message)?"?:?"?([^"]*)/.exec(tailFile(logFile, 50))?.[1];
      step(`the indexer stopped (exit 75${reason ? `: ${reason}` : ""}); restarting it (${restarts.length} of ${MAX_RESTARTS} in 10 minutes)`);
      watch(await launch());
    });
  };
  watch(first);
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

  const admin = adminApiKey(config, paths, chains.filter((chain) => !chain.local).map((chain) => chain.id));
  const bitcoin = await startLocalBitcoin(config, paths);
  await startIndexerAndApi(config, chains, paths, apiUrl, admin.key, bitcoin);
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
    demo = await ensureDemoMerchant({ api, adminKey: admin.key, file: paths.demoMerchantFile, chains: demoChains, log: detail });
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
    ...(bitcoin ? { bitcoin: { network: "regtest", esploraUrl: bitcoin.url, simulated: true } } : {}),
    startedAt: new Date().toISOString(),
  };
  writeJson(paths.stackFile, state, 0o600);
  const keeper = await startKeeper(config, chains, paths, admin.key);
  for (const chain of chains) if (chain.local) keepLocalFeedsFresh(chain);
  process.stdout.write(await summary(admin, chains, apiUrl, paths, demo, keeper, bitcoin));
}

const MOCK_FEED_ABI = parseAbi([
  "function latestRoundData() view returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)",
  "function updateAnswer(int256 answer)",
]);
/** The Hardhat account that republishes the local mock feeds (no other process sends from it). */
const FEED_PUBLISHER_ACCOUNT = 18;

/**
 * A local chain's mock Chainlink feeds publish nothing by themselves: without a new round they turn stale after
 * their heartbeat (a day), sooner when the chain's clock jumps (the demo moves it a month). Once a minute, any
 * feed older than half its heartbeat by the chain's clock gets its answer published again, as a real feed's
 * heartbeat round would, so prices in fiat keep working for as long as `npm start` runs.
 */
function keepLocalFeedsFresh(chain: Chain): void {
  const feeds = Object.entries(chain.deployment.priceFeeds ?? {});
  if (feeds.length === 0) return;
  const wallet = walletFor(testAccount(FEED_PUBLISHER_ACCOUNT), chain.rpcUrl);
  let running = false;
  const refresh = async () => {
    if (running) return;
    running = true;
    try {
      const now = (await chain.client.getBlock()).timestamp;
      for (const [pair, feed] of feeds) {
        const [, answer, , updatedAt] = await chain.client.readContract({ address: feed.address, abi: MOCK_FEED_ABI, functionName: "latestRoundData" });
        if (now - updatedAt < BigInt(Math.floor(feed.heartbeatSeconds / 2))) continue;
        const hash = await wallet.writeContract({ address: feed.address, abi: MOCK_FEED_ABI, functionName: "updateAnswer", args: [answer], chain: null });
        await chain.client.waitForTransactionReceipt({ hash });
        detail(`local price feed ${pair} republished (its last round was ${now - updatedAt} s old by the chain's clock)`);
      }
    } catch (error) {
      detail(`local price feeds not refreshed this time: ${error instanceof Error ? error.message.split("\n")[0] : String(error)}`);
    } finally {
      running = false;
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), 60_000);
  timer.unref();
  onShutdown(async () => clearInterval(timer));
}

/**
 * A local stack without a configured Bitcoin source gets a simulated regtest chain (scripts/lib/bitcoin-regtest),
 * so BTC invoices work out of the box; it says plainly that it is one.
 */
async function startLocalBitcoin(config: StartConfig, paths: ReturnType<typeof stackPaths>): Promise<LocalRegtest | undefined> {
  const env = process.env;
  if (!config.local || env.BITCOIN_ESPLORA_URL || env.BITCOIN_RPC_URL || env.BITCOIN_REGTEST === "false") return undefined;
  const blockSeconds = Number(env.BITCOIN_REGTEST_BLOCK_SECONDS ?? 10);
  if (!Number.isFinite(blockSeconds) || blockSeconds <= 0) throw new Error("BITCOIN_REGTEST_BLOCK_SECONDS must be a positive number of seconds");
  step("starting a LOCAL SIMULATED Bitcoin regtest chain (in this process; not a Bitcoin node, not a real network)");
  const regtest = await startLocalRegtest({ directory: path.join(paths.dataDir, "bitcoin-regtest"), port: await freePort(), blockSeconds });
  detail(`Esplora API ${regtest.url} at height ${regtest.chain.height}; pay: POST /regtest/pay {"address","amountSats"}, mine: POST /regtest/mine`);
  onShutdown(() => regtest.stop());
  return regtest;
}

/** What the keeper costs per operation: measured by `npm run bench:gas` (bench/gas.md). */
const KEEPER_GAS = { "deposit sweep (ERC-20, first)": 127_839n, release: 56_321n, "automatic refund": 49_775n, "renewal (per subscription, batch of 20)": 35_947n };

interface KeeperInfo {
  address: string;
  balances: { chainId: number; wei: bigint; gasPrice: bigint }[];
}

/**
 * Step 6: the keeper (scripts/keeper.ts) as a child process. Locally its key is generated once into the data
 * directory and funded from test account #0; against other chains it runs only with a funded KEEPER_PRIVATE_KEY.
 */
async function startKeeper(config: StartConfig, chains: Chain[], paths: ReturnType<typeof stackPaths>, adminKey: string): Promise<KeeperInfo | undefined> {
  const remote = chains.filter((chain) => !chain.local);
  if (remote.length > 0 && !process.env.KEEPER_PRIVATE_KEY) {
    step("no keeper: set KEEPER_PRIVATE_KEY (a funded key) to release, refund, renew and pay out by rule on these chains");
    return undefined;
  }
  const key = (process.env.KEEPER_PRIVATE_KEY ?? localSecret(paths.dataDir, "keeper-key", generatePrivateKey)) as `0x${string}`;
  const address = privateKeyToAccount(key).address;
  for (const chain of chains.filter((candidate) => candidate.local)) {
    const balance = await chain.client.getBalance({ address });
    if (balance < parseEther("10")) {
      const hash = await walletFor(testAccount(0), chain.rpcUrl).sendTransaction({ to: address, value: parseEther("10") - balance, chain: null });
      await chain.client.waitForTransactionReceipt({ hash });
    }
  }
  step(`starting the keeper ${address} (log: ${shown(paths.keeperLog)})`);
  startChild("keeper", process.execPath, ["-r", "ts-node/register/transpile-only", path.join(ROOT, "scripts", "keeper.ts")], {
    cwd: ROOT,
    logFile: paths.keeperLog,
    env: { ...process.env, DATA_DIR: paths.dataDir, ADMIN_API_KEY: adminKey, KEEPER_PRIVATE_KEY: key },
  });
  const balances = await Promise.all(chains.map(async (chain) => ({ chainId: chain.id, wei: await chain.client.getBalance({ address }), gasPrice: await chain.client.getGasPrice() })));
  return { address, balances };
}

async function summary(
  admin: { key: string; file?: string },
  chains: Chain[],
  apiUrl: string,
  paths: ReturnType<typeof stackPaths>,
  demo: Awaited<ReturnType<typeof ensureDemoMerchant>> | undefined,
  keeper: KeeperInfo | undefined,
  bitcoin: LocalRegtest | undefined,
): Promise<string> {
  const lines = [
    "",
    `chainbill is running (ready in ${seconds()})`,
    "",
    `  API            ${apiUrl}/v1`,
    `  API docs       ${apiUrl}/docs`,
    `  OpenAPI        ${apiUrl}/openapi.json`,
    `  admin key      ${admin.key}${admin.file ? `   (kept in ${shown(admin.file)}; set ADMIN_API_KEY to choose one)` : ""}`,
  ];
  if (keeper) {
    lines.push(`  keeper         ${keeper.address}: releases, refunds, renews and pays out by rule every 15 s`);
    for (const balance of keeper.balances) {
      const costs = Object.entries(KEEPER_GAS)
        .map(([operation, gas]) => `${operation} ${gas.toLocaleString("en-US")} gas ≈ ${formatEther(gas * balance.gasPrice)} ETH`)
        .join("; ");
      lines.push(`                 chain ${balance.chainId}: ${formatEther(balance.wei)} ETH for gas; ${costs}`);
    }
  }
  if (demo) {
    lines.push(
      `  demo merchant  ${demo.merchant.id} "${demo.merchant.name}", operator ${demo.merchant.operatorAddress}`,
      `                 on-chain id ${demo.merchant.chains.map((chain) => `${chain.onchainMerchantId} on chain ${chain.chainId}`).join(", ")}`,
      `  merchant key   ${demo.stored.apiKey}   (saved in ${shown(paths.demoMerchantFile)})`,
      "",
      `  try it:  curl -s -H "Authorization: Bearer ${demo.stored.apiKey}" ${apiUrl}/v1/merchants/me`,
      `  checkout every invoice's page for the customer: ${apiUrl}/pay/<invoice id> (its checkout.url); payment links: ${apiUrl}/l/<link id>`,
    );
  }
  for (const chain of chains) {
    lines.push("", `Chain ${chain.id} at ${redacted(chain.rpcUrl)}`);
    for (const [name, contract] of Object.entries(chain.deployment.contracts)) {
      lines.push(`  ${name.padEnd(20)} ${contract.address}`);
    }
  }
  if (bitcoin) {
    lines.push(
      "",
      `Bitcoin: LOCAL SIMULATED regtest chain (in this process, not a real network) at height ${bitcoin.chain.height}`,
      `  Esplora API    ${bitcoin.url}   (BITCOIN_ESPLORA_URL points the API here)`,
      `  pay an address curl -s -XPOST ${bitcoin.url}/regtest/pay -d '{"address":"bcrt1…","amountSats":"150000"}'`,
      `  mine           curl -s -XPOST ${bitcoin.url}/regtest/mine -d '{"blocks":1}'   (one is mined every ${process.env.BITCOIN_REGTEST_BLOCK_SECONDS ?? 10} s while transactions wait)`,
      "  BTC invoices need the merchant's account key first: PUT /v1/merchants/me/bitcoin (docs/BITCOIN.md)",
    );
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
    ...(keeper ? [`  keeper         ${paths.keeperLog}`] : []),
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
