/**
 * Webhooks on Postgres, as a deployment runs them: two API processes on one database (Ponder's `start`, which
 * indexes, and `serve`, a replica), neither delivering (WEBHOOK_WORKER=false), and two separate delivery
 * workers (`npm run webhooks:worker`). Shown here:
 *
 * - load: 1,000 invoices (ETH and USDC) created concurrently through both replicas and paid; every event is
 *   delivered exactly once, each attempt made by exactly one worker (`SKIP LOCKED`), and the statements
 *   reconcile to the escrow's on-chain balances to the last base unit;
 * - crashes: `kill -9` of a worker and of the indexer/API process mid-stream, then restarts: no ledger entry
 *   lost or doubled, every event delivered at least once and always under the same `webhook-id`;
 * - a receiver down through a long outage (retry schedule compressed to seconds) receives everything once it
 *   is back, in order per invoice.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import path from "node:path";
import { Client } from "pg";
import { erc20Abi, type Address, type Hex } from "viem";
import { startReceiver, type Receiver } from "../helpers/receiver";
import { startChild, stopChild, type Supervised } from "../../scripts/lib/processes";
import { createMerchant, freePort, mintStablecoin, startStack, usdc, waitUntil, ROOT, type InvoiceJson, type LocalChain, type Stack, type TestMerchant } from "./harness";
import { startPostgres, type PrivatePostgres } from "./postgres";

const INVOICES = 1_000;
const PAYERS = [4, 5, 6, 7];

describe("stack on Postgres: webhooks with replicas, workers, load and crashes", function () {
  this.timeout(900_000);
  let postgres: PrivatePostgres;
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let receiver: Receiver;
  let replica: { process: Supervised; url: string };
  const workers: Supervised[] = [];
  const paidInvoices: InvoiceJson[] = [];

  const startWorker = () => {
    const env = { ...stack.processEnv() };
    delete env.WEBHOOK_WORKER;
    const worker = startChild("webhook worker", process.execPath, ["-r", "ts-node/register/transpile-only", path.join(ROOT, "scripts", "webhook-worker.ts")], {
      cwd: ROOT,
      env,
      logFile: stack.logFile,
    });
    workers.push(worker);
    return worker;
  };
  const sql = async <T>(text: string, values: unknown[] = []): Promise<T[]> => {
    const client = new Client({ connectionString: postgres.databaseUrl });
    await client.connect();
    try {
      return (await client.query(text, values)).rows as T[];
    } finally {
      await client.end();
    }
  };
  const api = (base: string, method: string, route: string, body?: unknown) =>
    fetch(`${base}${route}`, {
      method,
      headers: { authorization: `Bearer ${merchant.apiKey}`, "content-type": "application/json", "Idempotency-Key": randomUUID() },
      body: body === undefined ? undefined : JSON.stringify(body),
    });

  /** Creates `count` invoices concurrently (16 in flight), alternating between the two API replicas. */
  async function createInvoices(count: number, statuses: number[]): Promise<InvoiceJson[]> {
    const created: InvoiceJson[] = new Array(count);
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < count) {
          const index = next++;
          const base = index % 2 === 0 ? stack.apiUrl : replica.url;
          const body = index % 2 === 0 ? { amount: "0.001", currency: "ETH", chainId: chain.id } : { amount: "1.000001", currency: "USDC", chainId: chain.id };
          const response = await api(base, "POST", "/v1/invoices", { ...body, metadata: { n: String(index) } });
          statuses.push(response.status);
          created[index] = (await response.json()) as InvoiceJson;
        }
      }),
    );
    return created;
  }

  /** Pays every invoice with its last instruction (the pay call), from four wallets, mining blocks of up to 200. */
  async function payAll(invoices: InvoiceJson[]): Promise<void> {
    await chain.client.request({ method: "evm_setAutomine" as never, params: [false] as never });
    try {
      const nonces = new Map<number, number>();
      for (const payer of PAYERS) nonces.set(payer, await chain.client.getTransactionCount({ address: chain.wallet(payer).account.address }));
      const hashes: Hex[] = [];
      for (const [index, invoice] of invoices.entries()) {
        const payer = PAYERS[index % PAYERS.length];
        const pay = invoice.payment.evm!.transactions.at(-1)!;
        const nonce = nonces.get(payer)!;
        nonces.set(payer, nonce + 1);
        hashes.push(
          await chain.wallet(payer).sendTransaction({ to: pay.to as Address, data: pay.data as Hex, value: BigInt(pay.value), nonce, gas: 400_000n, chain: null }),
        );
        if (hashes.length % 200 === 0) await chain.client.request({ method: "evm_mine" as never });
      }
      await chain.client.request({ method: "evm_mine" as never });
      for (const hash of hashes) {
        const receipt = await chain.client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
        expect(receipt.status, hash).to.equal("success");
      }
    } finally {
      await chain.client.request({ method: "evm_setAutomine" as never, params: [true] as never });
    }
    paidInvoices.push(...invoices);
  }

  /** The statement's closing balance per currency equals what the escrow holds (its only merchant's money). */
  async function reconcile(): Promise<void> {
    const escrow = chain.deployment.contracts.BillingEscrow.address;
    const token = chain.deployment.contracts.MockStablecoin!.address;
    const onchain = {
      ETH: await chain.client.getBalance({ address: escrow }),
      USDC: (await chain.client.readContract({ address: token, abi: erc20Abi, functionName: "balanceOf", args: [escrow] })) as bigint,
    };
    for (const currency of ["ETH", "USDC"] as const) {
      let closing: bigint | undefined;
      await waitUntil(
        `the ${currency} statement to reconcile with the escrow's ${onchain[currency]}`,
        async () => {
          const response = await api(stack.apiUrl, "GET", `/v1/statements?currency=${currency}&from=2020-01-01&limit=1`);
          const body = (await response.json()) as { chains: { closingBalanceBaseUnits: string }[] };
          closing = BigInt(body.chains[0].closingBalanceBaseUnits);
          return closing === onchain[currency];
        },
        60_000,
      );
      expect(closing).to.equal(onchain[currency]);
    }
    const [{ payments }] = await sql<{ payments: string }>(`SELECT count(*)::text AS payments FROM "${stack.processEnv().DATABASE_SCHEMA}".ledger WHERE kind = 'payment'`);
    expect(Number(payments)).to.equal(paidInvoices.length);
  }

  const paidDelivered = (invoices: InvoiceJson[]) => {
    const ids = new Set(invoices.map((invoice) => invoice.id));
    return new Set(receiver.received.filter((entry) => entry.event.type === "invoice.paid" && ids.has(entry.event.data.invoiceId as string)).map((entry) => entry.event.data.invoiceId)).size;
  };

  before(async function () {
    if (process.env.SKIP_POSTGRES_TESTS === "1") this.skip();
    postgres = await startPostgres();
    stack = await startStack({
      databaseUrl: postgres.databaseUrl,
      env: { WEBHOOK_WORKER: "false", WEBHOOK_RETRY_SCHEDULE: "1,1,2,2,3,3,5,5,5", WEBHOOK_BATCH_SIZE: "50", RATE_LIMIT_PER_MINUTE: "100000" },
    });
    chain = stack.chains[0];
    const port = await freePort();
    const replicaEnv: NodeJS.ProcessEnv = { ...stack.processEnv(), API_PORT: String(port) };
    replica = {
      url: `http://127.0.0.1:${port}`,
      process: startChild("ponder serve", path.join(ROOT, "node_modules", ".bin", "ponder"), ["serve", "--root", "indexer", "--port", String(await freePort()), "--hostname", "127.0.0.1", "--schema", replicaEnv.DATABASE_SCHEMA!], {
        cwd: ROOT,
        env: replicaEnv,
        logFile: stack.logFile,
        stopSignal: "SIGINT",
      }),
    };
    await waitUntil("the API replica", async () => (await fetch(`${replica.url}/openapi.json`).catch(() => undefined))?.ok === true, 120_000);
    startWorker();
    startWorker();
    merchant = await createMerchant(stack, 3, "Load merchant");
    receiver = await startReceiver();
    const response = await api(stack.apiUrl, "POST", "/v1/webhook-endpoints", { url: receiver.url });
    expect(response.status).to.equal(201);
    receiver.secrets = [((await response.json()) as { secret: string }).secret];
    for (const payer of PAYERS) {
      await mintStablecoin(chain, payer, usdc(10_000));
      const hash = await chain.wallet(payer).writeContract({
        address: chain.deployment.contracts.MockStablecoin!.address,
        abi: erc20Abi,
        functionName: "approve",
        args: [chain.deployment.contracts.BillingEscrow.address, usdc(10_000)],
        chain: null,
      });
      await chain.client.waitForTransactionReceipt({ hash });
    }
  });
  after(async () => {
    for (const worker of workers) await stopChild(worker).catch(() => undefined);
    if (replica) await stopChild(replica.process).catch(() => undefined);
    await receiver?.close();
    await stack?.stop();
    await postgres?.stop();
  });

  it(`${INVOICES} invoices created concurrently on two replicas and paid: every webhook once, each attempt by exactly one worker, statements reconcile`, async () => {
    const statuses: number[] = [];
    const started = Date.now();
    const invoices = await createInvoices(INVOICES, statuses);
    const createdIn = Date.now() - started;
    expect(statuses.filter((status) => status !== 201), "no 5xx, no refusals").to.deep.equal([]);
    expect(new Set(invoices.map((invoice) => invoice.id)).size).to.equal(INVOICES);
    await payAll(invoices);
    await waitUntil("invoice.paid for every invoice", async () => paidDelivered(invoices) === INVOICES, 240_000);
    await waitUntil("invoice.confirmed for every invoice", async () => receiver.received.filter((entry) => entry.event.type === "invoice.confirmed").length >= INVOICES, 120_000);

    const perEvent = receiver.byEvent();
    const duplicated = [...perEvent.entries()].filter(([, deliveries]) => deliveries.length > 1).map(([id]) => id);
    expect(duplicated, "no webhook delivered twice").to.deep.equal([]);
    expect(receiver.received.every((entry) => entry.verifiedWith === 0)).to.equal(true);

    // Each delivery succeeded exactly once, by one worker; a retry (another attempt) only follows a failed attempt.
    const attempts = await sql<{ delivery_id: string; succeeded: string; attempts: string; numbers: string }>(
      `SELECT delivery_id::text, count(*) FILTER (WHERE status_code BETWEEN 200 AND 299)::text AS succeeded, count(*)::text AS attempts,
         count(DISTINCT attempt)::text AS numbers FROM chainbill_api.webhook_attempts GROUP BY delivery_id`,
    );
    expect(attempts.length).to.equal(perEvent.size);
    expect(attempts.filter((row) => row.succeeded !== "1"), "each delivery succeeded once").to.deep.equal([]);
    expect(attempts.filter((row) => row.numbers !== row.attempts), "no attempt made twice (two workers on one claim)").to.deep.equal([]);
    const retried = await sql<{ error: string }>("SELECT DISTINCT error FROM chainbill_api.webhook_attempts WHERE status_code IS NULL OR status_code >= 300");
    if (retried.length > 0) console.log(`      retried after: ${retried.map((row) => row.error).join("; ")}`);
    const byWorker = await sql<{ worker: string; attempts: string }>("SELECT worker, count(*)::text AS attempts FROM chainbill_api.webhook_attempts GROUP BY worker");
    expect(byWorker.length, "both workers delivered").to.equal(2);
    console.log(`      ${INVOICES} invoices created in ${createdIn} ms; deliveries per worker: ${byWorker.map((row) => row.attempts).join(" + ")}`);
    await reconcile();
  });

  it("kill -9 of a worker and of the indexer/API process mid-stream: nothing lost or doubled, same webhook-ids", async () => {
    const statuses: number[] = [];
    const invoices = await createInvoices(200, statuses);
    expect(statuses.filter((status) => status !== 201)).to.deep.equal([]);
    receiver.respond = () => 200;
    const paying = payAll(invoices);
    // Mid-stream: the first worker dies, then the indexer and API process (the replica keeps serving).
    await waitUntil("some of the new payments delivered", async () => paidDelivered(invoices) > 0, 120_000);
    workers[0].child.kill("SIGKILL");
    await workers[0].exited;
    await paying;
    await stack.restartIndexer({ signal: "SIGKILL" });
    startWorker();
    await waitUntil("every new invoice.paid delivered", async () => paidDelivered(invoices) === invoices.length, 240_000);
    const ids = new Set(invoices.map((invoice) => invoice.id));
    const paidEvents = receiver.received.filter((entry) => entry.event.type === "invoice.paid" && ids.has(entry.event.data.invoiceId as string));
    const idsPerInvoice = new Map<string, Set<string>>();
    for (const entry of paidEvents) idsPerInvoice.set(entry.event.data.invoiceId as string, new Set([...(idsPerInvoice.get(entry.event.data.invoiceId as string) ?? []), entry.id]));
    expect([...idsPerInvoice.values()].filter((set) => set.size !== 1), "one webhook-id per invoice.paid").to.deep.equal([]);
    const [{ events }] = await sql<{ events: string }>("SELECT count(*)::text AS events FROM chainbill_api.webhook_events WHERE type = 'invoice.paid'");
    expect(Number(events)).to.equal(paidInvoices.length);
    await reconcile();
  });

  it("a receiver down for a long outage receives everything once it is back, in order per invoice", async () => {
    await receiver.down();
    const before = receiver.received.length;
    const statuses: number[] = [];
    const invoices = await createInvoices(20, statuses);
    await payAll(invoices);
    // A refund needs the payment indexed (the API answers 409 invoice-not-paid before).
    await waitUntil(
      "the payments indexed",
      async () => {
        const statuses = await Promise.all(invoices.map(async (invoice) => ((await (await api(stack.apiUrl, "GET", `/v1/invoices/${invoice.id}`)).json()) as { status: string }).status));
        return statuses.every((status) => status === "paid");
      },
      60_000,
    );
    for (const invoice of invoices.slice(0, 10)) {
      const response = await api(stack.apiUrl, "POST", `/v1/invoices/${invoice.id}/refund`, {});
      expect(response.status, await response.clone().text()).to.equal(202);
    }
    // Several retries fail while the receiver is down (1 s, 1 s, 2 s, … apart: about 27 s in all).
    await waitUntil(
      "retries during the outage",
      async () => {
        const [{ failed }] = await sql<{ failed: string }>("SELECT count(*)::text AS failed FROM chainbill_api.webhook_attempts WHERE status_code IS NULL AND attempt >= 3");
        return Number(failed) > 0;
      },
      60_000,
    );
    await receiver.up();
    const ids = new Set(invoices.map((invoice) => invoice.id));
    const arrived = () => receiver.received.slice(before).filter((entry) => ids.has(entry.event.data.invoiceId as string));
    await waitUntil("every event after the outage", async () => new Set(arrived().map((entry) => entry.id)).size === 20 * 2 + 10, 120_000);
    // In order per invoice: each invoice's events arrive in the order they were stored (the outbox's sequence).
    const stored = await sql<{ id: string; invoice: string }>(
      "SELECT id, payload -> 'data' ->> 'invoiceId' AS invoice FROM chainbill_api.webhook_events WHERE payload -> 'data' ->> 'invoiceId' = ANY($1) ORDER BY sequence",
      [[...ids]],
    );
    for (const invoice of invoices) {
      const expected = stored.filter((row) => row.invoice === invoice.id).map((row) => row.id);
      const firstArrivals = [...new Set(arrived().filter((entry) => entry.event.data.invoiceId === invoice.id).map((entry) => entry.id))];
      expect(firstArrivals, invoice.id).to.deep.equal(expected);
      const types = arrived().filter((entry) => entry.event.data.invoiceId === invoice.id).map((entry) => entry.event.type);
      expect(new Set(types), invoice.id).to.deep.equal(new Set(invoices.indexOf(invoice) < 10 ? ["invoice.paid", "invoice.confirmed", "invoice.refunded"] : ["invoice.paid", "invoice.confirmed"]));
    }
  });
});
