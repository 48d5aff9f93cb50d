/**
 * BTC invoices end to end below the HTTP server: the invoice and Bitcoin routes on a real store, the watcher
 * reading a regtest chain through the Esplora client over loopback HTTP (and Bitcoin Core's JSON-RPC with
 * faults), real signed transactions, and the webhooks each change queues.
 */
import { OpenAPIHono } from "@hono/zod-openapi";
import { expect } from "chai";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { asc, eq } from "drizzle-orm";
import type { ApiDeps, AppEnv, MerchantRecord, Principal } from "../../api/env";
import { errorHandler } from "../../api/middleware";
import { invoiceRoutes } from "../../api/routes/invoices";
import { bitcoinRoutes } from "../../api/routes/bitcoin";
import { statementRoutes } from "../../api/routes/statements";
import { refundLinkRoutes } from "../../api/routes/refund-links";
import { refundLinkToken } from "../../api/bitcoin/refund-links";
import { auditLog } from "../../api/store/schema";
import { createInvoiceRows } from "../../api/invoices/rows";
import { openStore, type Store } from "../../api/store";
import { webhookEvents } from "../../api/store/schema";
import { createBitcoinCoreSource, createEsploraSource, type ChainSource } from "../../api/bitcoin/source";
import { createBitcoinWatcher, type BitcoinWatcher } from "../../api/bitcoin/watcher";
import type { BitcoinConfig } from "../../api/config";
import { RegtestChain, REGTEST } from "../../scripts/lib/bitcoin-regtest/chain";
import { startBitcoinCore, startEsplora, type BitcoinServer } from "../../scripts/lib/bitcoin-regtest/servers";
import { testWallet } from "../../scripts/lib/bitcoin-regtest/wallet";
import { recordingLogger } from "../unit/helpers/logger";
import { HDKey } from "@scure/bip32";
import { p2wpkh } from "@scure/btc-signer";

interface View {
  id: string;
  status: string;
  amount: string;
  currency: string;
  chainId: number | null;
  network: string;
  confirmations: number;
  confirmationsRequired: number;
  paidTransaction: string | null;
  refundedAmount: string;
  payment: { btc: { address: string; amountSats: string; uri: string; custody: string } };
  bitcoin: {
    receivedSats: string;
    dueSats: string;
    overpaidSats: string;
    paidLate: boolean;
    refundedSats: string;
    payments: { txid: string; status: string; late: boolean; removedReason: string | null; confirmations: number }[];
    refunds: { status: string }[];
  };
}

const SECRET = randomBytes(32);
const customerKey = HDKey.fromMasterSeed(randomBytes(32)).derive("m/84'/1'/0'/0/0");
const CUSTOMER = p2wpkh(customerKey.publicKey!, REGTEST).address!;

describe("bitcoin: BTC invoices on a regtest chain (routes, store, watcher, Esplora and Core clients)", function () {
  this.timeout(60_000);
  let directory: string;
  let store: Store;
  let chain: RegtestChain;
  let esplora: BitcoinServer;
  let source: ChainSource;
  let watcher: BitcoinWatcher;
  let accounts = 0;
  const config: BitcoinConfig = { network: "regtest", source: { kind: "esplora", url: "" }, pollMs: 1_000, addressReuseAfterSeconds: 0 };

  before(async function () {
    this.timeout(120_000);
    directory = mkdtempSync(path.join(tmpdir(), "chainbill-btc-"));
    store = await openStore({ directory });
    chain = new RegtestChain();
    chain.fund();
    esplora = await startEsplora(chain);
    source = createEsploraSource(esplora.url, { timeoutMs: 2_000 });
    watcher = createBitcoinWatcher({ db: store.db, source, network: "regtest", logger: recordingLogger().logger });
    await watcher.tick();
  });

  after(async () => {
    await watcher.stop();
    await esplora.close();
    await store.close();
    rmSync(directory, { recursive: true, force: true });
  });

  function appFor(merchantId: string) {
    const deps = {
      store,
      // Test blocks come every 600 s of chain time: invoices here outlive a few dozen of them.
      config: { bitcoin: config, defaultExpirySeconds: 30 * 86_400, operatorKeySecret: SECRET },
      bitcoin: { source, watcher },
      invoiceRows: createInvoiceRows(store.db),
      logger: recordingLogger().logger,
    } as unknown as ApiDeps;
    const principal: Principal = {
      kind: "merchant",
      merchant: { id: merchantId, name: "BTC shop", confirmationPolicy: {} } as unknown as MerchantRecord,
      apiKeyId: "key_btc",
      scopes: new Set(["merchant:read", "merchant:write", "invoices:read", "invoices:write", "statements:read"]),
    };
    const app = new OpenAPIHono<AppEnv>();
    app.use("*", async (c, next) => {
      c.set("requestId", "req_btc");
      c.set("principal", principal);
      await next();
    });
    app.route("/v1", invoiceRoutes(deps));
    app.route("/v1", bitcoinRoutes(deps));
    app.route("/v1", statementRoutes(deps));
    app.route("/", refundLinkRoutes(deps));
    app.onError(errorHandler(recordingLogger().logger));
    return async (method: string, url: string, body?: unknown) => {
      const headers: Record<string, string> = { "idempotency-key": randomUUID() };
      if (body !== undefined) headers["content-type"] = "application/json";
      const response = await app.request(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await response.text();
      return { status: response.status, body: (response.headers.get("content-type")?.includes("json") ? JSON.parse(text) : { text }) as Record<string, unknown> };
    };
  }

  /** A merchant with its own account of the test wallet, and its confirmation policy. */
  async function merchant(options: { confirmations?: number; gapLimit?: number; script?: "p2wpkh" | "p2tr" } = {}) {
    const id = `mer_${randomBytes(6).toString("hex")}`;
    const call = appFor(id);
    const wallet = testWallet(++accounts, options.script);
    const registered = await call("PUT", "/v1/merchants/me/bitcoin", { key: wallet.descriptor, confirmations: options.confirmations ?? 1, ...(options.gapLimit ? { gapLimit: options.gapLimit } : {}) });
    expect(registered.status, JSON.stringify(registered.body)).to.equal(200);
    const create = async (amount: string, extra: Record<string, unknown> = {}) => {
      const created = await call("POST", "/v1/invoices", { amount, currency: "BTC", ...extra });
      expect(created.status, JSON.stringify(created.body)).to.equal(201);
      return created.body as unknown as View;
    };
    const read = async (invoiceId: string) => (await call("GET", `/v1/invoices/${invoiceId}`)).body as unknown as View;
    const events = async () =>
      (await store.db.select().from(webhookEvents).where(eq(webhookEvents.merchantId, id)).orderBy(asc(webhookEvents.sequence))).map((event) => event.type);
    return { id, call, wallet, create, read, events, registered: registered.body };
  }

  const sats = (view: View) => BigInt(view.payment.btc.amountSats);
  const sync = () => watcher.tick();

  it("an exact payment: pending in the mempool, paid once mined, confirmed by the policy; the response says there is no escrow", async () => {
    const shop = await merchant({ confirmations: 2 });
    const invoice = await shop.create("0.0015", { description: "Coffee beans" });
    expect(invoice).to.include({ status: "open", currency: "BTC", chainId: null, network: "bip122:0f9188f13cb7b2c71f2a335e3a4fc328", confirmationsRequired: 2 });
    expect(invoice.payment.btc.address).to.match(/^bcrt1q/);
    expect(invoice.payment.btc).to.include({ amountSats: "150000", custody: "merchant_wallet" });
    expect(invoice.payment.btc.uri).to.equal(`bitcoin:${invoice.payment.btc.address}?amount=0.0015&label=BTC%20shop&message=Coffee%20beans`);

    const payment = chain.pay(invoice.payment.btc.address, sats(invoice));
    await sync();
    expect((await shop.read(invoice.id)).status).to.equal("pending");
    chain.mine();
    await sync();
    let view = await shop.read(invoice.id);
    expect(view).to.include({ status: "paid", confirmations: 1, paidTransaction: payment.txid });
    expect(await shop.events()).to.deep.equal(["invoice.payment_detected", "invoice.paid"]);
    chain.mine();
    await sync();
    view = await shop.read(invoice.id);
    expect(view.confirmations).to.equal(2);
    expect(await shop.events()).to.deep.equal(["invoice.payment_detected", "invoice.paid", "invoice.confirmed"]);
    await sync();
    expect(await shop.events(), "a pass with nothing new queues nothing").to.have.length(3);
  });

  it("policies 0 and 6: paid and confirmed from the mempool with 0; confirmed only six blocks deep with 6", async () => {
    const instant = await merchant({ confirmations: 0 });
    const careful = await merchant({ confirmations: 6 });
    const a = await instant.create("0.001");
    const b = await careful.create("0.001");
    chain.payMany([
      { address: a.payment.btc.address, amount: sats(a) },
      { address: b.payment.btc.address, amount: sats(b) },
    ]);
    await sync();
    expect((await instant.read(a.id)).status).to.equal("paid");
    expect(await instant.events()).to.deep.equal(["invoice.payment_detected", "invoice.paid", "invoice.confirmed"]);
    expect((await careful.read(b.id)).status).to.equal("pending");
    for (let block = 1; block <= 5; block += 1) {
      chain.mine();
      await sync();
    }
    expect((await careful.read(b.id)).confirmations).to.equal(5);
    expect(await careful.events()).to.deep.equal(["invoice.payment_detected", "invoice.paid"]);
    chain.mine();
    await sync();
    expect(await careful.events()).to.deep.equal(["invoice.payment_detected", "invoice.paid", "invoice.confirmed"]);
  });

  it("underpaid shows what is missing (and the URI asks for it); a top-up completes it; several payments are summed; an overpayment is flagged", async () => {
    const shop = await merchant();
    const invoice = await shop.create("0.002");
    chain.pay(invoice.payment.btc.address, 50_000n);
    chain.mine();
    await sync();
    let view = await shop.read(invoice.id);
    expect(view.status).to.equal("underpaid");
    expect(view.bitcoin).to.include({ receivedSats: "50000", dueSats: "150000" });
    expect(view.payment.btc.uri).to.contain("amount=0.0015");
    chain.pay(invoice.payment.btc.address, 100_000n);
    chain.pay(invoice.payment.btc.address, 60_000n);
    chain.mine();
    await sync();
    view = await shop.read(invoice.id);
    expect(view.status).to.equal("paid");
    expect(view.bitcoin).to.include({ receivedSats: "210000", dueSats: "0", overpaidSats: "10000", paidLate: false });
    expect(view.bitcoin.payments).to.have.length(3);
    const events = await shop.events();
    expect(events.filter((type) => type === "invoice.payment_detected")).to.have.length(3);
    expect(events).to.include.members(["invoice.underpaid", "invoice.paid", "invoice.confirmed"]);
  });

  it("a payment after expiry still counts, flagged late; the invoice first expired", async () => {
    const shop = await merchant();
    const invoice = await shop.create("0.001", { expiresInSeconds: 60 });
    chain.advanceTime(3_600);
    chain.mine();
    await sync();
    expect((await shop.read(invoice.id)).status).to.equal("expired");
    chain.pay(invoice.payment.btc.address, sats(invoice));
    chain.mine();
    await sync();
    const view = await shop.read(invoice.id);
    expect(view.status).to.equal("paid");
    expect(view.bitcoin.paidLate).to.equal(true);
    expect(view.bitcoin.payments[0].late).to.equal(true);
    expect(await shop.events()).to.deep.equal(["invoice.expired", "invoice.payment_detected", "invoice.paid", "invoice.confirmed"]);
  });

  it("an RBF replacement in the mempool removes the unconfirmed payment (and reverts a policy-0 payment)", async () => {
    const shop = await merchant({ confirmations: 0 });
    const invoice = await shop.create("0.001");
    const original = chain.pay(invoice.payment.btc.address, sats(invoice));
    await sync();
    expect((await shop.read(invoice.id)).status).to.equal("paid");
    chain.replace(original.txid, [{ address: CUSTOMER, amount: sats(invoice) }]);
    await sync();
    const view = await shop.read(invoice.id);
    expect(view.status).to.equal("open");
    expect(view.bitcoin.payments[0]).to.include({ txid: original.txid, status: "removed", removedReason: "replaced" });
    expect(await shop.events()).to.deep.equal(["invoice.payment_detected", "invoice.paid", "invoice.confirmed", "invoice.payment_reverted"]);
    const flagged = await store.db.select().from(webhookEvents).where(eq(webhookEvents.merchantId, shop.id));
    expect(flagged.filter((event) => event.revertedAt !== null).map((event) => event.type)).to.have.members(["invoice.paid", "invoice.confirmed"]);
  });

  it("a double spend mined in a block removes the unconfirmed payment it conflicts with", async () => {
    const shop = await merchant();
    const invoice = await shop.create("0.001");
    const original = chain.pay(invoice.payment.btc.address, sats(invoice));
    await sync();
    expect((await shop.read(invoice.id)).status).to.equal("pending");
    chain.replace(original.txid, [{ address: CUSTOMER, amount: sats(invoice) }]);
    chain.mine(); // the watcher never saw the replacement in the mempool: only the block
    await sync();
    const view = await shop.read(invoice.id);
    expect(view.status).to.equal("open");
    expect(view.bitcoin.payments[0]).to.include({ status: "removed", removedReason: "double_spent" });
  });

  it("a reorg of 1 block that re-mines the payment keeps it paid; one of 3 blocks that drops it moves the invoice back to open", async () => {
    const shop = await merchant({ confirmations: 2 });
    const kept = await shop.create("0.001");
    chain.pay(kept.payment.btc.address, sats(kept));
    chain.mine();
    await sync();
    chain.disconnect(1); // back to the mempool, then mined again on the new branch
    chain.mine(2);
    await sync();
    expect(await shop.read(kept.id)).to.include({ status: "paid", confirmations: 2 });

    const dropped = await shop.create("0.001");
    chain.pay(dropped.payment.btc.address, sats(dropped));
    chain.mine(3);
    await sync();
    expect(await shop.read(dropped.id)).to.include({ status: "paid", confirmations: 3 });
    chain.disconnect(3, { dropTransactions: true });
    chain.mine(4);
    await sync();
    const view = await shop.read(dropped.id);
    expect(view).to.include({ status: "open", confirmations: 0 });
    expect(view.bitcoin.payments[0]).to.include({ status: "removed", removedReason: "dropped" });
    const events = (await shop.events()).slice(-4);
    expect(events).to.deep.equal(["invoice.payment_detected", "invoice.paid", "invoice.confirmed", "invoice.payment_reverted"]);
  });

  it("restarts in the middle of a block: the failed block leaves nothing, the next watcher applies it once", async () => {
    const shop = await merchant();
    const invoice = await shop.create("0.001");
    chain.pay(invoice.payment.btc.address, sats(invoice));
    chain.mine();
    const crashing = createBitcoinWatcher({
      db: store.db,
      source,
      network: "regtest",
      logger: recordingLogger().logger,
      beforeBlockCommit: async () => {
        throw new Error("killed mid-block");
      },
    });
    await crashing.tick().then(
      () => expect.fail("the block should have failed"),
      (error: Error) => expect(error.message).to.equal("killed mid-block"),
    );
    expect((await shop.read(invoice.id)).status).to.equal("open");
    expect(await shop.events()).to.deep.equal([]);
    const restarted = createBitcoinWatcher({ db: store.db, source, network: "regtest", logger: recordingLogger().logger });
    await restarted.tick();
    await restarted.tick();
    await sync(); // the first watcher again: already applied, nothing repeats
    expect((await shop.read(invoice.id)).status).to.equal("paid");
    expect(await shop.events()).to.deep.equal(["invoice.payment_detected", "invoice.paid", "invoice.confirmed"]);
  });

  it("reads the same chain through Bitcoin Core's JSON-RPC, through hangs, 429 and 503, without losing a payment", async () => {
    const core = await startBitcoinCore(chain, { username: "rpc", password: "secret" });
    try {
      const coreSource = createBitcoinCoreSource(core.url, { username: "rpc", password: "secret" }, { timeoutMs: 500 });
      const coreWatcher = createBitcoinWatcher({ db: store.db, source: coreSource, network: "regtest", logger: recordingLogger().logger });
      const shop = await merchant();
      const invoice = await shop.create("0.001");
      chain.pay(invoice.payment.btc.address, sats(invoice));
      chain.mine();
      core.faults.push("hang", "429", "503");
      await coreWatcher.tick();
      expect((await shop.read(invoice.id)).status).to.equal("paid");
      expect(core.requests.filter((method) => method === "getblock")).to.have.length.greaterThan(0);
      await sync();
      expect(await shop.events()).to.deep.equal(["invoice.payment_detected", "invoice.paid", "invoice.confirmed"]);
    } finally {
      await core.close();
    }
  });

  it("a refund is an unsigned PSBT to the customer's address; signed by the merchant's wallet and mined, the invoice is refunded", async () => {
    const shop = await merchant();
    const invoice = await shop.create("0.003", { refundAddress: CUSTOMER });
    chain.pay(invoice.payment.btc.address, 100_000n);
    chain.pay(invoice.payment.btc.address, 200_000n);
    chain.mine();
    await sync();
    const partial = await shop.call("POST", `/v1/invoices/${invoice.id}/bitcoin-refund`, { amount: "0.001", feeRate: 2 });
    expect(partial.status, JSON.stringify(partial.body)).to.equal(201);
    expect(partial.body).to.include({ destination: CUSTOMER, amountSats: "100000" });
    const accepted = chain.acceptRaw(shop.wallet.sign(partial.body.psbt as string));
    expect(accepted.txid).to.equal(partial.body.txid);
    await sync();
    expect((await shop.read(invoice.id)).bitcoin.refunds[0].status).to.equal("unconfirmed");
    chain.mine();
    await sync();
    let view = await shop.read(invoice.id);
    expect(view).to.include({ status: "partially_refunded", refundedAmount: "0.001" });

    // The rest: the change of the first refund is the merchant's, so the remaining invoice outputs are spent.
    const rest = await shop.call("POST", `/v1/invoices/${invoice.id}/bitcoin-refund`, { feeRate: 2 });
    expect(rest.status, JSON.stringify(rest.body)).to.equal(409);
    expect(rest.body.type).to.equal("/problems/invoice-not-refundable");
    const events = await shop.events();
    expect(events.filter((type) => type === "invoice.refunded")).to.have.length(1);
    view = await shop.read(invoice.id);
    expect(view.bitcoin.refunds).to.have.length(1);
  });

  it("the BTC statement lists mined payments and refunds with the balance they leave in the merchant's wallet, as JSON pages and CSV", async () => {
    const shop = await merchant();
    const start = new Date(Date.now() - 1_000).toISOString();
    const first = await shop.create("0.001", { refundAddress: CUSTOMER });
    const second = await shop.create("0.002");
    const unmined = await shop.create("0.003");
    chain.pay(first.payment.btc.address, sats(first));
    chain.pay(second.payment.btc.address, sats(second));
    chain.mine();
    chain.pay(unmined.payment.btc.address, sats(unmined));
    await sync();
    const refund = await shop.call("POST", `/v1/invoices/${first.id}/bitcoin-refund`, { amount: "0.0004", feeRate: 1 });
    chain.acceptRaw(shop.wallet.sign(refund.body.psbt as string));
    chain.mine();
    await sync();
    const to = new Date(Date.now() + 365 * 86_400_000).toISOString();
    const statement = await shop.call("GET", `/v1/statements?currency=BTC&from=${start}&to=${to}&limit=2`);
    expect(statement.status, JSON.stringify(statement.body)).to.equal(200);
    const [btc] = statement.body.chains as { chainId: null; network: string; openingBalance: string; closingBalance: string; entryCount: number; totals: Record<string, string>; entries: { kind: string; amountBaseUnits: string; invoiceId: string }[]; nextCursor: string | null }[];
    expect(btc).to.include({ chainId: null, network: "bip122:0f9188f13cb7b2c71f2a335e3a4fc328", openingBalance: "0.00", entryCount: 4 });
    expect(btc.totals).to.include({ paidBaseUnits: "600000", refundedBaseUnits: "40000" });
    expect(btc.closingBalance).to.equal("0.0056");
    expect(btc.entries).to.have.length(2);
    const next = await shop.call("GET", `/v1/statements?currency=BTC&from=${start}&to=${to}&limit=2&cursor=${encodeURIComponent(btc.nextCursor!)}`);
    const rest = (next.body.chains as { entries: { kind: string; amountBaseUnits: string; invoiceId: string }[] }[])[0].entries;
    expect([...btc.entries, ...rest].map((entry) => [entry.kind, entry.amountBaseUnits, entry.invoiceId])).to.have.deep.members([
      ["payment", "100000", first.id],
      ["payment", "200000", second.id],
      ["payment", "300000", unmined.id],
      ["refund", "-40000", first.id],
    ]);
    const csv = await shop.call("GET", `/v1/statements?currency=BTC&from=${start}&to=${to}&format=csv`);
    const lines = (csv.body.text as string).trim().split("\r\n");
    expect(lines).to.have.length(5);
    expect(lines[1]).to.match(/^bip122:0f9188f13cb7b2c71f2a335e3a4fc328,/);
  });

  it("a refund link lets the customer set the refund address until a refund is prepared; made-up, moved or expired links are refused", async () => {
    const shop = await merchant();
    const invoice = await shop.create("0.001", { description: "Tea" });
    const link = await shop.call("POST", `/v1/invoices/${invoice.id}/refund-link`, {});
    expect(link.status, JSON.stringify(link.body)).to.equal(201);
    const path = link.body.path as string;
    const seen = await shop.call("GET", path);
    expect(seen.status).to.equal(200);
    expect(seen.body).to.include({ invoiceId: invoice.id, merchant: "", description: "Tea", amount: "0.001", networkName: "regtest", refundAddress: null, changeable: true });
    const wrongNetwork = await shop.call("PUT", path, { address: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" });
    expect(wrongNetwork.status).to.equal(422);
    const saved = await shop.call("PUT", path, { address: CUSTOMER });
    expect(saved.status, JSON.stringify(saved.body)).to.equal(200);
    expect((await shop.read(invoice.id)).bitcoin).to.include({ refundAddress: CUSTOMER });
    const audit = await store.db.select().from(auditLog).where(eq(auditLog.target, invoice.id));
    expect(audit.map((entry) => [entry.actor, entry.action])).to.deep.equal([["customer", "invoice.refund_address.set"]]);

    const token = link.body.token as string;
    const other = await shop.create("0.001");
    const moved = token.replace(/^r1\.[^.]+\./, `r1.${Buffer.from(other.id).toString("base64url")}.`);
    const extended = token.replace(/\.(\d+)\./, (_match, expiry: string) => `.${Number(expiry) + 86_400}.`);
    const expired = refundLinkToken(SECRET, invoice.id, Math.floor(Date.now() / 1000) - 1);
    for (const [name, candidate] of [["moved", moved], ["extended", extended], ["expired", expired], ["garbage", "r1.x.1.y"]]) {
      const answer = await shop.call("PUT", `/refund-links/${candidate}`, { address: CUSTOMER });
      expect(answer.status, name).to.equal(404);
      expect(answer.body.type, name).to.equal("/problems/refund-link-invalid");
    }

    chain.pay(invoice.payment.btc.address, sats(invoice));
    chain.mine();
    await sync();
    expect((await shop.call("POST", `/v1/invoices/${invoice.id}/bitcoin-refund`, { feeRate: 1 })).status).to.equal(201);
    const locked = await shop.call("PUT", path, { address: CUSTOMER });
    expect(locked.status).to.equal(409);
    expect(locked.body.type).to.equal("/problems/refund-address-locked");
  });

  it("the customer's billing status includes their BTC invoices: counts, what is open and due, mined payments and refunds", async () => {
    const shop = await merchant();
    const customer = { id: `cus_${randomBytes(4).toString("hex")}` };
    const paid = await shop.create("0.002", { customer, refundAddress: CUSTOMER });
    const open = await shop.create("0.0005", { customer });
    chain.pay(paid.payment.btc.address, sats(paid));
    chain.mine();
    await sync();
    const refund = await shop.call("POST", `/v1/invoices/${paid.id}/bitcoin-refund`, { amount: "0.0005", feeRate: 1 });
    const refundTx = chain.acceptRaw(shop.wallet.sign(refund.body.psbt as string));
    chain.mine();
    await sync();
    const answer = await shop.call("GET", `/v1/customers/${customer.id}/statement`);
    expect(answer.status, JSON.stringify(answer.body)).to.equal(200);
    const statement = answer.body as {
      invoiceCounts: Record<string, number>;
      openInvoices: { id: string; chainId: null }[];
      amountDue: { currency: string; amountBaseUnits: string }[];
      payments: { invoiceId: string; invoiceStatus: string; amountBaseUnits: string; payer: null }[];
      refunds: { invoiceId: string; amountBaseUnits: string; transactionHash: string; refundedAt: string }[];
    };
    expect(statement.invoiceCounts).to.include({ open: 1, partially_refunded: 1 });
    expect(statement.openInvoices.map((invoice) => invoice.id)).to.deep.equal([open.id]);
    expect(statement.amountDue).to.deep.equal([{ chainId: null, currency: "BTC", token: null, amount: "0.0005", amountBaseUnits: "50000" }]);
    expect(statement.payments).to.have.length(1);
    expect(statement.payments[0]).to.include({ invoiceId: paid.id, invoiceStatus: "partially_refunded", amountBaseUnits: "200000", payer: null });
    expect(statement.refunds).to.deep.equal([
      { invoiceId: paid.id, chainId: null, currency: "BTC", amount: "0.0005", amountBaseUnits: "50000", reason: "merchant", refundedAt: statement.refunds[0]?.refundedAt, transactionHash: refundTx.txid },
    ]);
  });

  it("a full refund of everything received (minus the fee) makes the invoice refunded", async () => {
    const shop = await merchant({ script: "p2tr" });
    const invoice = await shop.create("0.002");
    expect(invoice.payment.btc.address).to.match(/^bcrt1p/);
    chain.pay(invoice.payment.btc.address, sats(invoice));
    chain.mine();
    await sync();
    const missing = await shop.call("POST", `/v1/invoices/${invoice.id}/bitcoin-refund`, {});
    expect(missing.status).to.equal(409);
    expect(missing.body.type).to.equal("/problems/refund-address-missing");
    const refund = await shop.call("POST", `/v1/invoices/${invoice.id}/bitcoin-refund`, { address: CUSTOMER });
    expect(refund.status, JSON.stringify(refund.body)).to.equal(201);
    expect(BigInt(refund.body.amountSats as string) + BigInt(refund.body.feeSats as string)).to.equal(sats(invoice));
    chain.acceptRaw(shop.wallet.sign(refund.body.psbt as string));
    chain.mine();
    await sync();
    const view = await shop.read(invoice.id);
    expect(view.status).to.equal("refunded");
    expect(view.bitcoin.refundedSats).to.equal(refund.body.amountSats);
    expect(await shop.events()).to.include("invoice.refunded");
  });

  it("keeps to the gap limit, and reuses an expired invoice's address only if nothing ever arrived on it", async () => {
    const shop = await merchant({ gapLimit: 3 });
    const first = await shop.create("0.001", { expiresInSeconds: 60 });
    const second = await shop.create("0.001", { expiresInSeconds: 60 });
    const third = await shop.create("0.001");
    const refused = await shop.call("POST", "/v1/invoices", { amount: "0.001", currency: "BTC" });
    expect(refused.status).to.equal(409);
    expect(refused.body.type).to.equal("/problems/bitcoin-gap-limit");
    // Something arrives on the first (later replaced): its address is never given again.
    const payment = chain.pay(first.payment.btc.address, 5_000n);
    await sync();
    chain.replace(payment.txid, [{ address: CUSTOMER, amount: 5_000n }]);
    chain.advanceTime(7_200);
    chain.mine();
    await sync();
    const reused = await shop.create("0.001");
    expect(reused.payment.btc.address, "the second invoice's address: expired, nothing arrived").to.equal(second.payment.btc.address);
    expect([first.payment.btc.address, third.payment.btc.address]).not.to.include(reused.payment.btc.address);
    // The first address counts as used: index 0 received, so the window moves to indices 1..3.
    const next = await shop.create("0.001");
    expect(next.payment.btc.address).not.to.be.oneOf([first.payment.btc.address, second.payment.btc.address, third.payment.btc.address]);
  });

  it("refuses private keys without echoing them, other networks, bad checksums, another merchant's account, and escrow actions", async () => {
    const shop = await merchant();
    const secret = shop.wallet.privateKey;
    const refusedPrivate = await shop.call("PUT", "/v1/merchants/me/bitcoin", { key: secret });
    expect(refusedPrivate.status).to.equal(422);
    expect(JSON.stringify(refusedPrivate.body)).not.to.contain(secret.slice(4, 40));
    expect(JSON.stringify(refusedPrivate.body)).to.match(/private key/);
    const mainnet = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";
    expect((await shop.call("PUT", "/v1/merchants/me/bitcoin", { key: mainnet })).status).to.equal(422);
    expect((await shop.call("PUT", "/v1/merchants/me/bitcoin", { key: `${shop.wallet.descriptor}#aaaaaaaa` })).status).to.equal(422);
    const other = await merchant();
    const stolen = await other.call("PUT", "/v1/merchants/me/bitcoin", { key: shop.wallet.descriptor });
    expect(stolen.status).to.equal(422);
    expect((stolen.body.errors as { field: string }[])[0].field).to.equal("key");

    const invoice = await shop.create("0.001");
    for (const action of ["void", "release", "fulfill", "refund"]) {
      const answer = await shop.call("POST", `/v1/invoices/${invoice.id}/${action}`, action === "refund" ? {} : undefined);
      expect(answer.status, action).to.equal(409);
      expect(answer.body.type, action).to.equal("/problems/bitcoin-no-escrow");
    }
    const escrowFields = await shop.call("POST", "/v1/invoices", { amount: "0.001", currency: "BTC", holdSeconds: 60, chainId: 31337 });
    expect(escrowFields.status).to.equal(422);
    expect((escrowFields.body.errors as { field: string }[]).map((error) => error.field)).to.deep.equal(["chainId", "holdSeconds"]);
    for (const amount of ["0.000000001", "0.00000999"]) {
      expect((await shop.call("POST", "/v1/invoices", { amount, currency: "BTC" })).status, amount).to.equal(422);
    }
    const wrongRefund = await shop.call("POST", "/v1/invoices", { amount: "0.001", currency: "BTC", refundAddress: "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu" });
    expect(wrongRefund.status).to.equal(422);
    expect(JSON.stringify(wrongRefund.body)).to.contain("mainnet");
    const otherRead = await other.call("GET", `/v1/invoices/${invoice.id}`);
    expect(otherRead.status, "another merchant's BTC invoice is not found").to.equal(404);
  });

  it("concurrent creations get distinct consecutive addresses; beyond the gap limit they are refused, never doubled", async () => {
    const shop = await merchant({ gapLimit: 8 });
    const answers = await Promise.all(Array.from({ length: 12 }, () => shop.call("POST", "/v1/invoices", { amount: "0.001", currency: "BTC" })));
    const created = answers.filter((answer) => answer.status === 201).map((answer) => answer.body as unknown as View);
    expect(created).to.have.length(8);
    expect(new Set(created.map((view) => view.payment.btc.address)).size).to.equal(8);
    expect(answers.filter((answer) => answer.status === 409).map((answer) => answer.body.type)).to.deep.equal(Array(4).fill("/problems/bitcoin-gap-limit"));
  });

  it("lists BTC invoices with the others, newest first, with their statuses", async () => {
    const shop = await merchant();
    const a = await shop.create("0.001");
    const b = await shop.create("0.002");
    chain.pay(b.payment.btc.address, sats(b));
    chain.mine();
    await sync();
    const page = await shop.call("GET", "/v1/invoices?limit=1");
    expect((page.body.data as View[]).map((view) => view.id)).to.deep.equal([b.id]);
    const second = await shop.call("GET", `/v1/invoices?limit=5&cursor=${encodeURIComponent(page.body.nextCursor as string)}`);
    expect((second.body.data as View[]).map((view) => view.id)).to.deep.equal([a.id]);
    const paid = await shop.call("GET", "/v1/invoices?status=paid");
    expect((paid.body.data as View[]).map((view) => view.id)).to.deep.equal([b.id]);
  });
});
