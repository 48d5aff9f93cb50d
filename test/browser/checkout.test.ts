/**
 * The hosted checkout in a real browser: Debian's Chromium driven by playwright-core, a test wallet announced
 * over EIP-6963 that signs with a Hardhat account, and the whole stack (Hardhat node, Ponder, the API) behind
 * the page. Each state the customer can see is saved as a screenshot under test-output/checkout/.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { expect } from "chai";
import type { Page } from "playwright-core";
import QRCode from "qrcode";
import { erc20Abi, getAddress, type Address, type Hex } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { invoiceFromJson } from "../../contracts/invoice";
import { chromiumMissing, chromiumPath, launchChromium, type LaunchedBrowser } from "../helpers/browser";
import {
  ROOT,
  createMerchant,
  invoicesOf,
  mintStablecoin,
  payWithInstructions,
  startStack,
  testAccount,
  timeTravel,
  usdc,
  type LocalChain,
  type Stack,
  type TestMerchant,
} from "../stack/harness";
import { RegtestChain } from "../../scripts/lib/bitcoin-regtest/chain";
import { startEsplora, type BitcoinServer } from "../../scripts/lib/bitcoin-regtest/servers";
import { testWallet } from "../../scripts/lib/bitcoin-regtest/wallet";
import { installTestWallet, type TestWallet } from "./wallet";

const SHOTS = path.join(ROOT, "test-output", "checkout");

describe("hosted checkout in Chromium", function () {
  this.timeout(240_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let browser: LaunchedBrowser;
  let invoices: ReturnType<typeof invoicesOf>;
  // Bitcoin: a simulated regtest chain served as an Esplora API (the one test double: no Bitcoin node here).
  const bitcoin = new RegtestChain({ wallClock: true });
  let esplora: BitcoinServer;

  before(async function () {
    if (!chromiumPath()) throw new Error(chromiumMissing());
    mkdirSync(SHOTS, { recursive: true });
    // The page's script is built from checkout/ (and the SDK's source): build it as `npm run build` does.
    execFileSync(path.join(ROOT, "node_modules", ".bin", "vite"), ["build", "--config", "checkout/vite.config.mts"], { cwd: ROOT, stdio: "pipe" });
    bitcoin.fund();
    esplora = await startEsplora(bitcoin);
    stack = await startStack({ env: { BITCOIN_NETWORK: "regtest", BITCOIN_ESPLORA_URL: esplora.url, BITCOIN_POLL_MS: "200" } });
    chain = stack.chains[0];
    merchant = await createMerchant(stack, 1, "Lantern Books");
    invoices = invoicesOf(stack, merchant, chain);
    browser = await launchChromium();
  });

  after(async function () {
    await browser?.close();
    await stack?.stop();
    await esplora?.close();
  });

  /** A page with a test wallet on Hardhat account `index`; `chainId` is the network the wallet starts on. */
  async function open(invoiceId: string, walletIndex: number, options: { chainId?: number; locale?: string; viewport?: { width: number; height: number }; isMobile?: boolean } = {}) {
    const context = await browser.context({ locale: options.locale, viewport: options.viewport, isMobile: options.isMobile, hasTouch: options.isMobile });
    const wallet = await installTestWallet(context, { rpcUrl: chain.rpcUrl, nodeChainId: chain.id, address: testAccount(walletIndex).address, chainId: options.chainId });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on("pageerror", (error) => errors.push(error.message));
    await page.goto(`${stack.apiUrl}/pay/${invoiceId}`);
    await page.waitForSelector("#status");
    // Set once: still there at the end proves the page updated without reloading.
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
    return { page, wallet, errors, close: () => context.close() };
  }

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const statusOf = (page: Page) => page.getAttribute("#status", "data-status");
  const waitForStatus = (page: Page, status: string) => page.waitForSelector(`#status[data-status="${status}"]`, { timeout: 60_000 });
  const sameDocument = (page: Page) => page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument === true);
  const sends = (wallet: TestWallet) => wallet.calls.filter((call) => call.method === "eth_sendTransaction").length;

  it("pays an ETH invoice with the wallet, by keyboard, and shows the receipt live", async function () {
    const invoice = await invoices.create({ amount: "0.25", currency: "ETH", description: "Two paperbacks", lineItems: [{ description: "Paperback", quantity: 2, unitAmount: "0.125" }] });
    const { page, wallet, errors, close } = await open(invoice.id, 5);
    try {
      expect(await page.textContent("h1")).to.contain("Lantern Books");
      expect(await page.textContent("#total")).to.equal("0.25 ETH");
      expect(await page.textContent(".items")).to.contain("Paperback");
      expect(await page.textContent("#countdown")).to.match(/Expires in \d+:\d\d/);
      await page.waitForSelector('.wallet-button[data-wallet="dev.chainbill.testwallet"]');
      expect(await statusOf(page)).to.equal("open");
      await shot(page, "01-open-eth");
      // Keyboard only: tab to the wallet button and press Enter.
      for (let step = 0; step < 20; step += 1) {
        await page.keyboard.press("Tab");
        if (await page.evaluate(() => document.activeElement?.classList.contains("wallet-button"))) break;
      }
      expect(await page.evaluate(() => document.activeElement?.textContent)).to.contain("Test Wallet");
      await page.keyboard.press("Enter");
      await waitForStatus(page, "paid");
      expect(sends(wallet)).to.equal(1);
      expect(await page.isVisible("#receipt")).to.equal(true);
      const tx = await page.textContent("#receipt-tx");
      expect(tx).to.match(/^0x[0-9a-f]{64}$/);
      expect(await page.isHidden("#pay")).to.equal(true);
      expect(await sameDocument(page)).to.equal(true);
      const api = await invoices.read(invoice.id);
      expect(api.checkout.url).to.equal(`/pay/${invoice.id}`); // what the merchant sends the customer to
      expect(api.status).to.equal("paid");
      expect(api.paidTransaction).to.equal(tx);
      expect(getAddress(api.payer!)).to.equal(testAccount(5).address);
      await shot(page, "02-paid-eth-receipt");
      expect(errors).to.deep.equal([]);
    } finally {
      await close();
    }
  });

  it("pays USDC with a permit: one signature and one transaction", async function () {
    await mintStablecoin(chain, 6, usdc(100));
    const invoice = await invoices.create({ amount: "12.50", currency: "USDC" });
    const { page, wallet, close } = await open(invoice.id, 6);
    try {
      await page.click(".wallet-button");
      await waitForStatus(page, "paid");
      expect(wallet.calls.filter((call) => call.method === "eth_signTypedData_v4")).to.have.length(1);
      expect(sends(wallet)).to.equal(1);
      expect((await invoices.read(invoice.id)).status).to.equal("paid");
      await shot(page, "03-paid-usdc-permit");
    } finally {
      await close();
    }
  });

  it("pays USDC with approve + pay when the wallet cannot sign a permit", async function () {
    await mintStablecoin(chain, 7, usdc(100));
    const invoice = await invoices.create({ amount: "7.25", currency: "USDC" });
    const { page, wallet, close } = await open(invoice.id, 7);
    try {
      wallet.unsupported.add("eth_signTypedData_v4");
      await page.click(".wallet-button");
      await waitForStatus(page, "paid");
      expect(sends(wallet)).to.equal(2); // approve, then pay
      expect((await invoices.read(invoice.id)).status).to.equal("paid");
      await shot(page, "04-paid-usdc-approve");
    } finally {
      await close();
    }
  });

  it("asks a wallet on the wrong network to switch; says what to do when it refuses", async function () {
    const invoice = await invoices.create({ amount: "0.01", currency: "ETH" });
    const { page, wallet, close } = await open(invoice.id, 8, { chainId: 1 });
    try {
      wallet.allowSwitch = false;
      await page.click(".wallet-button");
      await page.waitForSelector("#wallet-error:not(:empty)");
      expect(await page.textContent("#wallet-error")).to.contain("did not switch to Local chain");
      expect(sends(wallet)).to.equal(0);
      expect(await statusOf(page)).to.equal("open");
      await shot(page, "05-wrong-chain-refused");
      wallet.allowSwitch = true;
      await page.click(".wallet-button");
      await waitForStatus(page, "paid");
      expect(wallet.calls.some((call) => call.method === "wallet_switchEthereumChain")).to.equal(true);
      expect(wallet.chainId).to.equal(chain.id);
      expect(await page.textContent("#wallet-error")).to.equal("");
    } finally {
      await close();
    }
  });

  it("says nothing was sent when the customer rejects in the wallet", async function () {
    const invoice = await invoices.create({ amount: "0.02", currency: "ETH" });
    const { page, wallet, close } = await open(invoice.id, 9);
    try {
      wallet.reject.add("eth_sendTransaction");
      await page.click(".wallet-button");
      await page.waitForSelector("#wallet-error:not(:empty)");
      expect(await page.textContent("#wallet-error")).to.equal("You rejected the request in your wallet. Nothing was sent.");
      expect(await statusOf(page)).to.equal("open");
      expect(await page.isEnabled(".wallet-button")).to.equal(true);
      expect((await invoices.read(invoice.id)).status).to.equal("open");
      await shot(page, "06-rejected-in-wallet");
    } finally {
      await close();
    }
  });

  it("shows an underpaid transfer with the missing amount, then the top-up, live", async function () {
    await mintStablecoin(chain, 10, usdc(100));
    const invoice = await invoices.create({ amount: "20.00", currency: "USDC" });
    const { page, close } = await open(invoice.id, 10);
    try {
      const deposit = (await page.textContent("#transfer-address"))!.trim() as Address;
      expect(deposit).to.equal(invoice.payment.evm!.depositAddress);
      expect(await page.getAttribute("#transfer-uri", "href")).to.equal(invoice.payment.evm!.depositUri);
      // The QR code holds exactly the EIP-681 link.
      const qr = await (await fetch(`${stack.apiUrl}/pay/${invoice.id}/qr.svg`)).text();
      expect(qr).to.equal(await QRCode.toString(invoice.payment.evm!.depositUri!, { type: "svg", errorCorrectionLevel: "M", margin: 2 }));
      const token = chain.deployment.contracts.MockStablecoin!.address;
      const customer = chain.wallet(10);
      await chain.client.waitForTransactionReceipt({ hash: await customer.writeContract({ address: token, abi: erc20Abi, functionName: "transfer", args: [deposit, usdc("12.5")], chain: null }) });
      await waitForStatus(page, "underpaid");
      expect(await page.textContent("#status")).to.equal("Received 12.50 USDC: 7.50 USDC still missing. Send the rest to the same address.");
      await shot(page, "07-underpaid");
      await chain.client.waitForTransactionReceipt({ hash: await customer.writeContract({ address: token, abi: erc20Abi, functionName: "transfer", args: [deposit, usdc("7.5")], chain: null }) });
      await waitForStatus(page, "pending");
      await shot(page, "08-topped-up-pending");
      // Anyone may sweep (the keeper does it in production): the invoice becomes paid.
      const evm = invoice.payment.evm!;
      await chain.client.waitForTransactionReceipt({
        hash: await chain.wallet(0).writeContract({ address: evm.contract as Address, abi: billingEscrowAbi, functionName: "sweepDeposit", args: [invoiceFromJson(evm.invoice), evm.signature as Hex], chain: null }),
      });
      await waitForStatus(page, "paid");
      expect(await sameDocument(page)).to.equal(true);
      await shot(page, "09-paid-after-transfer");
    } finally {
      await close();
    }
  });

  it("shows a partial and then a full refund live on the receipt", async function () {
    const invoice = await invoices.create({ amount: "0.04", currency: "ETH" });
    await payWithInstructions(chain, 17, invoice.payment.evm!.transactions);
    const { page, close } = await open(invoice.id, 17);
    try {
      await waitForStatus(page, "paid");
      const refund = async (amount?: string) => {
        const response = await stack.api("POST", `/v1/invoices/${invoice.id}/refund`, { key: merchant.apiKey, body: amount ? { amount } : {} });
        expect(response.status).to.equal(202); // accepted: mined, and shown once indexed
      };
      await refund("0.01");
      await waitForStatus(page, "partially_refunded");
      expect(await page.textContent("#status")).to.equal("Paid, then partly refunded: 0.01 ETH went back to you.");
      await shot(page, "24-partially-refunded");
      await refund();
      await waitForStatus(page, "refunded");
      expect(await page.textContent("#status")).to.equal("Refunded: 0.04 ETH went back to you.");
      expect(await page.isVisible("#receipt")).to.equal(true);
      expect(await sameDocument(page)).to.equal(true);
      await shot(page, "25-refunded");
    } finally {
      await close();
    }
  });

  it("turns to expired while the page is open", async function () {
    const invoice = await invoices.create({ amount: "0.03", currency: "ETH", expiresInSeconds: 120 });
    const { page, close } = await open(invoice.id, 11);
    try {
      expect(await page.textContent("#countdown")).to.match(/Expires in [12]:\d\d/);
      await timeTravel(chain, 180);
      await waitForStatus(page, "expired");
      expect(await page.textContent("#countdown")).to.equal("This invoice has expired.");
      expect(await page.isHidden("#pay")).to.equal(true);
      expect(await sameDocument(page)).to.equal(true);
      await shot(page, "10-expired");
    } finally {
      await close();
    }
  });

  it("speaks Simplified Chinese from Accept-Language, and switches to English", async function () {
    const invoice = await invoices.create({ amount: "1.00", currency: "USDC", description: "茶叶 250g" });
    const { page, close } = await open(invoice.id, 12, { locale: "zh-CN" });
    try {
      expect(await page.getAttribute("html", "lang")).to.equal("zh-CN");
      expect(await page.textContent("h1")).to.equal("Lantern Books 的账单");
      expect(await page.textContent("#status")).to.equal("等待您付款。");
      expect(await page.textContent("#transfer-heading")).to.equal("转账付款");
      await shot(page, "11-zh-CN");
      await page.click('nav.lang a[hreflang="en"]');
      await page.waitForSelector('html[lang="en"]');
      expect(await page.textContent("#status")).to.equal("Waiting for your payment.");
    } finally {
      await close();
    }
  });

  it("fits a phone's screen", async function () {
    const invoice = await invoices.create({ amount: "3.00", currency: "USDC", description: "A long description that has to wrap on a small screen without pushing anything sideways" });
    const { page, close } = await open(invoice.id, 13, { viewport: { width: 375, height: 740 }, isMobile: true });
    try {
      await page.waitForSelector(".wallet-button");
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      expect(overflow).to.be.at.most(0);
      const button = await page.locator(".wallet-button").boundingBox();
      expect(button!.height).to.be.at.least(44);
      await shot(page, "12-phone");
    } finally {
      await close();
    }
  });

  it("takes Bitcoin by BIP21 QR code and address, with confirmations, live", async function () {
    const setup = await stack.api("PUT", "/v1/merchants/me/bitcoin", { key: merchant.apiKey, body: { key: testWallet(41).descriptor, confirmations: 2 } });
    expect(setup.status, await setup.text()).to.equal(200);
    const created = await stack.api("POST", "/v1/invoices", { key: merchant.apiKey, headers: { "Idempotency-Key": "btc-checkout-1" }, body: { amount: "0.0015", currency: "BTC", description: "Signed first edition" } });
    const invoice = (await created.json()) as Awaited<ReturnType<typeof invoices.create>>;
    expect(created.status).to.equal(201);
    const btc = invoice.payment.btc!;
    const { page, close } = await open(invoice.id, 14);
    try {
      expect(await page.isVisible("#wallet-section")).to.equal(false); // no browser wallet for Bitcoin
      expect(await page.textContent("#transfer-address")).to.equal(btc.address);
      expect(await page.getAttribute("#transfer-uri", "href")).to.equal(btc.uri);
      expect(btc.uri).to.match(/^bitcoin:bcrt1[0-9a-z]+\?amount=0\.0015/);
      const qr = await (await fetch(`${stack.apiUrl}/pay/${invoice.id}/qr.svg`)).text();
      expect(qr).to.equal(await QRCode.toString(btc.uri, { type: "svg", errorCorrectionLevel: "M", margin: 2 }));
      expect(await page.textContent("#network")).to.equal("Bitcoin regtest");
      await shot(page, "14-bitcoin-open");
      const payment = bitcoin.pay(btc.address, 150_000n);
      await waitForStatus(page, "pending");
      await shot(page, "15-bitcoin-detected");
      bitcoin.mine();
      await waitForStatus(page, "paid");
      await page.waitForFunction(() => document.getElementById("confirmations")?.textContent === "Confirmations: 1 of 2");
      bitcoin.mine();
      await page.waitForFunction(() => document.getElementById("confirmations")?.textContent === "Confirmations: 2 of 2");
      expect(await page.textContent("#receipt-tx")).to.equal(payment.txid);
      expect(await sameDocument(page)).to.equal(true);
      await shot(page, "16-bitcoin-paid");
    } finally {
      await close();
    }
  });

  /** A payment link through the API; returns its id. */
  async function createLink(body: Record<string, unknown>): Promise<string> {
    const response = await stack.api("POST", "/v1/payment-links", { key: merchant.apiKey, headers: { "Idempotency-Key": `link-${Math.random()}` }, body: { chainId: chain.id, ...body } });
    const text = await response.text();
    expect(response.status, text).to.equal(201);
    return (JSON.parse(text) as { id: string }).id;
  }

  it("takes a donation through a link: the customer's amount (refused below the minimum), then pays in USDC", async function () {
    await mintStablecoin(chain, 15, usdc(100));
    const linkId = await createLink({ name: "Tip the author", price: { type: "customer_chosen", currency: "USD", minimum: "2.00" }, accept: ["USDC", "ETH"], successUrl: "https://books.example/thanks" });
    const context = await browser.context();
    const wallet = await installTestWallet(context, { rpcUrl: chain.rpcUrl, nodeChainId: chain.id, address: testAccount(15).address });
    try {
      const page = await context.newPage();
      await page.goto(`${stack.apiUrl}/l/${linkId}`);
      await page.waitForSelector("#link-form");
      expect(await page.textContent("h1")).to.equal("Tip the author");
      expect(await page.textContent("#link-amount-hint")).to.equal("At least 2.00 USD");
      await page.fill("#link-amount", "1.99");
      await page.selectOption("#link-currency", { label: "USDC" });
      await page.click("#link-continue");
      await page.waitForSelector("#link-error:not(:empty)");
      expect(await page.textContent("#link-error")).to.match(/2(\.00)? USD/);
      await shot(page, "17-donation-below-minimum");
      await page.fill("#link-amount", "5.00");
      await shot(page, "18-donation-form");
      await Promise.all([page.waitForURL(/\/pay\/inv_/), page.click("#link-continue")]);
      await page.waitForSelector(".wallet-button");
      expect(await page.textContent("#total")).to.equal("5.00 USDC"); // the mock USDC/USD feed is at 1.00
      expect(await page.textContent("#fiat")).to.contain("5.00 USD");
      await shot(page, "19-donation-checkout");
      await page.click(".wallet-button");
      await waitForStatus(page, "paid");
      expect(sends(wallet)).to.equal(1); // permit + pay
      expect(await page.getAttribute("#return-success", "href")).to.equal("https://books.example/thanks");
      await shot(page, "20-donation-paid");
      const invoiceId = page.url().split("/pay/")[1].split("?")[0];
      const invoice = await invoices.read(invoiceId);
      expect(invoice).to.include({ status: "paid", amount: "5.00", currency: "USDC", paymentLinkId: linkId });
    } finally {
      await context.close();
    }
  });

  it("prices in USD and pays in ETH at the locked rate, shown on the checkout and recorded on the invoice", async function () {
    const linkId = await createLink({ name: "Annual membership", price: { type: "fixed", amount: "30.00", currency: "USD" }, accept: ["ETH", "USDC"], singleUse: true, cancelUrl: "https://books.example/cart" });
    const context = await browser.context();
    const wallet = await installTestWallet(context, { rpcUrl: chain.rpcUrl, nodeChainId: chain.id, address: testAccount(16).address });
    try {
      const page = await context.newPage();
      await page.goto(`${stack.apiUrl}/l/${linkId}`);
      await page.waitForSelector("#link-form");
      expect(await page.textContent("#link-price")).to.equal("30.00 USD each");
      await page.selectOption("#link-currency", { label: "ETH" });
      await Promise.all([page.waitForURL(/\/pay\/inv_/), page.click("#link-continue")]);
      await page.waitForSelector(".wallet-button");
      const invoiceId = page.url().split("/pay/")[1].split("?")[0];
      const invoice = await invoices.read(invoiceId);
      const price = invoice.price!;
      expect(price).to.include({ fiatCurrency: "USD", fiatAmount: "30.00" });
      // 30.00 USD at the mock ETH/USD 3,000: 0.01 ETH, rounded up to the wei.
      expect(await page.textContent("#total")).to.equal(`${invoice.amount} ETH`);
      expect(invoice.amount).to.equal("0.01");
      expect(await page.textContent("#fiat")).to.equal(`30.00 USD at 1 ETH = ${price.rate} USD`);
      expect(await page.textContent("#rate-lock")).to.match(/^Rate locked until /);
      expect(await page.getAttribute("#return-cancel", "href")).to.equal("https://books.example/cart");
      await shot(page, "21-fiat-usd-in-eth");
      await page.click(".wallet-button");
      await waitForStatus(page, "paid");
      expect(sends(wallet)).to.equal(1);
      await shot(page, "22-fiat-paid");
      // A single-use link is used up once paid.
      await page.goto(`${stack.apiUrl}/l/${linkId}`);
      await page.waitForSelector("#link-inactive");
      expect(await page.textContent("#link-inactive")).to.equal("This payment link has already been paid.");
    } finally {
      await context.close();
    }
  });

  it("sells a quantity through a link priced in USDC directly", async function () {
    const linkId = await createLink({ name: "Bookmark", price: { type: "fixed", amount: "4.00", currency: "USDC" }, quantity: { maximum: 5 } });
    const context = await browser.context({ locale: "zh-CN" });
    try {
      const page = await context.newPage();
      await page.goto(`${stack.apiUrl}/l/${linkId}`);
      await page.waitForSelector("#link-form");
      expect(await page.textContent("label[for=link-quantity]")).to.equal("数量");
      await page.fill("#link-quantity", "6");
      await page.click("#link-continue");
      await page.waitForSelector("#link-error:not(:empty)");
      await page.fill("#link-quantity", "3");
      await shot(page, "23-quantity-zh-CN");
      await Promise.all([page.waitForURL(/\/pay\/inv_.*lang=zh-CN/), page.click("#link-continue")]);
      await page.waitForSelector("#status");
      expect(await page.getAttribute("html", "lang")).to.equal("zh-CN");
      expect(await page.textContent("#total")).to.equal("12.00 USDC");
      expect(await page.textContent(".items")).to.contain("× 3");
      expect(await page.textContent(".items")).to.contain("4.00 USDC");
    } finally {
      await context.close();
    }
  });

  it("opens the checkout from a merchant's page with the one-line embed", async function () {
    const invoice = await invoices.create({ amount: "4.00", currency: "USDC" });
    // The merchant's page, on another origin, with nothing but the embed line.
    const merchantPage = `<!doctype html><html><body><h1>Shop</h1><script src="${stack.apiUrl}/embed.js" data-invoice="${invoice.id}" data-label="Pay 4 USDC"></script></body></html>`;
    const server = http.createServer((request, response) => response.writeHead(200, { "content-type": "text/html" }).end(merchantPage));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const context = await browser.context();
    try {
      const page = await context.newPage();
      await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
      const button = page.locator("chainbill-pay").getByRole("button", { name: "Pay 4 USDC" });
      await button.waitFor();
      await shot(page, "13-embed-button");
      const [checkout] = await Promise.all([context.waitForEvent("page"), button.click()]);
      await checkout.waitForLoadState();
      expect(checkout.url()).to.equal(`${stack.apiUrl}/pay/${invoice.id}`);
      await checkout.waitForSelector("#status");
      expect(await checkout.getAttribute("#status", "data-status")).to.equal("open");
      // Opened without a reference back to the merchant's window.
      expect(await checkout.evaluate(() => window.opener)).to.equal(null);
    } finally {
      await context.close();
      server.close();
    }
  });

  it("answers an unknown invoice with a 404 problem and serves only known assets", async function () {
    const missing = await fetch(`${stack.apiUrl}/pay/inv_doesnotexist0000`);
    expect(missing.status).to.equal(404);
    expect(missing.headers.get("content-type")).to.contain("application/problem+json");
    const traversal = await fetch(`${stack.apiUrl}/checkout/assets/..%2F..%2Fpackage.json`);
    expect(traversal.status).to.equal(404);
    const nul = await fetch(`${stack.apiUrl}/pay/inv_%00abc`);
    expect(nul.status).to.equal(400);
    const script = await fetch(`${stack.apiUrl}/checkout/assets/checkout.js`);
    expect(script.status).to.equal(200);
    expect(script.headers.get("content-type")).to.contain("javascript");
  });
});
