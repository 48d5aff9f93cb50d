/**
 * The SDK as users get it: `npm pack` of the workspace (its prepack builds it), the file list and sizes checked,
 * the tarball installed with viem alone into a fresh project, and used from four consumer projects
 * (sdk/consumers) against the real stack (Hardhat node, deployed contracts, Ponder with the API): plain Node
 * ESM pays ETH, plain CommonJS verifies a webhook the server sent and pays USDC with approve + pay (after
 * payInvoice refused a wallet on another chain), TypeScript with `moduleResolution: "bundler"` typechecks and
 * pays USDC with a permit, and a Vite build runs in Chromium and pays USDC with the default method. Each payment
 * counts once the API reports the invoice `paid`.
 */
import { expect } from "chai";
import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { builtinModules } from "node:module";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { testAccountKey } from "../../scripts/lib/local-chain";
import { chromiumMissing, chromiumPath, launchChromium } from "../helpers/browser";
import { startReceiver, type Receiver } from "../helpers/receiver";
import { createMerchant, mintStablecoin, startStack, usdc, waitUntil, ROOT, type LocalChain, type Stack, type TestMerchant } from "../stack/harness";

const run = promisify(execFile);
// Outside test/: `hardhat test` runs every script under test/, and these are the consumers' own programs.
const PROJECTS = path.join(__dirname, "..", "..", "sdk", "consumers");
const BIN = path.join(ROOT, "node_modules", ".bin");
const VIEM_VERSION = (require(path.join(ROOT, "node_modules", "viem", "package.json")) as { version: string }).version;
/** What the server needs and a dApp must never download. */
const SERVER_PACKAGES = ["hono", "@hono/node-server", "@hono/zod-openapi", "ponder", "@ponder/client", "pg", "pino", "drizzle-orm", "@electric-sql/pglite", "standardwebhooks", "swagger-ui-dist", "zod", "qrcode", "@scure/btc-signer", "hardhat", "ethers", "typescript", "openapi-typescript"];

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string; size: number }[];
}

interface InvoiceJson {
  id: string;
  status: string;
  payment: { evm: Record<string, unknown> & { chainId: number; invoiceKey: string } };
}

async function command(file: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv }): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failed = error as Error & { stdout?: string; stderr?: string };
    throw new Error(`${path.basename(file)} ${args.join(" ")} failed in ${options.cwd}: ${failed.message}\n${failed.stdout ?? ""}\n${failed.stderr ?? ""}`);
  }
}

/** The last line of a project's output, which is its JSON report. */
function report(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split("\n");
  return JSON.parse(lines[lines.length - 1]) as Record<string, unknown>;
}

async function filesUnder(directory: string): Promise<string[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const nested = await Promise.all(entries.map((entry) => (entry.isDirectory() ? filesUnder(path.join(directory, entry.name)) : [path.join(directory, entry.name)])));
  return nested.flat();
}

function kilobytes(bytes: number): string {
  return `${(bytes / 1024).toFixed(1)} kB`;
}

describe("sdk: @chainbill/sdk packed, installed alone and used to pay on the local chain", function () {
  this.timeout(300_000);
  let directory: string;
  let packed: PackResult;
  let installed: string;
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let receiver: Receiver;
  let webhookSecret: string;
  let ethInvoice: InvoiceJson;

  before(async function () {
    this.timeout(600_000);
    directory = await mkdtemp(path.join(os.tmpdir(), "chainbill-sdk-"));
    // The stack (~40 s) starts while the SDK is built, packed and installed.
    const starting = startStack();
    starting.catch(() => undefined);
    try {
      const started = Date.now();
      const output = await command("npm", ["pack", "--workspace", "@chainbill/sdk", "--pack-destination", directory, "--json", "--loglevel", "warn"], { cwd: ROOT });
      [packed] = JSON.parse(output.slice(output.indexOf("["))) as PackResult[];
      const packedAt = Date.now();
      installed = path.join(directory, "install");
      await mkdir(installed);
      await writeFile(path.join(installed, "package.json"), JSON.stringify({ name: "sdk-consumer", private: true }));
      await command("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel", "warn", path.join(directory, packed.filename), `viem@${VIEM_VERSION}`], { cwd: installed });
      console.log(`      build + pack ${((packedAt - started) / 1000).toFixed(1)} s, install ${((Date.now() - packedAt) / 1000).toFixed(1)} s`);
    } finally {
      stack = await starting;
    }
    chain = stack.chains[0];
    merchant = await createMerchant(stack, 1, "SDK merchant");
    for (const holder of [4, 5, 6]) await mintStablecoin(chain, holder, usdc(1_000)); // one minter: one at a time
    receiver = await startReceiver();
    const response = await stack.api("POST", "/v1/webhook-endpoints", { key: merchant.apiKey, body: { url: receiver.url, events: ["invoice.paid"] } });
    expect(response.status, await response.clone().text()).to.equal(201);
    webhookSecret = ((await response.json()) as { secret: string }).secret;
    receiver.secrets = [webhookSecret];
  });

  after(async () => {
    await receiver?.close();
    await stack?.stop();
    if (directory) await rm(directory, { recursive: true, force: true });
  });

  /** A copy of sdk/consumers/<name> whose node_modules is the fresh install (the SDK tarball and viem). */
  async function project(name: string): Promise<string> {
    const target = path.join(directory, name);
    await cp(path.join(PROJECTS, name), target, { recursive: true });
    await symlink(path.join(installed, "node_modules"), path.join(target, "node_modules"), "dir");
    return target;
  }

  async function createInvoice(body: Record<string, unknown>): Promise<InvoiceJson> {
    const response = await stack.api("POST", "/v1/invoices", { key: merchant.apiKey, headers: { "Idempotency-Key": randomUUID() }, body: { chainId: chain.id, ...body } });
    const text = await response.text();
    expect(response.status, text).to.equal(201);
    return JSON.parse(text) as InvoiceJson;
  }

  async function waitUntilPaid(invoice: InvoiceJson): Promise<void> {
    await waitUntil(`invoice ${invoice.id} paid`, async () => {
      const current = (await (await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: merchant.apiKey })).json()) as InvoiceJson;
      return current.status === "paid";
    }, 30_000);
  }

  it("packs only dist/, README.md and package.json (no sources, tests, maps or Node built-ins); installs without server dependencies", async () => {
    const paths = packed.files.map((file) => file.path).sort();
    const unexpected = paths.filter((file) => !/^(dist\/(esm|cjs)\/[\w/-]+\.(js|d\.ts)|dist\/cjs\/package\.json|README\.md|package\.json)$/.test(file));
    expect(unexpected, "files npm pack would publish").to.deep.equal([]);
    for (const entry of ["index", "webhooks"]) {
      for (const file of [`dist/esm/${entry}.js`, `dist/esm/${entry}.d.ts`, `dist/cjs/${entry}.js`, `dist/cjs/${entry}.d.ts`]) expect(paths).to.include(file);
    }
    expect(paths).to.include("README.md");

    const sdk = path.join(installed, "node_modules", "@chainbill", "sdk");
    const builtins = new Set(builtinModules);
    for (const file of await filesUnder(path.join(sdk, "dist"))) {
      const text = await readFile(file, "utf8");
      const relative = path.relative(sdk, file);
      expect(text, relative).not.to.contain("node:");
      expect(text, relative).not.to.contain("sourceMappingURL");
      for (const match of text.matchAll(/(?:from\s+|import\(|require\()["']([^"']+)["']/g)) {
        expect(builtins.has(match[1]), `${relative} imports ${match[1]}`).to.equal(false);
        if (match[1].startsWith(".")) expect(match[1], `${relative}: relative imports name .js files`).to.match(/\.js$/);
      }
    }
    const manifest = JSON.parse(await readFile(path.join(sdk, "package.json"), "utf8")) as Record<string, Record<string, string>>;
    expect(Object.keys(manifest.dependencies ?? {})).to.deep.equal(["openapi-fetch"]);
    expect(manifest.peerDependencies).to.deep.equal({ viem: "^2" });

    const present = SERVER_PACKAGES.filter((name) => existsSync(path.join(installed, "node_modules", name)));
    expect(present, "server packages in a dApp's install").to.deep.equal([]);

    const installKb = Number((await command("du", ["-sk", path.join(installed, "node_modules")], { cwd: directory })).split(/\s/)[0]);
    const rootKb = Number((await command("du", ["-sk", path.join(ROOT, "node_modules")], { cwd: ROOT })).split(/\s/)[0]);
    console.log(
      `      ${packed.filename}: ${packed.files.length} files, packed ${kilobytes(packed.size)}, unpacked ${kilobytes(packed.unpackedSize)}; ` +
        `install of the SDK + viem@${VIEM_VERSION}: ${(installKb / 1024).toFixed(1)} MB (the repository's node_modules: ${(rootKb / 1024).toFixed(0)} MB)`,
    );
  });

  it("plain Node ESM: reads the invoice with the typed client, recomputes its EIP-712 key and deposit address, pays ETH", async () => {
    ethInvoice = await createInvoice({ amount: "0.01", currency: "ETH" });
    const cwd = await project("esm");
    const input = { apiUrl: stack.apiUrl, apiKey: merchant.apiKey, invoiceId: ethInvoice.id, rpcUrl: chain.rpcUrl, privateKey: testAccountKey(3) };
    const result = report(await command(process.execPath, ["pay.mjs"], { cwd, env: { SDK_TEST_INPUT: JSON.stringify(input) } }));
    expect(result).to.include({ method: "native", key: ethInvoice.payment.evm.invoiceKey, amount: "0.01" });
    expect(result.steps).to.deep.equal(["pay", "pay"]);
    await waitUntilPaid(ethInvoice);
  });

  it("plain CommonJS: verifies the server's invoice.paid webhook, refuses a wallet on another chain (WrongChainError), pays USDC with approve + pay", async () => {
    await waitUntil("the invoice.paid webhook", async () => receiver.received.some((entry) => entry.event.type === "invoice.paid" && entry.body.includes(ethInvoice.id)), 30_000);
    const delivery = receiver.received.find((entry) => entry.event.type === "invoice.paid" && entry.body.includes(ethInvoice.id))!;
    const invoice = await createInvoice({ amount: "12.50", currency: "USDC" });
    const cwd = await project("cjs");
    const input = {
      rpcUrl: chain.rpcUrl,
      privateKey: testAccountKey(4),
      instructions: invoice.payment.evm,
      webhook: { secret: webhookSecret, body: delivery.body, headers: { "webhook-id": delivery.id, "webhook-timestamp": delivery.timestamp, "webhook-signature": delivery.signature } },
    };
    const result = report(await command(process.execPath, ["pay.cjs"], { cwd, env: { SDK_TEST_INPUT: JSON.stringify(input) } }));
    expect(result.webhook).to.deep.equal({ id: delivery.id, type: "invoice.paid" });
    expect(result.wrongChain).to.match(/^WrongChainError: The wallet is on chain 31337 but this invoice is paid on chain 8453; switch the wallet to chain 8453/);
    expect(result.wrongChainSteps).to.deep.equal(["switch-chain"]);
    expect(result).to.include({ method: "approve" });
    expect(result.steps).to.deep.equal(["approve", "approve:sent", "pay", "pay:sent"]);
    await waitUntilPaid(invoice);
  });

  it("TypeScript (moduleResolution bundler, strict): typechecks against the SDK's declarations, compiles, pays USDC with a permit", async () => {
    const invoice = await createInvoice({ amount: "7.25", currency: "USDC" });
    const cwd = await project("ts");
    await command(path.join(BIN, "tsc"), ["-p", "tsconfig.json"], { cwd });
    const input = { rpcUrl: chain.rpcUrl, privateKey: testAccountKey(5), instructions: invoice.payment.evm };
    const result = report(await command(process.execPath, [path.join("out", "main.js")], { cwd, env: { SDK_TEST_INPUT: JSON.stringify(input) } }));
    expect(result).to.include({ method: "permit", key: invoice.payment.evm.invoiceKey });
    expect(result.steps).to.deep.equal(["permit-signature", "pay", "pay"]);
    await waitUntilPaid(invoice);
  });

  it("Vite browser build: the page pays USDC with the default method (a permit) in Chromium", async function () {
    if (!chromiumPath()) {
      console.log(`      skipped: ${chromiumMissing()}`);
      this.skip();
    }
    const invoice = await createInvoice({ amount: "3.00", currency: "USDC" });
    const cwd = await project("vite");
    await command(process.execPath, [path.join(ROOT, "node_modules", "vite", "bin", "vite.js"), "build", "--logLevel", "warn"], { cwd });
    const built = path.join(cwd, "dist");
    const bundle = (await filesUnder(built)).filter((file) => file.endsWith(".js"));
    expect(bundle).to.have.length.greaterThan(0);
    const input = JSON.stringify({ privateKey: testAccountKey(6), instructions: invoice.payment.evm });
    const server = await serve(built, input, chain.rpcUrl);
    const browser = await launchChromium();
    try {
      const page = await (await browser.context()).newPage();
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      // Expressions run in the page (this file is typed for Node, without the DOM's declarations).
      await page.waitForFunction('document.getElementById("status").textContent !== "loading"', undefined, { timeout: 60_000 });
      const outcome = (await page.evaluate('({ ...document.getElementById("status").dataset })')) as { result?: string; error?: string };
      expect(outcome.error, "the page's error").to.equal(undefined);
      const result = JSON.parse(outcome.result!) as Record<string, unknown>;
      expect(result).to.include({ method: "permit", refused: "WebhookVerificationError" });
      expect(result.steps).to.deep.equal(["permit-signature", "pay", "pay"]);
    } finally {
      await browser.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
    await waitUntilPaid(invoice);
  });
});

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".json": "application/json" };

/** Serves the built page, its input at /input.json, and relays JSON-RPC posted to /rpc to the chain (same origin: no CORS). */
async function serve(root: string, input: string, rpcUrl: string): Promise<Server> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", async () => {
      try {
        const url = new URL(request.url ?? "/", "http://localhost");
        if (url.pathname === "/rpc") {
          const answer = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: Buffer.concat(chunks) });
          response.writeHead(answer.status, { "content-type": "application/json" }).end(Buffer.from(await answer.arrayBuffer()));
          return;
        }
        if (url.pathname === "/input.json") {
          response.writeHead(200, { "content-type": "application/json" }).end(input);
          return;
        }
        const file = path.join(root, url.pathname === "/" ? "index.html" : path.normalize(url.pathname));
        if (!file.startsWith(root)) throw new Error("outside the root");
        const body = await readFile(file);
        response.writeHead(200, { "content-type": TYPES[path.extname(file)] ?? "application/octet-stream" }).end(body);
      } catch {
        response.writeHead(404).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return server;
}
