/**
 * `npm run keeper`: moves money by rule on every chain of the running stack, every KEEPER_INTERVAL_SECONDS —
 * releases held payments whose hold is over, automatic refunds (missed fulfillBy, expired disputes), renewals
 * of due subscriptions, and payouts of subscription income on each merchant's schedule (scripts/lib/keeper.ts).
 * `npm start` runs it too. It sends with its own key (never the API's), simulates everything first, and logs
 * what it did, what it skipped and why.
 */
import { createPublicClient, formatEther, http, type PublicClient } from "viem";
import { z } from "zod";
import { localSecret } from "../api/config";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import { createApiClient } from "./lib/api-client";
import { runKeeperOnce } from "./lib/keeper";
import { onShutdown } from "./lib/processes";
import { loadDotEnv, runningStack, stackPaths } from "./lib/stack-files";

const HELP = `npm run keeper — sweep deposits, release, refund, renew and pay out by rule

  npm run keeper [-- --once]

Asks the running API (found through .data/stack.json, or KEEPER_API_URL) what is due — invoices' deposit
addresses holding a customer's payment (swept into the escrow) or money to send back to a refund address, held
payments whose hold is over, refunds of missed fulfilment deadlines and expired disputes, due subscription
renewals, subscription income to pay out on each merchant's schedule — simulates each call with the keeper's key, and sends what the
contracts accept. Every call is one anyone may make, so several keepers may run: a call already done is skipped.

Options:
  --once                one run, then exit
  -h, --help            this text

Environment (also read from .env):
  KEEPER_PRIVATE_KEY    the keeper's key (0x + 64 hex); it pays the gas. Locally one is generated once into
                        <data>/keeper-key (npm start funds it); elsewhere it must be set
  KEEPER_INTERVAL_SECONDS  seconds between runs (default 15)
  KEEPER_MAX_GAS_PER_RUN   gas one run may spend, all chains together (default 5000000)
  KEEPER_API_URL        the API (default: the one npm start runs); ADMIN_API_KEY (default <data>/admin-api-key)
  DATA_DIR              data directory of npm start (default .data)
`;

const EnvSchema = z.object({
  KEEPER_PRIVATE_KEY: z.string().regex(/^0x[0-9a-fA-F]{64}$/, "must be 0x followed by 64 hex digits").optional(),
  KEEPER_INTERVAL_SECONDS: z.coerce.number().int().positive().default(15),
  KEEPER_MAX_GAS_PER_RUN: z.coerce.bigint().positive().default(5_000_000n),
  KEEPER_API_URL: z.string().url().optional(),
  ADMIN_API_KEY: z.string().min(24).optional(),
});

function stamp(line: string): void {
  process.stdout.write(`${new Date().toISOString()} ${line}\n`);
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  loadDotEnv();
  const parsed = EnvSchema.safeParse(process.env);
  if (!parsed.success) throw new Error(`Invalid environment:\n${parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`).join("\n")}`);
  const env = parsed.data;
  const paths = stackPaths();
  const stack = runningStack(paths);
  const apiUrl = env.KEEPER_API_URL ?? stack?.apiUrl;
  if (!apiUrl) throw new Error("No API to ask: start the stack (npm start) or set KEEPER_API_URL.");
  const chains = (stack?.chains ?? []).map((chain) => ({ id: chain.id, rpcUrl: chain.rpcUrl, client: createPublicClient({ transport: http(chain.rpcUrl, { retryCount: 0 }) }) as PublicClient }));
  if (chains.length === 0) throw new Error("No chains: the keeper takes them from the running npm start (.data/stack.json).");
  const remote = (stack?.chains ?? []).filter((chain) => !chain.local);
  if (!env.KEEPER_PRIVATE_KEY && remote.length > 0) {
    throw new Error(`KEEPER_PRIVATE_KEY must be set for chain ${remote.map((chain) => chain.id).join(", ")} (a funded key: the keeper pays the gas).`);
  }
  const key = (env.KEEPER_PRIVATE_KEY ?? localSecret(paths.dataDir, "keeper-key", generatePrivateKey)) as `0x${string}`;
  const account = privateKeyToAccount(key);
  const adminKey = env.ADMIN_API_KEY ?? localSecret(paths.dataDir, "admin-api-key", () => {
    throw new Error("No admin key: set ADMIN_API_KEY (the API's) or run npm start first.");
  });
  const api = createApiClient(apiUrl);
  for (const chain of chains) {
    stamp(`keeper ${account.address} on chain ${chain.id}: ${formatEther(await chain.client.getBalance({ address: account.address }))} ETH for gas`);
  }
  let stopping = false;
  onShutdown(async () => {
    stopping = true;
  });
  let quietSince = 0;
  for (;;) {
    const actions = await runKeeperOnce({ api, adminKey, chains, account, maxGasPerRun: env.KEEPER_MAX_GAS_PER_RUN, log: stamp }).catch((error: unknown) => {
      stamp(`run failed: ${error instanceof Error ? error.message : String(error)}`);
      return undefined;
    });
    // "Nothing due" at most every ten minutes, so the log stays readable.
    if (actions?.length === 0 && Date.now() - quietSince > 600_000) {
      quietSince = Date.now();
      stamp("nothing due");
    }
    if (argv.includes("--once") || stopping) return;
    await new Promise((resolve) => setTimeout(resolve, env.KEEPER_INTERVAL_SECONDS * 1000));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`✗ keeper: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
