/**
 * The hosted checkout's weight and speed, measured in Chromium against the running stack:
 *   1. weight: every request the invoice page makes until it is ready (HTML, script, stylesheet, QR code, the
 *      view, the event stream), with bytes on the wire (gzip where the client asks) and decoded;
 *   2. time to a usable page: from navigation to the status shown, and to the wallet's button (EIP-6963
 *      discovery), median of several loads, beside the same browser loading the API's `/health` JSON (the
 *      floor: one request, no script) in the same run;
 *   3. time to a live update: a payment mined → the page's status changes, without reloading, beside the
 *      API's own answer (`GET /v1/invoices/{id}` polled) seeing it.
 * The comparison with Stripe Checkout and BTCPay Server's checkout is in bench/checkout.md (their sizes come
 * from their published sources; they cannot be loaded here).
 *
 * Usage: npx tsx bench/checkout.ts [--runs 7]
 */
import os from "node:os";
import { execFileSync } from "node:child_process";
import { performance } from "node:perf_hooks";
import type { Page } from "playwright-core";
import { launchChromium } from "../test/helpers/browser";
import { createMerchant, invoicesOf, payWithInstructions, ROOT, startStack, waitUntil } from "../test/stack/harness";
import path from "node:path";

const USAGE = `Usage: npx tsx bench/checkout.ts [--runs R]

  --runs R   page loads per timing; the median is reported (default 7)
  --help     this text`;

if (process.argv.includes("--help")) {
  console.log(USAGE);
  process.exit(0);
}
const runsArg = process.argv.indexOf("--runs");
const RUNS = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 7;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} KB`;

interface Entry {
  url: string;
  type: string;
  wire: number;
  decoded: number;
}

async function weigh(page: Page, url: string): Promise<Entry[]> {
  const entries: Entry[] = [];
  const pending: Promise<void>[] = [];
  page.on("response", (response) => {
    pending.push(
      (async () => {
        const request = response.request();
        const type = request.resourceType();
        if (type === "eventsource") {
          entries.push({ url: response.url(), type, wire: 0, decoded: 0 });
          return;
        }
        const body = await response.body().catch(() => Buffer.alloc(0));
        const sizes = await request.sizes().catch(() => ({ responseBodySize: body.length }));
        entries.push({ url: response.url(), type, wire: sizes.responseBodySize, decoded: body.length });
      })(),
    );
  });
  await page.goto(url);
  await page.waitForSelector(".wallet-button, #no-wallet");
  await page.waitForLoadState("networkidle").catch(() => undefined);
  await Promise.all(pending);
  return entries;
}

async function main() {
  console.log(`checkout benchmark — ${new Date().toISOString()} — ${os.cpus()[0]?.model ?? "cpu"} × ${os.cpus().length}, node ${process.version}`);
  console.log("building the checkout (vite)…");
  execFileSync(path.join(ROOT, "node_modules", ".bin", "vite"), ["build", "--config", "checkout/vite.config.mts"], { cwd: ROOT, stdio: "inherit" });
  console.log("starting the stack (Hardhat node, Ponder, API)…");
  const stack = await startStack();
  const browser = await launchChromium();
  try {
    const chain = stack.chains[0];
    const merchant = await createMerchant(stack, 1, "Bench Books");
    const invoices = invoicesOf(stack, merchant, chain);
    const invoice = await invoices.create({ amount: "12.50", currency: "USDC", description: "A book", lineItems: [{ description: "Book", quantity: 1, unitAmount: "12.50" }] });
    const checkoutUrl = `${stack.apiUrl}/pay/${invoice.id}`;

    // 1. weight
    const context = await browser.context();
    const page = await context.newPage();
    const entries = await weigh(page, checkoutUrl);
    await context.close();
    console.log("\n1. weight of /pay/{id} (uncached, gzip accepted)");
    console.log("| request | type | on the wire | decoded |\n|---|---|---:|---:|");
    for (const entry of entries) console.log(`| ${new URL(entry.url).pathname.replace(invoice.id, "{id}")} | ${entry.type} | ${kb(entry.wire)} | ${kb(entry.decoded)} |`);
    const sum = (filter: (entry: Entry) => boolean, field: "wire" | "decoded") => entries.filter(filter).reduce((total, entry) => total + entry[field], 0);
    const isType = (...types: string[]) => (entry: Entry) => types.includes(entry.type);
    console.log(`| **total: ${entries.length} requests** | | **${kb(sum(() => true, "wire"))}** | **${kb(sum(() => true, "decoded"))}** |`);
    console.log(`  HTML ${kb(sum(isType("document"), "decoded"))}, JS ${kb(sum(isType("script"), "decoded"))} (${kb(sum(isType("script"), "wire"))} gzip), CSS ${kb(sum(isType("stylesheet"), "decoded"))}, images ${kb(sum(isType("image"), "decoded"))}`);

    // 2. time to a usable page, beside /health
    const timings = { health: [] as number[], status: [] as number[], wallet: [] as number[] };
    for (let run = 0; run < RUNS; run += 1) {
      const fresh = await browser.context();
      const tab = await fresh.newPage();
      let started = performance.now();
      await tab.goto(`${stack.apiUrl}/health`);
      timings.health.push(performance.now() - started);
      started = performance.now();
      await tab.goto(checkoutUrl, { waitUntil: "commit" });
      await tab.waitForSelector('#status[data-status="open"]:not(:empty)');
      timings.status.push(performance.now() - started);
      await tab.waitForSelector(".wallet-button, #no-wallet");
      timings.wallet.push(performance.now() - started);
      await fresh.close();
    }
    console.log(`\n2. time to a usable page, median of ${RUNS} cold loads (new browser context each)`);
    console.log("| figure | ms |\n|---|---:|");
    console.log(`| baseline: GET /health in the same browser | ${median(timings.health).toFixed(0)} |`);
    console.log(`| /pay/{id}: status shown | ${median(timings.status).toFixed(0)} |`);
    console.log(`| /pay/{id}: wallet list settled (no wallet: 400 ms legacy wait) | ${median(timings.wallet).toFixed(0)} |`);

    // 3. time to a live update
    const updates = { page: [] as number[], api: [] as number[] };
    for (let run = 0; run < Math.min(RUNS, 5); run += 1) {
      const next = await invoices.create({ amount: "0.001", currency: "ETH" });
      const live = await browser.context();
      const tab = await live.newPage();
      await tab.goto(`${stack.apiUrl}/pay/${next.id}`);
      await tab.waitForSelector('#status[data-status="open"]');
      const apiSaw = waitUntil("the API to see it paid", async () => (await invoices.read(next.id)).status === "paid").then(() => performance.now());
      const pageSaw = tab.waitForSelector('#status[data-status="paid"]', { timeout: 60_000 }).then(() => performance.now());
      await payWithInstructions(chain, 5, next.payment.evm!.transactions);
      const mined = performance.now();
      updates.api.push((await apiSaw) - mined);
      updates.page.push((await pageSaw) - mined);
      await live.close();
    }
    console.log(`\n3. payment mined → status "paid", median of ${updates.page.length}`);
    console.log("| figure | ms |\n|---|---:|");
    console.log(`| baseline: the API polled every 100 ms sees it | ${median(updates.api).toFixed(0)} |`);
    console.log(`| the open page shows it (Server-Sent Events, no reload) | ${median(updates.page).toFixed(0)} |`);
  } finally {
    await browser.close();
    await stack.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
