/**
 * `npm start`: the local chainbill stack. Starts a Hardhat node (unless RPC_URL points elsewhere), deploys the
 * contracts when needed, and prints the addresses and funded test accounts. Ctrl-C stops everything.
 *
 * Usage: npm start [-- --help]
 * Environment: RPC_URL (use this chain instead of a local node), HARDHAT_PORT (default 8545).
 */
import path from "node:path";
import { createPublicClient, http } from "viem";
import { mnemonicToAccount } from "viem/accounts";
import { readDeployment } from "../contracts/addresses";
import { isStopping, onShutdown, runToCompletion, startChild, stopAll, waitFor } from "./lib/processes";

const ROOT = path.join(__dirname, "..");
const HARDHAT = path.join(ROOT, "node_modules", ".bin", "hardhat");
const HARDHAT_MNEMONIC = "test test test test test test test test test test test junk";

const HELP = `npm start — run chainbill locally

Starts a Hardhat node on 127.0.0.1:$HARDHAT_PORT (default 8545), deploys BillingEscrow,
SubscriptionManager and a mock stablecoin (skipped when deployments/<chainId>.json is current),
then prints the contract addresses and funded test accounts. Ctrl-C stops everything.

Environment:
  RPC_URL        use an already running chain instead of starting a node
  HARDHAT_PORT   port of the local node (default 8545)

Logs: .data/logs/hardhat-node.log
`;

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  onShutdown(stopAll);
  const port = Number(process.env.HARDHAT_PORT ?? 8545);
  const rpcUrl = process.env.RPC_URL ?? `http://127.0.0.1:${port}`;
  const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) });
  const env = { ...process.env, HARDHAT_DISABLE_TELEMETRY_PROMPT: "true" };

  const alreadyUp = await client.getChainId().then(() => true, () => false);
  if (!process.env.RPC_URL && !alreadyUp) {
    step(`starting Hardhat node on ${rpcUrl}`);
    const node = startChild("hardhat node", HARDHAT, ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
      cwd: ROOT,
      env,
      logFile: path.join(ROOT, ".data", "logs", "hardhat-node.log"),
    });
    void node.exited.then((code) => {
      if (isStopping()) return;
      process.stderr.write(`hardhat node exited (code ${code}); see .data/logs/hardhat-node.log\n`);
      void stopAll().finally(() => process.exit(1));
    });
    await waitFor("the Hardhat node to answer", () => client.getChainId().then(() => true), 60_000);
  } else {
    step(`using the chain at ${rpcUrl}`);
  }
  const chainId = await client.getChainId();

  step("deploying contracts (idempotent)");
  const network = process.env.RPC_URL ? ["--network", "custom"] : ["--network", "localhost"];
  await runToCompletion("deploy", HARDHAT, ["deploy", ...network], {
    cwd: ROOT,
    env: { ...env, LOCAL_RPC_URL: rpcUrl, CUSTOM_RPC_URL: rpcUrl },
  });
  const deployment = readDeployment(chainId);
  if (!deployment) throw new Error(`deployments/${chainId}.json was not written`);

  const lines = [
    "",
    "chainbill is running",
    `  chain            ${rpcUrl} (chain id ${chainId})`,
    ...Object.entries(deployment.contracts).map(([name, item]) => `  ${name.padEnd(21)}${item.address}`),
  ];
  if (!process.env.RPC_URL) {
    lines.push("", "Funded test accounts (Hardhat's public test keys — never use them on a real network):");
    for (let index = 0; index < 4; index += 1) {
      const account = mnemonicToAccount(HARDHAT_MNEMONIC, { addressIndex: index });
      const key = Buffer.from(account.getHdKey().privateKey ?? []).toString("hex");
      lines.push(`  #${index} ${account.address}  key 0x${key}  10000 ETH`);
    }
  }
  lines.push("", "Press Ctrl-C to stop.");
  process.stdout.write(`${lines.join("\n")}\n`);
}

function step(message: string): void {
  process.stderr.write(`▸ ${message}\n`);
}

main().catch(async (error: unknown) => {
  process.stderr.write(`npm start failed: ${error instanceof Error ? error.message : String(error)}\n`);
  await stopAll();
  process.exit(1);
});
