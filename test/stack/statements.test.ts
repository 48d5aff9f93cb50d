/**
 * Statements through the real stack: invoices created over HTTP and paid, refunded and released on-chain with
 * viem, subscriptions charged, canceled and withdrawn; the statement's totals and closing balance must equal
 * what the contracts hold for the merchant, the opening balance must follow `from`, the CSV must stream every
 * entry, and a customer's statement must show their invoices, payments, refunds and subscriptions.
 */
import { expect } from "chai";
import { parseEventLogs, type Abi, type Address, type Hex } from "viem";
import { billingEscrowAbi, subscriptionManagerAbi } from "../../contracts/abi";
import type { Invoice } from "../../contracts/invoice";
import { termsFromJson, type InvoiceTermsJson } from "../../api/invoices/instructions";
import type { ApiDeps } from "../../api/env";
import type { LedgerCursor, LedgerEntry, OnchainMerchant } from "../../api/indexed";
import { CSV_BATCH, CSV_COLUMNS, statementCsv } from "../../api/statements/csv";
import type { StatementScope } from "../../api/statements/ledger";
import { createMerchant, startStack, type LocalChain, type Stack, type TestMerchant, mockStablecoinAbi, usdc } from "./harness";

const CUSTOMER = "cus_statement";

interface Transaction {
  to: Address;
  data: Hex;
  value: string;
}
interface InvoiceBody {
  id: string;
  invoiceKey: Hex;
  payment: { evm: { invoice: Record<keyof Invoice, string | number>; transactions: Transaction[] } };
}
interface Entry {
  id: string;
  timestamp: string;
  kind: string;
  amount: string;
  amountBaseUnits: string;
  counterparty: string;
  reference: string;
  invoiceId: string | null;
  transactionHash: Hex;
}
interface ChainStatement {
  chainId: number;
  currency: string;
  openingBalance: string;
  openingBalanceBaseUnits: string;
  closingBalance: string;
  closingBalanceBaseUnits: string;
  totals: Record<"paid" | "refunded" | "released" | "fees" | "paidBaseUnits" | "refundedBaseUnits" | "releasedBaseUnits" | "feesBaseUnits", string>;
  entryCount: number;
  entries: Entry[];
  nextCursor: string | null;
}
interface Statement {
  from: string;
  to: string;
  chains: ChainStatement[];
}

const termsOf = (body: InvoiceBody): Invoice => termsFromJson(body.payment.evm.invoice as InvoiceTermsJson);

describe("stack: statements", function () {
  this.timeout(240_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let escrow: Address;
  let manager: Address;
  let token: Address;
  const paid: InvoiceBody[] = [];
  let openInvoice: InvoiceBody;
  const subscriptionIds: bigint[] = [];
  let payingSubscription: string;
  let subscriptionRefund: bigint;
  let midpoint: string;
  const PAYER = 5;
  const OTHER_SUBSCRIBER = 6;
  const KEEPER = 7;

  const get = async <T>(route: string, key = merchant.apiKey) => {
    const response = await stack.api("GET", route, { key });
    return { status: response.status, body: (await response.json()) as T };
  };

  async function send(walletIndex: number, transaction: Transaction): Promise<Hex> {
    const hash = await chain.wallet(walletIndex).sendTransaction({ to: transaction.to, data: transaction.data, value: BigInt(transaction.value), chain: null });
    const receipt = await chain.client.waitForTransactionReceipt({ hash });
    expect(receipt.status).to.equal("success");
    return hash;
  }

  async function write(walletIndex: number, request: { address: Address; abi: Abi; functionName: string; args: unknown[] }): Promise<Hex> {
    const hash = await chain.wallet(walletIndex).writeContract({ ...request, chain: null } as never);
    const receipt = await chain.client.waitForTransactionReceipt({ hash });
    expect(receipt.status).to.equal("success");
    return hash;
  }

  async function createInvoice(amount: string): Promise<InvoiceBody> {
    const response = await stack.api("POST", "/v1/invoices", {
      key: merchant.apiKey,
      headers: { "idempotency-key": `statement-${amount}-${Math.random()}` },
      body: { amount, currency: "USDC", chainId: chain.id, customer: { id: CUSTOMER }, holdSeconds: 0, expiresInSeconds: 3600, description: `Order for ${amount}` },
    });
    const body = (await response.json()) as InvoiceBody;
    expect(response.status, JSON.stringify(body)).to.equal(201);
    return body;
  }

  async function pay(invoice: InvoiceBody) {
    for (const transaction of invoice.payment.evm.transactions) await send(PAYER, transaction);
    paid.push(invoice);
  }

  /** What the contracts hold for the merchant in USDC now: held in escrow + unearned and earned in subscriptions. */
  async function heldOnchain(): Promise<bigint> {
    let total = 0n;
    for (const invoice of paid) {
      total += (await chain.client.readContract({ address: escrow, abi: billingEscrowAbi, functionName: "heldAmount", args: [termsOf(invoice)] })) as bigint;
    }
    for (const id of subscriptionIds) {
      const subscription = await chain.client.readContract({ address: manager, abi: subscriptionManagerAbi, functionName: "subscription", args: [id] });
      total += subscription.unearned;
    }
    total += (await chain.client.readContract({
      address: manager,
      abi: subscriptionManagerAbi,
      functionName: "merchantBalance",
      args: [merchant.onchainIds.get(chain.id)!, token],
    })) as bigint;
    return total;
  }

  /** Waits until the indexed ledger has caught up with the chain (the statement's closing balance matches it). */
  async function settledStatement(query = ""): Promise<ChainStatement> {
    const expected = await heldOnchain();
    let last: ChainStatement | undefined;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const response = await get<Statement>(`/v1/statements?currency=USDC&from=2020-01-01&limit=1000${query}`);
      expect(response.status, JSON.stringify(response.body)).to.equal(200);
      last = response.body.chains[0];
      if (last && BigInt(last.closingBalanceBaseUnits) === expected) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`closing balance ${last?.closingBalanceBaseUnits} never reached the on-chain ${expected}`);
  }

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
    escrow = chain.deployment.contracts.BillingEscrow.address;
    manager = chain.deployment.contracts.SubscriptionManager.address;
    token = chain.deployment.contracts.MockStablecoin!.address;
    merchant = await createMerchant(stack, 1, "Statements merchant");
    for (const wallet of [PAYER, OTHER_SUBSCRIBER]) {
      await write(wallet, { address: token, abi: mockStablecoinAbi, functionName: "mint", args: [chain.wallet(wallet).account.address, usdc(1_000)] });
    }
  });
  after(async () => {
    await stack?.stop();
  });

  it("before any movement: a zero statement, and 422 for bad periods and currencies", async () => {
    const empty = await get<Statement>("/v1/statements?currency=USDC");
    expect(empty.status).to.equal(200);
    expect(empty.body.chains).to.have.length(1);
    expect(empty.body.chains[0]).to.include({ chainId: chain.id, currency: "USDC", openingBalance: "0.00", closingBalance: "0.00", entryCount: 0 });
    expect(Date.parse(empty.body.to) - Date.parse(empty.body.from)).to.equal(30 * 86_400_000);

    const cases: [string, string][] = [
      ["currency=USDC&from=yesterday", "from"],
      ["currency=USDC&to=2026-02-30", "to"],
      ["currency=USDC&from=2026-01-01T10:00:00", "from"], // no offset: ambiguous
      ["currency=USDC&from=2026-02-01&to=2026-01-01", "from"],
      ["currency=USDC&from=2026-01-01&to=2026-01-01", "from"],
      ["currency=DOGE", "currency"],
      ["currency=USDC&chainId=999", "chainId"],
      ["currency=USDC&limit=5000", "limit"],
      ["currency=USDC&cursor=garbage!", "cursor"],
      ["from=2026-01-01", "currency"],
    ];
    for (const [query, field] of cases) {
      const response = await stack.api("GET", `/v1/statements?${query}`, { key: merchant.apiKey });
      const problem = (await response.json()) as { errors?: { field: string }[] };
      expect(response.status, query).to.equal(422);
      expect(problem.errors?.map((error) => error.field), query).to.include(field);
    }
  });

  it("records invoice payments, a partial refund and a release, then a midpoint", async () => {
    const [first, second] = [await createInvoice("10.00"), await createInvoice("20.00")];
    openInvoice = await createInvoice("3.00");
    await pay(first);
    await pay(second);
    // The owner wallet is an operator of the merchant: it may refund directly on the escrow.
    await write(1, { address: escrow, abi: billingEscrowAbi as Abi, functionName: "refund", args: [termsOf(second), usdc(5)] });
    // The payer confirms delivery of the first order, releasing it at once.
    await write(PAYER, { address: escrow, abi: billingEscrowAbi as Abi, functionName: "release", args: [termsOf(first)] });

    const statement = await settledStatement();
    expect(statement.closingBalance).to.equal("15.00"); // 10 + 20 − 5 refunded − 10 released
    const latest = await chain.client.getBlock();
    midpoint = new Date((Number(latest.timestamp) + 1) * 1000).toISOString();
  });

  it("records subscription charges, a merchant cancel, a withdrawal and one more payment after the midpoint", async () => {
    const plan = await stack.api("POST", "/v1/plans", {
      key: merchant.apiKey,
      body: { chainId: chain.id, currency: "USDC", amount: "10.00", periodSeconds: 3600, gracePeriodSeconds: 600 },
    });
    const planBody = (await plan.json()) as { subscribe: { transactions: Transaction[] } };
    expect(plan.status, JSON.stringify(planBody)).to.equal(201);
    for (const wallet of [PAYER, OTHER_SUBSCRIBER]) {
      let hash: Hex = "0x";
      for (const transaction of planBody.subscribe.transactions) hash = await send(wallet, transaction);
      const receipt = await chain.client.getTransactionReceipt({ hash });
      const [created] = parseEventLogs({ abi: subscriptionManagerAbi, eventName: "SubscriptionCreated", logs: receipt.logs });
      subscriptionIds.push(created.args.subscriptionId);
    }
    payingSubscription = `sub_${chain.id}_${subscriptionIds[0]}`;
    const canceled = await stack.api("POST", `/v1/subscriptions/sub_${chain.id}_${subscriptionIds[1]}/cancel`, { key: merchant.apiKey });
    expect(canceled.status).to.equal(202);
    subscriptionRefund = BigInt(((await canceled.json()) as { refundedBaseUnits: string }).refundedBaseUnits);
    // Anyone may trigger a withdrawal: it can only go to the merchant's payout address.
    await write(KEEPER, {
      address: manager,
      abi: subscriptionManagerAbi as Abi,
      functionName: "withdraw",
      args: [merchant.onchainIds.get(chain.id)!, token, [subscriptionIds[0]]],
    });
    await pay(await createInvoice("7.50"));
    await settledStatement();
  });

  it("totals and closing balance equal what the escrow and the subscription manager hold", async () => {
    const statement = await settledStatement();
    expect(statement.openingBalance).to.equal("0.00");
    const sumOf = (...kinds: string[]) =>
      statement.entries.filter((entry) => kinds.includes(entry.kind)).reduce((total, entry) => total + BigInt(entry.amountBaseUnits), 0n);
    expect(statement.entryCount).to.equal(statement.entries.length);
    expect(statement.entries.map((entry) => entry.kind).sort()).to.deep.equal(
      ["payment", "payment", "payment", "refund", "release", "subscription_charge", "subscription_charge", "subscription_refund", "withdrawal"].sort(),
    );
    expect(BigInt(statement.totals.paidBaseUnits)).to.equal(usdc(10 + 20 + 7.5 + 10 + 10));
    expect(BigInt(statement.totals.paidBaseUnits)).to.equal(sumOf("payment", "subscription_charge"));
    expect(BigInt(statement.totals.refundedBaseUnits)).to.equal(-sumOf("refund", "subscription_refund"));
    expect(BigInt(statement.totals.releasedBaseUnits)).to.equal(-sumOf("release", "withdrawal"));
    expect(statement.totals.fees).to.equal("0.00");
    expect(BigInt(statement.totals.refundedBaseUnits)).to.equal(usdc(5) + subscriptionRefund);
    const { paidBaseUnits, refundedBaseUnits, releasedBaseUnits, feesBaseUnits } = statement.totals;
    expect(BigInt(statement.closingBalanceBaseUnits)).to.equal(BigInt(paidBaseUnits) - BigInt(refundedBaseUnits) - BigInt(releasedBaseUnits) - BigInt(feesBaseUnits));
    expect(BigInt(statement.closingBalanceBaseUnits)).to.equal(await heldOnchain());

    // Entries name what they belong to: the API's invoice id, or the subscription.
    const payments = statement.entries.filter((entry) => entry.kind === "payment");
    expect(payments.map((entry) => entry.invoiceId)).to.deep.equal(paid.map((invoice) => invoice.id));
    expect(payments.map((entry) => entry.reference)).to.deep.equal(paid.map((invoice) => invoice.invoiceKey.toLowerCase()));
    expect(statement.entries.filter((entry) => entry.kind === "subscription_charge").map((entry) => entry.reference)).to.deep.equal(
      subscriptionIds.map((id) => `sub_${chain.id}_${id}`),
    );
    const timestamps = statement.entries.map((entry) => Date.parse(entry.timestamp));
    expect(timestamps).to.deep.equal([...timestamps].sort((a, b) => a - b));
  });

  it("the opening balance at a later `from` is everything before it; the closing balance does not move", async () => {
    const full = await settledStatement();
    const before = full.entries.filter((entry) => entry.timestamp < midpoint);
    const after = full.entries.filter((entry) => entry.timestamp >= midpoint);
    expect(before.map((entry) => entry.kind)).to.deep.equal(["payment", "payment", "refund", "release"]);
    const response = await get<Statement>(`/v1/statements?currency=USDC&from=${encodeURIComponent(midpoint)}&limit=1000`);
    const later = response.body.chains[0];
    expect(later.openingBalance).to.equal("15.00");
    expect(BigInt(later.openingBalanceBaseUnits)).to.equal(before.reduce((total, entry) => total + BigInt(entry.amountBaseUnits), 0n));
    expect(later.entries.map((entry) => entry.id)).to.deep.equal(after.map((entry) => entry.id));
    expect(later.closingBalanceBaseUnits).to.equal(full.closingBalanceBaseUnits);

    // A period that ends at the midpoint closes at the opening balance of the later one.
    const earlier = (await get<Statement>(`/v1/statements?currency=USDC&from=2020-01-01&to=${encodeURIComponent(midpoint)}`)).body.chains[0];
    expect(earlier.closingBalanceBaseUnits).to.equal(later.openingBalanceBaseUnits);
    expect(earlier.entryCount).to.equal(4);
  });

  it("pages JSON entries with a cursor, totals always covering the whole period", async () => {
    const full = await settledStatement();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `/v1/statements?currency=USDC&from=2020-01-01&limit=4${cursor ? `&cursor=${cursor}` : ""}`;
      const page = (await get<Statement>(query)).body.chains[0];
      expect(page.entries.length).to.be.at.most(4);
      expect(page.totals).to.deep.equal(full.totals);
      expect(page.entryCount).to.equal(full.entryCount);
      seen.push(...page.entries.map((entry) => entry.id));
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor);
    expect(pages).to.equal(Math.ceil(full.entryCount / 4));
    expect(seen).to.deep.equal(full.entries.map((entry) => entry.id));
  });

  it("streams the statement as CSV: a header row and one row per entry", async () => {
    const full = await settledStatement();
    const response = await stack.api("GET", "/v1/statements?currency=USDC&from=2020-01-01", { key: merchant.apiKey, headers: { accept: "text/csv" } });
    expect(response.status).to.equal(200);
    expect(response.headers.get("content-type")).to.equal("text/csv; charset=utf-8");
    expect(response.headers.get("content-disposition")).to.match(/^attachment; filename="statement-USDC-2020-01-01-\d{4}-\d{2}-\d{2}\.csv"$/);
    const lines = (await response.text()).split("\r\n");
    expect(lines.pop()).to.equal(""); // every row ends with CRLF
    expect(lines[0]).to.equal(CSV_COLUMNS.join(","));
    const rows = lines.slice(1).map((line) => line.split(","));
    expect(rows).to.have.length(full.entryCount);
    const column = (name: (typeof CSV_COLUMNS)[number]) => CSV_COLUMNS.indexOf(name);
    expect(rows.map((row) => row[column("entry_id")])).to.deep.equal(full.entries.map((entry) => entry.id));
    const net = rows.reduce((total, row) => total + BigInt(row[column("amount_base_units")]), 0n);
    expect(net).to.equal(BigInt(full.closingBalanceBaseUnits) - BigInt(full.openingBalanceBaseUnits));
    expect(rows.filter((row) => row[column("kind")] === "payment").map((row) => row[column("invoice_id")])).to.deep.equal(paid.map((invoice) => invoice.id));

    const byParameter = await stack.api("GET", `/v1/statements?currency=${token}&format=csv&from=${encodeURIComponent(midpoint)}`, { key: merchant.apiKey });
    expect(byParameter.headers.get("content-type")).to.equal("text/csv; charset=utf-8");
    expect((await byParameter.text()).split("\r\n").length - 2).to.equal(full.entryCount - 4);
  });

  it("shows a customer's billing status: open invoices, payments, refunds, subscriptions and the next charge", async () => {
    const response = await get<{
      customerId: string;
      invoiceCounts: Record<string, number>;
      openInvoices: { id: string; amount: string }[];
      amountDue: { currency: string; amount: string }[];
      payments: { invoiceId: string; amount: string; invoiceStatus: string; payer: string }[];
      refunds: { invoiceId: string; amount: string; reason: string }[];
      wallets: string[];
      subscriptions: { id: string; status: string; nextChargeAt: string; nextChargeAmount: string; currentPeriodEnd: string }[];
      nextCharge: { subscriptionId: string; at: string; amount: string } | null;
    }>(`/v1/customers/${CUSTOMER}/statement`);
    expect(response.status, JSON.stringify(response.body)).to.equal(200);
    const statement = response.body;
    expect(statement.customerId).to.equal(CUSTOMER);
    expect(statement.invoiceCounts).to.include({ open: 1, released: 1, partially_refunded: 1, paid: 1 });
    expect(statement.openInvoices).to.deep.equal([{ ...statement.openInvoices[0], id: openInvoice.id, amount: "3.00" }]);
    expect(statement.amountDue).to.have.length(1);
    expect(statement.amountDue[0]).to.include({ currency: "USDC", amount: "3.00" });
    expect(statement.payments.map((payment) => [payment.invoiceId, payment.amount, payment.invoiceStatus])).to.deep.equal([
      [paid[0].id, "10.00", "released"],
      [paid[1].id, "20.00", "partially_refunded"],
      [paid[2].id, "7.50", "paid"],
    ]);
    expect(statement.refunds).to.have.length(1);
    expect(statement.refunds[0]).to.include({ invoiceId: paid[1].id, amount: "5.00", reason: "merchant" });
    expect(statement.wallets).to.deep.equal([chain.wallet(PAYER).account.address]);
    // The paying wallet's subscription is listed; the other wallet never paid one of this customer's invoices.
    expect(statement.subscriptions.map((subscription) => subscription.id)).to.deep.equal([payingSubscription]);
    const [subscription] = statement.subscriptions;
    expect(subscription).to.include({ status: "active", nextChargeAmount: "10.00" });
    expect(subscription.nextChargeAt).to.equal(subscription.currentPeriodEnd);
    expect(statement.nextCharge).to.deep.equal({ subscriptionId: payingSubscription, at: subscription.nextChargeAt, currency: "USDC", amount: "10.00", amountBaseUnits: "10000000" });

    expect((await get(`/v1/customers/cus_nobody/statement`)).status).to.equal(404);
    const other = await createMerchant(stack, 3, "Other merchant");
    expect((await get(`/v1/customers/${CUSTOMER}/statement`, other.apiKey)).status).to.equal(404);
    const otherStatement = await get<Statement>("/v1/statements?currency=USDC&from=2020-01-01", other.apiKey);
    expect(otherStatement.body.chains[0]).to.include({ entryCount: 0, closingBalance: "0.00" });
  });
});

describe("statement CSV streaming", () => {
  /** A ledger of `size` entries behind the same keyset contract as `IndexedReader.ledgerPage`, counting reads. */
  function syntheticLedger(size: number) {
    const base = 1_700_000_000n;
    const reads: number[] = [];
    const ledgerPage = async (_owner: OnchainMerchant, _token: Address, _from: bigint, _to: bigint, limit: number, cursor?: LedgerCursor) => {
      const start = cursor ? Number(cursor.timestamp - base) + 1 : 0;
      const rows: LedgerEntry[] = [];
      for (let index = start; index < Math.min(size, start + limit); index += 1) {
        rows.push({
          id: `31337-0x${index.toString(16).padStart(64, "0")}-0-0`,
          chainId: 31337,
          merchantId: 1n,
          counterparty: "0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
          token: "0x9fe46736679d2d9a65f0992f2272de9f3c7fa6e0",
          amount: index % 2 === 0 ? 1_000_000n : -250_000n,
          kind: index % 2 === 0 ? "subscription_charge" : "subscription_refund",
          reference: `subscription:${index}`,
          timestamp: base + BigInt(index),
          blockNumber: BigInt(index + 1),
          transactionHash: `0x${index.toString(16).padStart(64, "0")}`,
          logIndex: 0,
        });
      }
      reads.push(rows.length);
      return rows;
    };
    const deps = { indexed: { ledgerPage }, logger: { error: () => undefined } } as unknown as ApiDeps;
    const scope = {
      chain: { id: 31337 },
      owner: { chainId: 31337, merchantId: 1n },
      token: { symbol: "USDC", address: "0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0", decimals: 6 },
    } as unknown as StatementScope;
    return { deps, scope, reads };
  }

  it("reads the ledger one batch per pull and writes every one of 100,000 entries", async () => {
    const { deps, scope, reads } = syntheticLedger(100_000);
    const reader = statementCsv(deps, "mer_test", [scope], { from: 0n, to: 2_000_000_000n }).getReader();
    const decoder = new TextDecoder();
    let text = "";
    // Header, then two batches: the stream has read no further than what was asked for (plus one ahead).
    for (let chunk = 0; chunk < 3; chunk += 1) text += decoder.decode((await reader.read()).value);
    expect(reads.length).to.be.at.most(3);
    let lines = text.split("\r\n").length - 1;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      lines += decoder.decode(value).split("\r\n").length - 1;
    }
    expect(lines).to.equal(100_001);
    expect(reads.filter((count) => count === CSV_BATCH)).to.have.length(100_000 / CSV_BATCH);
    expect(reads.length).to.equal(100_000 / CSV_BATCH + 1);
  });
});
