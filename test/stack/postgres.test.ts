/**
 * The stack on Postgres instead of PGlite (DATABASE_URL): Ponder indexes into its schema and the API keeps
 * its store in `chainbill_api` on the same private server. A merchant is onboarded and an invoice paid from a
 * wallet with the API's instructions; the rows are then read from Postgres itself.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import type { Address, Hex } from "viem";
import { burst, createMerchant, parseIndexedHeader, startStack, testAccount, timeTravel, waitUntil, type Stack, type TestMerchant } from "./harness";
import { startPostgres, type PrivatePostgres } from "./postgres";

interface InvoiceJson {
  id: string;
  status: string;
  chainId: number;
  payer: Address | null;
  paidTransaction: Hex | null;
  invoiceKey: Hex;
  payment: { evm: { transactions: { to: Address; data: Hex; value: string }[] } };
}

describe("stack on Postgres", function () {
  this.timeout(300_000);
  let postgres: PrivatePostgres;
  let stack: Stack;
  let merchant: TestMerchant;

  before(async function () {
    if (process.env.SKIP_POSTGRES_TESTS === "1") {
      // Explicit opt-out for machines without a PostgreSQL server; CI installs one (.ci/run).
      this.skip();
    }
    postgres = await startPostgres();
    stack = await startStack({ databaseUrl: postgres.databaseUrl });
  });
  after(async () => {
    await stack?.stop();
    await postgres?.stop();
  });

  async function query<T>(sql: string, values: unknown[] = []): Promise<T[]> {
    const { Client } = await import("pg");
    const client = new Client({ connectionString: postgres.databaseUrl });
    await client.connect();
    try {
      return (await client.query(sql, values)).rows as T[];
    } finally {
      await client.end();
    }
  }

  /** The schema Ponder indexes into (the harness names it per run). */
  async function indexerSchema(): Promise<string> {
    const rows = await query<{ table_schema: string }>(
      "select table_schema from information_schema.tables where table_name = 'ledger' and table_schema <> 'chainbill_api'",
    );
    expect(rows, "exactly one indexer schema").to.have.length(1);
    return rows[0].table_schema;
  }

  it("onboards a merchant: the API store and the indexed registration live in Postgres", async () => {
    merchant = await createMerchant(stack, 1, "Postgres merchant");
    expect(merchant.onchainIds.get(31337)).to.equal(1n);

    const stored = await query<{ id: string; signer_address: string }>("select id, signer_address from chainbill_api.merchants");
    expect(stored.map((row) => row.id)).to.deep.equal([merchant.id]);
    expect(stored[0].signer_address.toLowerCase()).to.equal(merchant.operator.toLowerCase());

    const schema = await indexerSchema();
    const indexed = await query<{ merchant_id: string; signer: string; payout: string }>(
      `select merchant_id::text, signer, payout from "${schema}".merchant where chain_id = 31337`,
    );
    expect(indexed).to.deep.equal([
      { merchant_id: "1", signer: merchant.operator.toLowerCase(), payout: merchant.payout.toLowerCase() },
    ]);
  });

  it("pays an invoice with the API's instructions; status, ledger and statement follow from Postgres", async () => {
    const chain = stack.chains[0];
    const created = await stack.api("POST", "/v1/invoices", {
      key: merchant.apiKey,
      headers: { "Idempotency-Key": randomUUID() },
      body: { chainId: chain.id, amount: "0.5", currency: "ETH", description: "Postgres-backed invoice" },
    });
    expect(created.status, await created.clone().text()).to.equal(201);
    const invoice = (await created.json()) as InvoiceJson;
    expect(invoice.status).to.equal("open");

    const payerIndex = 4;
    const wallet = chain.wallet(payerIndex);
    let paidWith: Hex | undefined;
    for (const transaction of invoice.payment.evm.transactions) {
      paidWith = await wallet.sendTransaction({ to: transaction.to, data: transaction.data, value: BigInt(transaction.value), chain: null });
      expect((await chain.client.waitForTransactionReceipt({ hash: paidWith })).status).to.equal("success");
    }

    let current = invoice;
    await waitUntil("the invoice to be paid", async () => {
      current = (await (await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: merchant.apiKey })).json()) as InvoiceJson;
      return current.status === "paid";
    }, 30_000);
    expect(current.payer).to.equal(testAccount(payerIndex).address);
    expect(current.paidTransaction).to.equal(paidWith);

    const schema = await indexerSchema();
    const ledger = await query<{ kind: string; amount: string; transaction_hash: string }>(
      `select kind, amount::text, transaction_hash from "${schema}".ledger where chain_id = 31337 order by block_number, log_index`,
    );
    expect(ledger).to.deep.equal([{ kind: "payment", amount: "500000000000000000", transaction_hash: paidWith }]);
    const stored = await query<{ id: string; invoice_key: string }>("select id, invoice_key from chainbill_api.invoices");
    expect(stored).to.deep.equal([{ id: invoice.id, invoice_key: invoice.invoiceKey }]);

    // The statement ends at the latest block the API has seen (its head is cached briefly): poll a moment.
    type StatementJson = { chains: { chainId: number; totals: { paid: string }; entries: { invoiceId: string | null }[] }[] };
    let body: StatementJson | undefined;
    await waitUntil("the payment in the statement", async () => {
      const statement = await stack.api("GET", "/v1/statements?currency=ETH", { key: merchant.apiKey });
      expect(statement.status, await statement.clone().text()).to.equal(200);
      body = (await statement.json()) as StatementJson;
      return body.chains[0]?.entries.length > 0;
    }, 5_000);
    if (!body) throw new Error("no statement");
    expect(body.chains).to.have.length(1);
    expect(body.chains[0].totals.paid).to.equal("0.50");
    expect(body.chains[0].entries.map((entry) => entry.invoiceId)).to.deep.equal([invoice.id]);
  });

  it("a burst of 200 transactions and a 120 s jump in time are indexed within seconds; /ready and Chainbill-Indexed follow", async () => {
    const chain = stack.chains[0];
    await burst(chain, 200);
    await timeTravel(chain, 120);
    const head = await chain.client.getBlockNumber();
    const started = Date.now();
    await waitUntil("the burst to be indexed", async () => {
      const status = (await (await fetch(`${stack.apiUrl}/status`)).json()) as { chains: { indexedBlock: number | null }[] };
      return (status.chains[0].indexedBlock ?? 0) >= Number(head);
    }, 30_000);
    expect((Date.now() - started) / 1000).to.be.lessThan(15);
    await waitUntil("ready", async () => (await fetch(`${stack.apiUrl}/ready`)).status === 200, 15_000);
    const answer = await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey });
    const indexed = parseIndexedHeader(answer.headers.get("chainbill-indexed")).get(chain.id)!;
    expect(BigInt(indexed.block)).to.be.at.least(head);
  });
});
