/**
 * Prices in fiat and payment links through the real stack (one Hardhat node with the deploy's
 * MockV3Aggregator feeds, Ponder, the API): a USD-priced invoice paid in ETH at the locked rate, a single-use
 * USD link, a donation link (customer-chosen amount with a minimum) and a EUR quantity link used through the
 * public endpoints and paid with the API's instructions; the statement in USD with the locked rate; link
 * listing with invoices and counts; deactivation; a USDC de-peg (USDC refused, ETH still priced); a stale feed;
 * and the attacker's cases (NUL bytes, huge, negative, zero, exponent and too precise amounts, concurrency on
 * a single-use link, rate limits per client and per link).
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { parseAbi } from "viem";
import { RegtestChain } from "../../scripts/lib/bitcoin-regtest/chain";
import { startEsplora, type BitcoinServer } from "../../scripts/lib/bitcoin-regtest/servers";
import { testWallet } from "../../scripts/lib/bitcoin-regtest/wallet";
import { createMerchant, mintStablecoin, payWithInstructions, startStack, timeTravel, usdc, waitUntil, type InvoiceJson, type LocalChain, type Stack, type TestMerchant } from "./harness";

const feedAbi = parseAbi(["function updateAnswer(int256 answer)", "function latestRoundData() view returns (uint80, int256, uint256, uint256, uint80)"]);
const LINK_PER_CLIENT = 6;
const LINK_PER_LINK = 12;

interface Link {
  id: string;
  url: string;
  accept: string[];
  active: boolean;
  stats?: { invoices: number; paid: number; open: number; totals: { currency: string; amount: string; amountBaseUnits: string; count: number }[] };
}
interface Problem {
  type: string;
  status: number;
  detail?: string;
  errors?: { field: string; message: string }[];
  reason?: string;
  pair?: string;
}

describe("stack: fiat prices and payment links", function () {
  this.timeout(300_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  const bitcoin = new RegtestChain({ wallClock: true });
  let esplora: BitcoinServer;
  let clientNumber = 0;
  /** Each use comes from its own client address (TRUST_PROXY), unless a test names one. */
  const nextClient = () => `198.51.100.${(clientNumber += 1)}`;

  const v1 = async <T>(method: string, route: string, body?: unknown, expected = method === "POST" && !route.endsWith("activate") ? 201 : 200): Promise<T> => {
    const response = await stack.api(method, route, { key: merchant.apiKey, body, headers: method === "POST" ? { "Idempotency-Key": randomUUID() } : {} });
    const text = await response.text();
    if (response.status !== expected) throw new Error(`${method} ${route} → ${response.status}: ${text}`);
    return JSON.parse(text) as T;
  };
  const v1Problem = async (method: string, route: string, body?: unknown): Promise<Problem> => {
    const response = await stack.api(method, route, { key: merchant.apiKey, body, headers: { "Idempotency-Key": randomUUID() } });
    expect(response.headers.get("content-type")).to.contain("application/problem+json");
    return (await response.json()) as Problem;
  };
  const use = async (linkId: string, body: unknown, client = nextClient()) => {
    const response = await stack.api("POST", `/links/${linkId}/invoices`, { body, headers: { "x-forwarded-for": client } });
    return { status: response.status, json: (await response.json()) as Record<string, unknown> & Problem };
  };
  const invoice = (id: string) => v1<InvoiceJson>("GET", `/v1/invoices/${id}`);
  const createLink = (body: Record<string, unknown>) => v1<Link>("POST", "/v1/payment-links", body);
  const feed = (pair: string) => chain.deployment.priceFeeds![pair].address;
  const setFeed = async (pair: string, answer: bigint) => {
    const hash = await chain.wallet(0).writeContract({ address: feed(pair), abi: feedAbi, functionName: "updateAnswer", args: [answer], chain: null });
    await chain.client.waitForTransactionReceipt({ hash });
    // Readings are cached per head block, and the API's head is cached for 0.5 s.
    await new Promise((resolve) => setTimeout(resolve, 600));
  };
  const payAndWait = async (id: string, payer = 4) => {
    const unpaid = await invoice(id);
    await payWithInstructions(chain, payer, unpaid.payment.evm!.transactions);
    await waitUntil(`invoice ${id} to be paid`, async () => (await invoice(id)).status === "paid");
  };

  before(async () => {
    bitcoin.fund();
    esplora = await startEsplora(bitcoin);
    stack = await startStack({
      env: {
        TRUST_PROXY: "true",
        LINK_INVOICES_PER_CLIENT_PER_MINUTE: String(LINK_PER_CLIENT),
        LINK_INVOICES_PER_LINK_PER_MINUTE: String(LINK_PER_LINK),
        BITCOIN_NETWORK: "regtest",
        BITCOIN_ESPLORA_URL: esplora.url,
        BITCOIN_POLL_MS: "200",
      },
    });
    chain = stack.chains[0];
    merchant = await createMerchant(stack, 1, "Fiat merchant");
    await v1("PUT", "/v1/merchants/me/bitcoin", { key: testWallet(42).descriptor });
  });

  after(async () => {
    await stack?.stop();
    await esplora?.close();
  });

  it("deploys MockV3Aggregator feeds on the local chain and records them", async () => {
    expect(Object.keys(chain.deployment.priceFeeds ?? {}).sort()).to.deep.equal(["BTC/USD", "CNY/USD", "ETH/USD", "EUR/USD", "USDC/USD"]);
    const [, answer] = await chain.client.readContract({ address: feed("ETH/USD"), abi: feedAbi, functionName: "latestRoundData" });
    expect(answer).to.equal(3_000n * 10n ** 8n);
  });

  it("shows and changes the merchant's fiat currency and rate lock (60 s – 24 h)", async () => {
    const me = await v1<{ settings: { fiatCurrency: string; rateLockSeconds: number } }>("GET", "/v1/merchants/me");
    expect(me.settings).to.include({ fiatCurrency: "USD", rateLockSeconds: 900 });
    const updated = await v1<typeof me>("PATCH", "/v1/merchants/me", { rateLockSeconds: 600 });
    expect(updated.settings.rateLockSeconds).to.equal(600);
    const tooShort = await v1Problem("PATCH", "/v1/merchants/me", { rateLockSeconds: 59 });
    expect(tooShort.status).to.equal(422);
    const unknown = await v1Problem("PATCH", "/v1/merchants/me", { fiatCurrency: "GBP" });
    expect(unknown.errors?.[0].field).to.equal("fiatCurrency");
  });

  let fiatInvoice: InvoiceJson;

  it("prices an invoice in USD paid in ETH: converted at the feed's rate, rounded up to the wei, locked for the merchant's window", async () => {
    const started = Date.now();
    fiatInvoice = await v1<InvoiceJson>("POST", "/v1/invoices", {
      chainId: chain.id,
      amount: "25.00",
      currency: "USD",
      payCurrency: "ETH",
      lineItems: [{ description: "Beans", quantity: 2, unitAmount: "12.50" }],
      successUrl: "https://shop.example/thanks",
    });
    const elapsed = Date.now() - started;
    // 25 / 3000 ETH = 8333333333333333.33… wei, rounded up.
    expect(fiatInvoice).to.include({ currency: "ETH", amountBaseUnits: "8333333333333334", amount: "0.008333333333333334" });
    const price = fiatInvoice.price!;
    expect(price).to.include({ fiatCurrency: "USD", fiatAmount: "25.00", rate: "3000", source: "chainlink:ETH/USD" });
    expect(price.feeds).to.have.length(1);
    expect(price.feeds[0]).to.include({ address: feed("ETH/USD"), roundId: "1", answer: "300000000000", decimals: 8 });
    expect(price.lockedUntil).to.equal(fiatInvoice.expiresAt);
    // Locked for the merchant's 600 s from the moment of the rate (the two chain-clock reads may straddle a second).
    expect(Date.parse(fiatInvoice.expiresAt) - Date.parse(price.observedAt)).to.be.within(599_000, 601_000);
    expect(fiatInvoice.checkout).to.deep.equal({ url: `/pay/${fiatInvoice.id}`, successUrl: "https://shop.example/thanks", cancelUrl: null });
    expect(fiatInvoice.lineItems).to.deep.equal([{ description: "Beans", quantity: 2, unitAmount: "12.50" }]);
    console.log(`      (priced and created a USD invoice in ${elapsed} ms)`);
  });

  it("refuses a fiat invoice without payCurrency, with line items that do not add up, or with an unsafe redirect", async () => {
    const missing = await v1Problem("POST", "/v1/invoices", { chainId: chain.id, amount: "25.00", currency: "USD" });
    expect(missing.status).to.equal(422);
    expect(missing.errors?.[0].field).to.equal("payCurrency");
    expect(missing.errors?.[0].message).to.contain("single-use payment link");
    const items = await v1Problem("POST", "/v1/invoices", { chainId: chain.id, amount: "25.00", currency: "EUR", payCurrency: "USDC", lineItems: [{ description: "x", quantity: 1, unitAmount: "24.99" }] });
    expect(items.errors?.[0]).to.deep.equal({ field: "lineItems", message: "add up to 24.99 EUR, not the invoice amount 25.00 EUR (line items of a fiat invoice are in EUR)" });
    const precise = await v1Problem("POST", "/v1/invoices", { chainId: chain.id, amount: "25.001", currency: "USD", payCurrency: "ETH" });
    expect(precise.errors?.[0]).to.deep.include({ field: "amount" });
    const redirect = await v1Problem("POST", "/v1/invoices", { chainId: chain.id, amount: "1", currency: "USDC", successUrl: "http://shop.example/thanks" });
    expect(redirect.errors?.[0].field).to.equal("successUrl");
    const pay = await v1Problem("POST", "/v1/invoices", { chainId: chain.id, amount: "1", currency: "USDC", payCurrency: "ETH" });
    expect(pay.errors?.[0].field).to.equal("payCurrency");
  });

  it("values a token-priced invoice in the merchant's currency at creation (no fiat amount)", async () => {
    const created = await v1<InvoiceJson>("POST", "/v1/invoices", { chainId: chain.id, amount: "10", currency: "USDC" });
    expect(created.price).to.include({ fiatCurrency: "USD", fiatAmount: null, rate: "1", source: "chainlink:USDC/USD(peg 1:1)", lockedUntil: null });
  });

  let single: Link;
  let singleInvoiceId: string;

  it("a single-use USD link: one open invoice at a time, the same one again in the same currency, 409 in another, 410 once paid", async () => {
    single = await createLink({ name: "Invoice #1042", price: { type: "fixed", amount: "25.00", currency: "USD" }, singleUse: true, cancelUrl: "https://shop.example/cart" });
    expect(single.accept).to.deep.equal(["ETH", "USDC", "BTC"]);
    expect(single.url).to.equal(`${stack.apiUrl}/l/${single.id}`);
    const page = (await (await stack.api("GET", `/links/${single.id}`)).json()) as Record<string, unknown>;
    expect(page).to.deep.equal({
      id: single.id,
      name: "Invoice #1042",
      description: null,
      merchant: { name: "Fiat merchant" },
      pricing: "fixed",
      currency: "USD",
      amount: "25.00",
      minimum: null,
      maximum: null,
      maxQuantity: 1,
      accept: [
        { currency: "ETH", chainId: chain.id, decimals: 18 },
        { currency: "USDC", chainId: chain.id, decimals: 6 },
        { currency: "BTC", chainId: null, decimals: 8 },
      ],
      active: true,
      singleUse: true,
      used: false,
    });
    const first = await use(single.id, { currency: "ETH", chainId: chain.id });
    expect(first.status).to.equal(201);
    singleInvoiceId = first.json.invoiceId as string;
    expect(first.json).to.include({ checkoutUrl: `/pay/${singleInvoiceId}`, currency: "ETH", amount: "0.008333333333333334", fiatAmount: "25.00", fiatCurrency: "USD", rate: "3000" });
    const again = await use(single.id, { currency: "eth" });
    expect(again.status).to.equal(200);
    expect(again.json.invoiceId).to.equal(singleInvoiceId);
    const other = await use(single.id, { currency: "USDC" });
    expect(other.status).to.equal(409);
    expect(other.json.type).to.equal("/problems/payment-link-busy");
    const created = await invoice(singleInvoiceId);
    expect(created).to.include({ paymentLinkId: single.id, description: "Invoice #1042" });
    expect(created.metadata).to.deep.equal({ paymentLinkId: single.id });
    expect(created.checkout).to.deep.equal({ url: `/pay/${created.id}`, successUrl: null, cancelUrl: "https://shop.example/cart" });
    expect(created.lineItems).to.deep.equal([{ description: "Invoice #1042", quantity: 1, unitAmount: "25.00" }]);

    await payAndWait(singleInvoiceId);
    const used = await use(single.id, { currency: "USDC" });
    expect(used.status).to.equal(410);
    expect(used.json.type).to.equal("/problems/payment-link-used");
    expect(((await (await stack.api("GET", `/links/${single.id}`)).json()) as { used: boolean }).used).to.equal(true);
  });

  it("two uses at once of a fresh single-use link make one invoice", async () => {
    const link = await createLink({ name: "Once", price: { type: "fixed", amount: "3.00", currency: "USD" }, singleUse: true });
    const [a, b] = await Promise.all([use(link.id, { currency: "USDC" }), use(link.id, { currency: "USDC" })]);
    expect([a.status, b.status].sort()).to.deep.equal([200, 201]);
    expect(a.json.invoiceId).to.equal(b.json.invoiceId);
    const [c, d] = await Promise.all([use(link.id, { currency: "ETH" }), use(link.id, { currency: "ETH" })]);
    expect([c.status, d.status]).to.deep.equal([409, 409]);
  });

  let donation: Link;

  it("a donation link: the customer's amount within [minimum, maximum], paid in USDC; attackers' amounts refused", async () => {
    donation = await createLink({ name: "Tip jar", description: "Thanks!", price: { type: "customer_chosen", currency: "USD", minimum: "5.00", maximum: "1000" }, accept: ["USDC", "ETH"] });
    expect(donation.accept).to.deep.equal(["USDC", "ETH"]);
    for (const amount of ["4.99", "1000.01", "5.001", "1e3", "-5", "0", "0.00", " 5", "10000000000000000000000000000000", "5,00"]) {
      const refused = await use(donation.id, { currency: "USDC", amount });
      expect(refused.status, amount).to.equal(422);
      expect(refused.json.errors?.[0].field, amount).to.equal("amount");
    }
    expect((await use(donation.id, { currency: "USDC", amount: 5 })).status).to.equal(422);
    expect((await use(donation.id, { currency: "USDC" })).json.errors?.[0].message).to.contain("at least 5.00 USD");
    expect((await use(donation.id, { currency: "USDC", amount: "10", quantity: 2 })).json.errors?.[0].field).to.equal("quantity");
    expect((await use(donation.id, { currency: "DAI", amount: "10" })).json.errors?.[0].message).to.equal("is not accepted by this link: pay in USDC, ETH");
    expect((await use(donation.id, { currency: "USDC", amount: "10", extra: 1 })).status).to.equal(422);
    const nul = await stack.api("POST", `/links/${donation.id}/invoices`, { body: '{"currency":"USD\\u0000C","amount":"10"}', headers: { "x-forwarded-for": nextClient() } });
    expect(nul.status).to.equal(422);
    expect(((await nul.json()) as Problem).errors).to.deep.equal([{ field: "currency", message: "contains a NUL character" }]);
    expect((await stack.api("GET", `/links/${donation.id}%00`)).status).to.equal(400);
    expect((await stack.api("GET", "/links/link_doesnotexist")).status).to.equal(404);

    const tip = await use(donation.id, { currency: "USDC", amount: "12.34", customer: { email: "fan@example.com" } });
    expect(tip.status).to.equal(201);
    expect(tip.json).to.include({ amount: "12.34", currency: "USDC", fiatAmount: "12.34", rate: "1" });
    await mintStablecoin(chain, 5, usdc(100));
    await payAndWait(tip.json.invoiceId as string, 5);
  });

  it("a EUR quantity link: unit price × quantity, converted through EUR/USD", async () => {
    const beans = await createLink({ name: "Beans", price: { type: "fixed", amount: "10.00", currency: "EUR" }, quantity: { maximum: 3 }, lineItemDescription: "Beans, 1 kg", metadata: { sku: "B1" } });
    expect((await use(beans.id, { currency: "ETH", quantity: 4 })).json.errors?.[0]).to.deep.equal({ field: "quantity", message: "must be at most 3" });
    expect((await use(beans.id, { currency: "ETH", amount: "1" })).json.errors?.[0].field).to.equal("amount");
    const bought = await use(beans.id, { currency: "ETH", quantity: 2 });
    expect(bought.status).to.equal(201);
    // 20 EUR at 3000 / 1.08 = 2777.777777777777777777 EUR per ETH: 0.0072 ETH and a little, rounded up.
    expect(bought.json).to.include({ fiatAmount: "20.00", fiatCurrency: "EUR", rate: "2777.777777777777777777", amount: "0.007200000000000001" });
    const created = await invoice(bought.json.invoiceId as string);
    expect(created.description).to.equal("Beans × 2");
    expect(created.lineItems).to.deep.equal([{ description: "Beans, 1 kg", quantity: 2, unitAmount: "10.00" }]);
    expect(created.metadata).to.deep.equal({ sku: "B1", paymentLinkId: beans.id });
    expect(created.price!.source).to.equal("chainlink:ETH/USD÷EUR/USD");
    expect(created.price!.feeds.map((entry) => entry.address)).to.deep.equal([feed("ETH/USD"), feed("EUR/USD")]);
  });

  it("validates links at creation", async () => {
    const direct = await v1Problem("POST", "/v1/payment-links", { name: "x", price: { type: "fixed", amount: "1", currency: "ETH" }, accept: ["USDC"] });
    expect(direct.errors?.[0].field).to.equal("accept");
    const btc = await v1Problem("POST", "/v1/payment-links", { name: "x", price: { type: "fixed", amount: "1", currency: "BTC" } });
    expect(btc.errors?.[0].field).to.equal("price.currency");
    const range = await v1Problem("POST", "/v1/payment-links", { name: "x", price: { type: "customer_chosen", currency: "USD", minimum: "10", maximum: "5" } });
    expect(range.errors?.[0].field).to.equal("price.maximum");
    const precise = await v1Problem("POST", "/v1/payment-links", { name: "x", price: { type: "fixed", amount: "1.001", currency: "USD" } });
    expect(precise.errors?.[0].field).to.equal("price.amount");
    const huge = await v1Problem("POST", "/v1/payment-links", { name: "x", price: { type: "fixed", amount: "1000000000000001", currency: "USD" } });
    expect(huge.errors?.[0].field).to.equal("price.amount");
    // Paid directly in USDC: the link's own currency, no conversion.
    const direct2 = await createLink({ name: "Sticker", price: { type: "fixed", amount: "2.5", currency: "USDC" } });
    const sticker = await use(direct2.id, { currency: "USDC" });
    expect(sticker.json).to.include({ amount: "2.50", currency: "USDC", fiatAmount: null });
  });

  it("BTC: a USD invoice paid in BTC, and a single-use USD link paid in BTC on the regtest chain, at the BTC/USD rate", async () => {
    const direct = await v1<InvoiceJson>("POST", "/v1/invoices", { amount: "25.00", currency: "USD", payCurrency: "BTC" });
    // $25 at 60000 USD/BTC = 41666.66… sats → 41667.
    expect(direct).to.include({ currency: "BTC", amountBaseUnits: "41667", chainId: null });
    expect(direct.price).to.include({ fiatAmount: "25.00", rate: "60000", source: "chainlink:BTC/USD" });
    expect(direct.price!.lockedUntil).to.equal(direct.expiresAt);
    const plain = await v1<InvoiceJson>("POST", "/v1/invoices", { amount: "0.001", currency: "BTC" });
    expect(plain.price).to.include({ fiatAmount: null, rate: "60000" });

    const link = await createLink({ name: "Invoice #77", price: { type: "fixed", amount: "25.00", currency: "USD" }, accept: ["BTC", "ETH"], singleUse: true });
    expect(link.accept).to.deep.equal(["BTC", "ETH"]);
    const first = await use(link.id, { currency: "BTC" });
    expect(first.status).to.equal(201);
    expect(first.json).to.include({ currency: "BTC", chainId: null, amount: "0.00041667", fiatAmount: "25.00", rate: "60000" });
    const id = first.json.invoiceId as string;
    expect((await use(link.id, { currency: "BTC" })).json.invoiceId).to.equal(id);
    expect((await use(link.id, { currency: "ETH" })).status).to.equal(409);
    const created = await invoice(id);
    expect(created).to.include({ paymentLinkId: link.id, description: "Invoice #77", amountBaseUnits: "41667" });
    bitcoin.pay(created.payment.btc!.address, 41_667n);
    bitcoin.mine();
    await waitUntil("the BTC invoice to be paid", async () => (await invoice(id)).status === "paid", 30_000);
    expect((await use(link.id, { currency: "ETH" })).status).to.equal(410);
    // The BTC statement values the payment at the invoice's locked rate: 41667 sats × 60000 = 25.0002 → 25.00.
    const statement = await v1<{ chains: { entries: Record<string, string | null>[] }[] }>("GET", "/v1/statements?currency=BTC");
    expect(statement.chains[0].entries.find((entry) => entry.invoiceId === id)).to.include({ amountBaseUnits: "41667", fiatValue: "25.00", fiatCurrency: "USD", fiatRate: "60000" });
    const csv = await (await stack.api("GET", "/v1/statements?currency=BTC&format=csv", { key: merchant.apiKey })).text();
    const row = csv.split("\r\n").find((line) => line.includes(id))!;
    expect(row.split(",")).to.have.length(16);
    expect(row.endsWith(`,25.00,USD,60000,${created.price!.observedAt}`)).to.equal(true);
    const detail = await v1<Link>("GET", `/v1/payment-links/${link.id}`);
    expect(detail.stats).to.deep.equal({ invoices: 1, paid: 1, open: 0, totals: [{ currency: "BTC", amount: "0.00041667", amountBaseUnits: "41667", count: 1 }] });
    // A reusable link holds at most five unpaid BTC invoices (the merchant's address gap limit).
    const tips = await createLink({ name: "Sats", price: { type: "fixed", amount: "1.00", currency: "USD" }, accept: ["BTC"] });
    for (let index = 0; index < 5; index += 1) expect((await use(tips.id, { currency: "BTC" })).status).to.equal(201);
    const sixth = await use(tips.id, { currency: "BTC" });
    expect(sixth.status).to.equal(429);
    expect(sixth.json.detail).to.contain("already has 5 unpaid BTC invoices");
  });

  it("creating a link is idempotent (Idempotency-Key required)", async () => {
    const body = { name: "Replay", price: { type: "fixed", amount: "1.00", currency: "USD" } };
    const key = randomUUID();
    const first = await stack.api("POST", "/v1/payment-links", { key: merchant.apiKey, body, headers: { "Idempotency-Key": key } });
    const second = await stack.api("POST", "/v1/payment-links", { key: merchant.apiKey, body, headers: { "Idempotency-Key": key } });
    expect([first.status, second.status]).to.deep.equal([201, 201]);
    expect(second.headers.get("idempotent-replayed")).to.equal("true");
    expect(((await second.json()) as Link).id).to.equal(((await first.json()) as Link).id);
    expect((await stack.api("POST", "/v1/payment-links", { key: merchant.apiKey, body })).status).to.equal(400);
  });

  it("lists links with their invoices and counts", async () => {
    const listed = await v1<{ data: Link[] }>("GET", "/v1/payment-links?limit=100");
    expect(listed.data.map((link) => link.id)).to.include.members([single.id, donation.id]);
    const detail = await v1<Link>("GET", `/v1/payment-links/${single.id}`);
    expect(detail.stats).to.deep.equal({ invoices: 1, paid: 1, open: 0, totals: [{ currency: "ETH", amount: "0.008333333333333334", amountBaseUnits: "8333333333333334", count: 1 }] });
    const ofLink = await v1<{ data: InvoiceJson[] }>("GET", `/v1/payment-links/${donation.id}/invoices`);
    expect(ofLink.data.map((entry) => entry.paymentLinkId)).to.deep.equal([donation.id]);
    const filtered = await v1<{ data: InvoiceJson[] }>("GET", `/v1/invoices?paymentLinkId=${single.id}`);
    expect(filtered.data.map((entry) => entry.id)).to.deep.equal([singleInvoiceId]);
    const paged = await v1<{ data: Link[]; nextCursor: string }>("GET", "/v1/payment-links?limit=1");
    const next = await v1<{ data: Link[] }>("GET", `/v1/payment-links?limit=1&cursor=${paged.nextCursor}`);
    expect(next.data[0].id).to.not.equal(paged.data[0].id);
  });

  it("the statement shows the fiat-priced invoice in USD at its locked rate, with totals, and in the CSV", async () => {
    await payAndWait(fiatInvoice.id);
    type EthStatement = { chains: { entries: Record<string, string | null>[]; fiat: { currency: string; complete: boolean; totals: Record<string, string> | null; entriesWithoutRate: number } }[] };
    // A statement's period ends at the latest indexed block's time, read when it is asked for: the block of a
    // payment the invoice already shows can still be a second ahead of it (Hardhat's clock runs ahead of the
    // wall clock when blocks come fast), so wait for the period to reach it.
    let statement: EthStatement | undefined;
    await waitUntil("the payment's block inside the statement's period", async () => {
      statement = await v1<EthStatement>("GET", "/v1/statements?currency=ETH");
      return statement.chains[0].entries.some((entry) => entry.invoiceId === fiatInvoice.id && entry.kind === "payment");
    }, 20_000);
    const [eth] = statement!.chains;
    const payment = eth.entries.find((entry) => entry.invoiceId === fiatInvoice.id && entry.kind === "payment")!;
    expect(payment).to.include({ amountBaseUnits: "8333333333333334", fiatValue: "25.00", fiatCurrency: "USD", fiatRate: "3000", fiatRateAt: fiatInvoice.price!.observedAt });
    expect(eth.fiat.currency).to.equal("USD");
    expect(eth.fiat.complete).to.equal(true);
    // The single-use link's $25 and this invoice's $25, both at 3000.
    expect(eth.fiat.totals).to.deep.include({ paid: "50.00" });
    const usdcStatement = await v1<{ chains: { entries: Record<string, string | null>[] }[] }>("GET", "/v1/statements?currency=USDC");
    expect(usdcStatement.chains[0].entries.find((entry) => entry.kind === "payment")).to.include({ amount: "12.34", fiatValue: "12.34", fiatRate: "1" });
    const csv = await (await stack.api("GET", "/v1/statements?currency=ETH&format=csv", { key: merchant.apiKey })).text();
    const [header, ...lines] = csv.trim().split("\r\n");
    expect(header.endsWith(",fiat_value,fiat_currency,fiat_rate,fiat_rate_at")).to.equal(true);
    expect(lines.find((line) => line.includes(fiatInvoice.id))!.endsWith(`,25.00,USD,3000,${fiatInvoice.price!.observedAt}`)).to.equal(true);
  });

  it("a deactivated link answers 410 until activated again (both audited)", async () => {
    const off = await v1<Link>("POST", `/v1/payment-links/${donation.id}/deactivate`);
    expect(off.active).to.equal(false);
    const refused = await use(donation.id, { currency: "USDC", amount: "6" });
    expect(refused.status).to.equal(410);
    expect(refused.json.type).to.equal("/problems/payment-link-inactive");
    expect(((await (await stack.api("GET", `/links/${donation.id}`)).json()) as { active: boolean }).active).to.equal(false);
    await v1<Link>("POST", `/v1/payment-links/${donation.id}/activate`);
    expect((await use(donation.id, { currency: "USDC", amount: "6" })).status).to.equal(201);
    const audit = await v1<{ data: { action: string; target: string }[] }>("GET", "/v1/audit-log?limit=20");
    expect(audit.data.map((entry) => `${entry.action} ${entry.target}`)).to.include.members([
      `POST /v1/payment-links/{id}/deactivate ${donation.id}`,
      `POST /v1/payment-links/{id}/activate ${donation.id}`,
    ]);
  });

  it("limits invoice creation per client address and per link", async () => {
    const link = await createLink({ name: "Popular", price: { type: "fixed", amount: "1.00", currency: "USD" } });
    const client = nextClient();
    const statuses: number[] = [];
    for (let index = 0; index <= LINK_PER_CLIENT; index += 1) statuses.push((await use(link.id, { currency: "USDC" }, client)).status);
    expect(statuses.slice(0, LINK_PER_CLIENT).every((status) => status === 201)).to.equal(true);
    const limited = await use(link.id, { currency: "USDC" }, client);
    expect(limited.status).to.equal(429);
    // The link made LINK_PER_CLIENT invoices; other clients fill it up to its own limit.
    const rest = await Promise.all(Array.from({ length: LINK_PER_LINK - LINK_PER_CLIENT }, () => use(link.id, { currency: "USDC" })));
    expect(rest.map((result) => result.status).every((status) => status === 201)).to.equal(true);
    const full = await use(link.id, { currency: "USDC" });
    expect(full.status).to.equal(429);
    expect(full.json.detail).to.contain(`created ${LINK_PER_LINK} invoices in the last minute`);
  });

  it("a USDC de-peg refuses USDC while ETH still prices", async () => {
    const link = await createLink({ name: "Peg", price: { type: "fixed", amount: "4.00", currency: "USD" } });
    await setFeed("USDC/USD", 97_000_000n);
    try {
      const refused = await use(link.id, { currency: "USDC" });
      expect(refused.status).to.equal(503);
      expect(refused.json).to.include({ type: "/problems/rate-unavailable", reason: "depeg", pair: "USDC/USD" });
      expect(refused.json.detail).to.contain("outside the peg band [0.98, 1.02]");
      expect((await use(link.id, { currency: "ETH" })).status).to.equal(201);
      // A token invoice in USDC is still created, only without a valuation.
      const plain = await v1<InvoiceJson>("POST", "/v1/invoices", { chainId: chain.id, amount: "1", currency: "USDC" });
      expect(plain.price).to.equal(null);
    } finally {
      await setFeed("USDC/USD", 100_000_000n);
    }
    expect((await use(link.id, { currency: "USDC" })).status).to.equal(201);
  });

  it("a stale feed is a clear 503 naming the feed; token invoices are still created", async () => {
    await timeTravel(chain, 86_400 + 61);
    const link = await createLink({ name: "Late", price: { type: "fixed", amount: "4.00", currency: "USD" } });
    const stale = await use(link.id, { currency: "ETH" });
    expect(stale.status).to.equal(503);
    expect(stale.json).to.include({ type: "/problems/rate-unavailable", reason: "stale", pair: "ETH/USD" });
    expect(stale.json.detail).to.match(/^No fresh ETH\/USD rate on chain 31337: ETH\/USD was last updated \d+ s ago .*its heartbeat is 86400 s, so answers older than 86460 s are stale\.$/);
    const direct = await v1Problem("POST", "/v1/invoices", { chainId: chain.id, amount: "4.00", currency: "USD", payCurrency: "ETH" });
    expect(direct.status).to.equal(503);
    const plain = await v1<InvoiceJson>("POST", "/v1/invoices", { chainId: chain.id, amount: "0.01", currency: "ETH" });
    expect(plain.price).to.equal(null);
    // A new round makes it fresh again.
    await setFeed("ETH/USD", 3_000n * 10n ** 8n);
    expect((await use(link.id, { currency: "ETH" })).status).to.equal(201);
  });
});
