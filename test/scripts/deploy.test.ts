/**
 * The deploy as a merchant runs it against a testnet: `cp .env.example .env`, fill it in, and
 * `npx hardhat deploy --network sepolia` — here against a local node that answers as chain 11155111. The
 * command reads `.env`, keeps live contracts on a second run, and stops an unfunded deployer before sending
 * anything, saying how much ETH it needs.
 */
import { expect } from "chai";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { createPublicClient, http } from "viem";
import { generatePrivateKey } from "viem/accounts";
import { testAccountKey } from "../../scripts/lib/local-chain";
import { runToCompletion, startChild, stopChild, type Supervised } from "../../scripts/lib/processes";
import { freePort, waitUntil } from "../stack/harness";

const ROOT = path.join(__dirname, "..", "..");
const HARDHAT = path.join(ROOT, "node_modules", ".bin", "hardhat");
const SEPOLIA = 11155111;

describe("npx hardhat deploy --network sepolia, with a .env", function () {
  this.timeout(240_000);
  let directory: string;
  let node: Supervised;
  let rpcUrl: string;

  before(async () => {
    directory = await mkdtemp(path.join(os.tmpdir(), "chainbill-deploy-"));
    const port = await freePort();
    rpcUrl = `http://127.0.0.1:${port}`;
    node = startChild("hardhat node", HARDHAT, ["node", "--hostname", "127.0.0.1", "--port", String(port)], {
      cwd: ROOT,
      env: { ...process.env, HARDHAT_CHAIN_ID: String(SEPOLIA), HARDHAT_DISABLE_TELEMETRY_PROMPT: "true" },
      logFile: path.join(directory, "node.log"),
    });
    const client = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) });
    await waitUntil("the node", async () => (await client.getChainId()) === SEPOLIA);
  });
  after(async () => {
    await stopChild(node);
    await rm(directory, { recursive: true, force: true });
  });

  /** Runs the documented command with `.env` contents; returns its exit (0 or the error) and its output. */
  async function deploy(dotenv: string): Promise<{ ok: boolean; output: string }> {
    const envFile = path.join(directory, ".env");
    const logFile = path.join(directory, `deploy-${Date.now()}.log`);
    await writeFile(envFile, dotenv);
    // Only the variables a shell would hold: everything else comes from the .env file.
    const { SEPOLIA_RPC_URL: _rpc, DEPLOYER_PRIVATE_KEY: _key, ...env } = process.env;
    const ok = await runToCompletion("deploy", HARDHAT, ["deploy", "--network", "sepolia"], {
      cwd: ROOT,
      env: { ...env, CHAINBILL_ENV_FILE: envFile, DEPLOYMENTS_DIR: path.join(directory, "deployments"), HARDHAT_DISABLE_TELEMETRY_PROMPT: "true" },
      logFile,
    }).then(
      () => true,
      () => false,
    );
    return { ok, output: await readFile(logFile, "utf8") };
  }

  it("an unfunded deployer stops before sending anything, with the ETH it needs", async () => {
    const { ok, output } = await deploy(`SEPOLIA_RPC_URL=${rpcUrl}\nDEPLOYER_PRIVATE_KEY=${generatePrivateKey()}\n# an empty value means unset\nBASE_SEPOLIA_RPC_URL=\n`);
    expect(ok).to.equal(false);
    expect(output).to.match(/has 0\.0 ETH on chain 11155111; deploying BillingEscrow, SubscriptionManager needs about [0-9.]+ ETH/);
    expect(output).to.contain("Send it at least");
    expect(existsSync(path.join(directory, "deployments", `${SEPOLIA}.json`))).to.equal(false);
  });

  it("reads .env and deploys, recording the contracts", async () => {
    const { ok, output } = await deploy(`SEPOLIA_RPC_URL=${rpcUrl}\nDEPLOYER_PRIVATE_KEY=${testAccountKey(0)}\n`);
    expect(ok, output).to.equal(true);
    const recorded = JSON.parse(await readFile(path.join(directory, "deployments", `${SEPOLIA}.json`), "utf8")) as { chainId: number; contracts: Record<string, unknown> };
    expect(recorded.chainId).to.equal(SEPOLIA);
    expect(Object.keys(recorded.contracts)).to.deep.equal(["BillingEscrow", "SubscriptionManager"]);
  });

  it("a second run keeps the live contracts and sends nothing", async () => {
    const before = await readFile(path.join(directory, "deployments", `${SEPOLIA}.json`), "utf8");
    const { ok, output } = await deploy(`SEPOLIA_RPC_URL=${rpcUrl}\nDEPLOYER_PRIVATE_KEY=${testAccountKey(0)}\n`);
    expect(ok, output).to.equal(true);
    expect(output).to.contain("✓ BillingEscrow already at");
    expect(output).to.contain("nothing to deploy");
    expect(await readFile(path.join(directory, "deployments", `${SEPOLIA}.json`), "utf8")).to.equal(before);
  });
});
