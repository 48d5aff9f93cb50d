/**
 * Hardhat configuration: compiler (offline, from the npm `solc` package), networks, and plugins.
 *
 * Networks beyond the local ones are enabled from the environment:
 *   SEPOLIA_RPC_URL, BASE_SEPOLIA_RPC_URL (and DEPLOYER_PRIVATE_KEY to sign),
 * read from .env at the repository root when present (variables already set win; empty values mean unset), so
 * `cp .env.example .env`, filling it in, and `npx hardhat deploy --network sepolia` works as documented.
 */
import { subtask, task, types } from "hardhat/config";
import type { HardhatUserConfig, NetworkUserConfig } from "hardhat/types";
import { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } from "hardhat/builtin-tasks/task-names";
import "@nomicfoundation/hardhat-toolbox";
import { loadDotEnv } from "./scripts/lib/stack-files";

loadDotEnv();

// The compiler ships with the npm `solc` package (WebAssembly), so compiling never downloads anything.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const solcPackage = require("solc/package.json") as { version: string };
const SOLC_VERSION = solcPackage.version;

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args: { solcVersion: string }, _hre, runSuper) => {
  if (args.solcVersion !== SOLC_VERSION) return runSuper(args);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const solc = require("solc") as { version(): string };
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: args.solcVersion,
    longVersion: solc.version(),
  };
});

task("deploy", "Deploys the chainbill contracts and writes deployments/<chainId>.json (idempotent)")
  .addOptionalParam("owner", "Protocol owner (fee settings, pause); default: the deployer")
  .addOptionalParam("feeRecipient", "Receives protocol fees; default: the owner")
  .addOptionalParam("feeBps", "Protocol fee in basis points for new payments (max 1000)", 0, types.int)
  .addOptionalParam("disputePeriod", "Seconds after a hold ends to settle a dispute", 7 * 86_400, types.int)
  .setAction(async (args, hre) => {
    const { deployChainbill } = await import("./scripts/deploy");
    await deployChainbill(hre, { ...args, directory: process.env.DEPLOYMENTS_DIR || undefined });
  });

const deployerKey = process.env.DEPLOYER_PRIVATE_KEY;

function remote(urlVariable: string, chainId: number): NetworkUserConfig | undefined {
  const url = process.env[urlVariable];
  if (!url) return undefined;
  return { url, chainId, accounts: deployerKey ? [deployerKey] : [] };
}

const remoteNetworks = Object.fromEntries(
  Object.entries({
    sepolia: remote("SEPOLIA_RPC_URL", 11155111),
    baseSepolia: remote("BASE_SEPOLIA_RPC_URL", 84532),
    // Any other chain: CUSTOM_RPC_URL (chain id read from the node).
    custom: process.env.CUSTOM_RPC_URL
      ? { url: process.env.CUSTOM_RPC_URL, accounts: deployerKey ? [deployerKey] : "remote" }
      : undefined,
  }).filter(([, network]) => network !== undefined),
) as Record<string, NetworkUserConfig>;

const compilerSettings = { optimizer: { enabled: true, runs: 10_000 }, evmVersion: "cancun" };
// The two protocol contracts go through the IR pipeline: measured 1.0–1.8k gas less per operation
// (bench/gas.md). Test tokens keep the legacy pipeline, like the tokens deployed in the wild.
const protocolCompiler = { version: SOLC_VERSION, settings: { ...compilerSettings, viaIR: true } };

const config: HardhatUserConfig = {
  solidity: {
    compilers: [{ version: SOLC_VERSION, settings: compilerSettings }],
    overrides: {
      "contracts/BillingEscrow.sol": protocolCompiler,
      "contracts/SubscriptionManager.sol": protocolCompiler,
    },
  },
  networks: {
    // HARDHAT_CHAIN_ID lets tests run a second local chain (e.g. 31338) beside the default 31337.
    // HARDHAT_BLOCK_INTERVAL_MS adds interval mining beside automine for `hardhat node` (npm start, stack tests):
    // an idle local chain then keeps producing blocks like a real one, which Ponder needs after a restart to index
    // the unfinalized tail (it waits for a new head). In-process tests leave it unset and stay deterministic.
    hardhat: {
      chainId: Number(process.env.HARDHAT_CHAIN_ID ?? 31337),
      ...(process.env.HARDHAT_BLOCK_INTERVAL_MS
        ? { mining: { auto: true, interval: Number(process.env.HARDHAT_BLOCK_INTERVAL_MS) } }
        : {}),
    },
    localhost: { url: process.env.LOCAL_RPC_URL ?? "http://127.0.0.1:8545" },
    ...remoteNetworks,
  },
  typechain: { outDir: "typechain-types", target: "ethers-v6" },
  gasReporter: { enabled: process.env.REPORT_GAS === "true", offline: true },
  mocha: { timeout: 120_000 },
};

export default config;
