/**
 * Deploys BillingEscrow and SubscriptionManager (plus, on local chains, a mock stablecoin and Chainlink
 * `MockV3Aggregator` price feeds) to the selected network and records them in `deployments/<chainId>.json`. Idempotent: contracts already recorded for the
 * chain and still present on it are kept; only missing ones are deployed.
 *
 *   npx hardhat deploy --network <hardhat|localhost|sepolia|baseSepolia> [--fee-bps 0] [--dispute-period 604800]
 *                      [--fee-recipient 0x…] [--owner 0x…]
 *   npx hardhat run scripts/deploy.ts --network <name>     (same, options from DEPLOY_* environment variables)
 *
 * Remote networks need SEPOLIA_RPC_URL / BASE_SEPOLIA_RPC_URL and DEPLOYER_PRIVATE_KEY (see .env.example; Hardhat
 * reads .env through hardhat.config.ts).
 *
 * Live contracts are never replaced: merchants' registrations, held payments and subscriptions live in them, and
 * an installation pointed at new contracts would show every invoice of the old ones as unpaid. To start over on
 * purpose, move deployments/<chainId>.json aside (it is the record of the old contracts) and deploy again.
 * Before sending anything, the deploy estimates what the missing contracts cost and stops with the ETH needed
 * when the deployer cannot pay it.
 */
import { mkdir, writeFile } from "node:fs/promises";
import type { HardhatRuntimeEnvironment } from "hardhat/types";
import type { Address, Hash } from "viem";
import { deploymentPath, DEPLOYMENTS_DIR, readDeployment, type ContractDeployment, type Deployment, type PriceFeedDeployment } from "../contracts/addresses";

export const LOCAL_CHAIN_IDS = new Set([31337, 31338, 1337]);
const DAY = 86_400;

export interface DeployOptions {
  /** Protocol owner (fee settings, pause). Defaults to the deployer. */
  owner?: string;
  /** Receives protocol fees. Defaults to the owner. */
  feeRecipient?: string;
  /** Protocol fee rate for new payments, in basis points (max 1000). */
  feeBps: number;
  /** Seconds after a hold ends by which a dispute must be settled. */
  disputePeriod: number;
  /** Where to record the deployment; default deployments/. Nothing is recorded for the in-process network. */
  directory?: string;
  /** Progress output (defaults to stderr). */
  log?: (line: string) => void;
}

export const DEFAULT_DEPLOY_OPTIONS: DeployOptions = { feeBps: 0, disputePeriod: 7 * DAY };

type ContractName = keyof Deployment["contracts"];

/**
 * Chainlink `MockV3Aggregator`s of local chains, one per pair the API prices with (8 decimals like Chainlink's
 * USD pairs). Heartbeat one day: a local node's mocks only move when a test or a person updates them, and the API
 * must not call them stale after an hour of `npm start`; tests move time past it to see the staleness check.
 */
export const LOCAL_PRICE_FEEDS: Record<string, { answer: bigint; decimals: number; heartbeatSeconds: number }> = {
  "ETH/USD": { answer: 3_000n * 10n ** 8n, decimals: 8, heartbeatSeconds: DAY },
  "USDC/USD": { answer: 10n ** 8n, decimals: 8, heartbeatSeconds: DAY },
  "BTC/USD": { answer: 60_000n * 10n ** 8n, decimals: 8, heartbeatSeconds: DAY },
  "EUR/USD": { answer: 108_000_000n, decimals: 8, heartbeatSeconds: DAY },
  "CNY/USD": { answer: 13_800_000n, decimals: 8, heartbeatSeconds: DAY },
};

/** Deploys what is missing on the connected chain and returns the full deployment record. */
export async function deployChainbill(hre: HardhatRuntimeEnvironment, options: DeployOptions): Promise<Deployment> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { ethers } = hre;
  const [deployer] = await ethers.getSigners();
  if (!deployer) {
    throw new Error(
      `No account to deploy with on network "${hre.network.name}". Set DEPLOYER_PRIVATE_KEY (see .env.example).`,
    );
  }
  const chainId = Number((await ethers.provider.getNetwork()).chainId);
  const owner = options.owner ?? deployer.address;
  const feeRecipient = options.feeRecipient ?? owner;
  const balance = await ethers.provider.getBalance(deployer.address);
  log(`chainbill deploy → network ${hre.network.name} (chain ${chainId}), deployer ${deployer.address}`);
  log(`  deployer balance ${ethers.formatEther(balance)} ETH`);

  // The in-process network vanishes with the process: recording it would point later runs at nothing.
  const record = hre.network.name !== "hardhat";
  const directory = options.directory ?? DEPLOYMENTS_DIR;
  const previous = record ? readDeployment(chainId, directory) : undefined;
  const contracts: Partial<Record<ContractName, ContractDeployment>> = {};
  let deployedAny = false;

  const names: ContractName[] = ["BillingEscrow", "SubscriptionManager", ...(LOCAL_CHAIN_IDS.has(chainId) ? (["MockStablecoin"] as const) : [])];
  const live = new Map<ContractName, boolean>();
  for (const name of names) {
    const recorded = previous?.contracts[name];
    live.set(name, recorded !== undefined && (await ethers.provider.getCode(recorded.address)) !== "0x");
  }
  const missing = names.filter((name) => !live.get(name));
  if (missing.length > 0) {
    // What the missing deployments cost at today's fees, before anything is sent.
    const argsFor = (name: ContractName): unknown[] =>
      name === "BillingEscrow"
        ? [owner, feeRecipient, options.feeBps, options.disputePeriod]
        : name === "SubscriptionManager"
          ? [owner, previous?.contracts.BillingEscrow?.address ?? deployer.address]
          : ["Mock USD Coin", "USDC", 6];
    let gas = 0n;
    for (const name of missing) {
      const transaction = await (await ethers.getContractFactory(name)).getDeployTransaction(...argsFor(name));
      gas += await ethers.provider.estimateGas({ ...transaction, from: deployer.address }).catch(() => 6_000_000n);
    }
    const fees = await ethers.provider.getFeeData();
    const price = fees.maxFeePerGas ?? fees.gasPrice ?? 0n;
    const needed = gas * price;
    log(`  needs about ${ethers.formatEther(needed)} ETH for ${missing.join(", ")} (${gas} gas at ${ethers.formatUnits(price, "gwei")} gwei)`);
    if (balance < needed) {
      throw new Error(
        `The deployer ${deployer.address} has ${ethers.formatEther(balance)} ETH on chain ${chainId}; deploying ${missing.join(", ")} needs about ` +
          `${ethers.formatEther(needed)} ETH (${gas} gas at ${ethers.formatUnits(price, "gwei")} gwei). Send it at least ${ethers.formatEther(needed - balance)} ETH more, then run the deploy again.`,
      );
    }
  }

  async function ensure(name: ContractName, args: unknown[]): Promise<ContractDeployment> {
    const recorded = previous?.contracts[name];
    if (recorded && live.get(name)) {
      log(`  ✓ ${name} already at ${recorded.address} (block ${recorded.blockNumber})`);
      return recorded;
    }
    log(`  … deploying ${name}`);
    deployedAny = true;
    const contract = await ethers.deployContract(name, args);
    const transaction = contract.deploymentTransaction();
    if (!transaction) throw new Error(`${name}: no deployment transaction`);
    const receipt = await transaction.wait();
    if (!receipt) throw new Error(`${name}: deployment transaction ${transaction.hash} was dropped`);
    const deployed: ContractDeployment = {
      address: (await contract.getAddress()) as Address,
      blockNumber: receipt.blockNumber,
      transactionHash: receipt.hash as Hash,
    };
    log(`  ✓ ${name} at ${deployed.address} (block ${deployed.blockNumber}, tx ${deployed.transactionHash})`);
    return deployed;
  }

  contracts.BillingEscrow = await ensure("BillingEscrow", [owner, feeRecipient, options.feeBps, options.disputePeriod]);
  contracts.SubscriptionManager = await ensure("SubscriptionManager", [owner, contracts.BillingEscrow.address]);
  if (LOCAL_CHAIN_IDS.has(chainId)) {
    contracts.MockStablecoin = await ensure("MockStablecoin", ["Mock USD Coin", "USDC", 6]);
  }
  let priceFeeds: Record<string, PriceFeedDeployment> | undefined = previous?.priceFeeds;
  if (LOCAL_CHAIN_IDS.has(chainId)) {
    priceFeeds = {};
    for (const [pair, feed] of Object.entries(LOCAL_PRICE_FEEDS)) {
      const recorded = previous?.priceFeeds?.[pair];
      if (recorded && (await ethers.provider.getCode(recorded.address)) !== "0x") {
        log(`  ✓ price feed ${pair} already at ${recorded.address}`);
        priceFeeds[pair] = recorded;
        continue;
      }
      deployedAny = true;
      const contract = await ethers.deployContract("MockV3Aggregator", [feed.decimals, feed.answer]);
      const receipt = await contract.deploymentTransaction()!.wait();
      priceFeeds[pair] = {
        address: (await contract.getAddress()) as Address,
        decimals: feed.decimals,
        heartbeatSeconds: feed.heartbeatSeconds,
        blockNumber: receipt!.blockNumber,
        transactionHash: receipt!.hash as Hash,
      };
      log(`  ✓ price feed ${pair} (MockV3Aggregator, ${feed.decimals} decimals) at ${priceFeeds[pair].address}`);
    }
  }

  const deployment: Deployment =
    previous && !deployedAny
      ? previous
      : {
        chainId,
        network: hre.network.name,
        deployer: deployer.address as Address,
        deployedAt: new Date().toISOString(),
        parameters: { owner: owner as Address, feeRecipient: feeRecipient as Address, feeBps: options.feeBps, disputePeriod: options.disputePeriod },
        contracts: contracts as Deployment["contracts"],
        ...(priceFeeds ? { priceFeeds } : {}),
      };
  if (!record) {
    log("  in-process network: nothing recorded (use --network localhost with `npx hardhat node`)");
  } else if (deployedAny) {
    await mkdir(directory, { recursive: true });
    await writeFile(deploymentPath(chainId, directory), `${JSON.stringify(deployment, null, 2)}\n`);
    log(`  wrote ${deploymentPath(chainId, directory)}`);
  } else {
    log(`  nothing to deploy: ${deploymentPath(chainId, directory)} is current`);
  }
  return deployment;
}

/** Options from DEPLOY_* environment variables, for `hardhat run scripts/deploy.ts`. */
export function deployOptionsFromEnv(env: NodeJS.ProcessEnv = process.env): DeployOptions {
  const number = (name: string, fallback: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === "") return fallback;
    const value = Number(raw);
    if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, got "${raw}"`);
    return value;
  };
  return {
    owner: env.DEPLOY_OWNER || undefined,
    feeRecipient: env.DEPLOY_FEE_RECIPIENT || undefined,
    feeBps: number("DEPLOY_FEE_BPS", DEFAULT_DEPLOY_OPTIONS.feeBps),
    disputePeriod: number("DEPLOY_DISPUTE_PERIOD", DEFAULT_DEPLOY_OPTIONS.disputePeriod),
    directory: env.DEPLOYMENTS_DIR || undefined,
  };
}

if (require.main === module) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const hre = require("hardhat") as HardhatRuntimeEnvironment;
  deployChainbill(hre, deployOptionsFromEnv()).catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
