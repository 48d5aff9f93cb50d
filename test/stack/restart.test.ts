/**
 * Ponder stopped in the middle of a stream of payments — cleanly (SIGINT) and by a crash (SIGKILL) — and
 * started again on the same database: the payments made while it was down are indexed, and nothing indexed
 * before is lost, changed or counted twice. After a crash Ponder first waits for the dead process's lock on
 * the schema to expire (~25 s, "Schema is locked by a different Ponder app"), then recovers from its last
 * finalized checkpoint; the harness starts it again if that recovery exits (a known Ponder behaviour: its crash
 * recovery occasionally replays from the start and exits with UniqueConstraintError).
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import type { Address, Hex } from "viem";
import { createMerchant, startStack, waitUntil, type LocalChain, type Stack, type TestMerchant } from "./harness";

interface InvoiceJson {
  id: string;
  status: string;
  paidTransaction: Hex | null;
  refundedAmount: string;
  payment: { evm: { transactions: { to: Address; data: Hex; value: string }[] } };
}

interface Entry {
  id: string;
  kind: string;
  amountBaseUnits: string;
  transactionHash: Hex;
  blockNumber: string;
  timestamp: string;
  invoiceId: string | null;
}

interface Snapshot {
  registrations: { chainId: number; registered: boolean; onchainMerchantId: string | null; owner: string | null; payout: string | null }[];
  entries: Entry[];
  totals: Record<string, string>;
  closingBalance: string;
  invoices: { id: string; status: string; paidTransaction: Hex | null; refundedAmount: string }[];
}

describe("stack: indexer restarts mid-stream", function () {
  this.timeout(400_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  const invoiceIds: string[] = [];

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
    merchant = await createMerchant(stack, 1, "Restart merchant");
  });
  after(async () => {
    await stack?.stop();
  });

  async function api<T>(method: string, route: string, body?: unknown): Promise<T> {
    const response = await stack.api(method, route, {
      key: merchant.apiKey,
      body,
      headers: method === "POST" ? { "Idempotency-Key": randomUUID() } : undefined,
    });
    const text = await response.text();
    expect(response.ok, `${method} ${route}: ${response.status} ${text}`).to.equal(true);
    return JSON.parse(text) as T;
  }

  async function createInvoices(count: number): Promise<InvoiceJson[]> {
    const created: InvoiceJson[] = [];
    for (let index = 0; index < count; index += 1) {
      const invoice = await api<InvoiceJson>("POST", "/v1/invoices", { chainId: chain.id, amount: `0.0${index + 1}`, currency: "ETH" });
      invoiceIds.push(invoice.id);
      created.push(invoice);
    }
    return created;
  }

  /** Pays each invoice with the API's instructions, from wallets #2–#4 in turn. */
  async function pay(invoices: InvoiceJson[]): Promise<Hex[]> {
    const hashes: Hex[] = [];
    for (const [index, invoice] of invoices.entries()) {
      const wallet = chain.wallet(2 + (index % 3));
      for (const transaction of invoice.payment.evm.transactions) {
        const hash = await wallet.sendTransaction({ to: transaction.to, data: transaction.data, value: BigInt(transaction.value), chain: null });
        expect((await chain.client.waitForTransactionReceipt({ hash })).status).to.equal("success");
        hashes.push(hash);
      }
    }
    return hashes;
  }

  /** Everything the merchant sees of its indexed data: registrations, the ETH ledger, its invoices. */
  async function snapshot(): Promise<Snapshot> {
    const me = await api<{ chains: (Snapshot["registrations"][number] & Record<string, unknown>)[] }>("GET", "/v1/merchants/me");
    const statement = await api<{ chains: { entries: Entry[]; totals: Record<string, string>; closingBalance: string }[] }>(
      "GET",
      "/v1/statements?currency=ETH&limit=1000",
    );
    const invoices = await Promise.all(invoiceIds.map((id) => api<InvoiceJson>("GET", `/v1/invoices/${id}`)));
    return {
      registrations: me.chains.map(({ chainId, registered, onchainMerchantId, owner, payout }) => ({ chainId, registered, onchainMerchantId, owner, payout })),
      entries: statement.chains[0].entries.map(({ id, kind, amountBaseUnits, transactionHash, blockNumber, timestamp, invoiceId }) => ({
        id,
        kind,
        amountBaseUnits,
        transactionHash,
        blockNumber,
        timestamp,
        invoiceId,
      })),
      totals: statement.chains[0].totals,
      closingBalance: statement.chains[0].closingBalance,
      invoices: invoices.map(({ id, status, paidTransaction, refundedAmount }) => ({ id, status, paidTransaction, refundedAmount })),
    };
  }

  /**
   * Ponder learns of blocks mined while it was down only when the next block arrives (an idle local chain
   * produces none): mine one empty block, one at a time as Ponder requires.
   */
  async function mineOneBlock(): Promise<void> {
    await chain.client.request({ method: "evm_mine" as never, params: [] as never });
  }

  /** Waits until the API shows every listed payment (nudging the chain now and then, unless told not to). */
  async function settledSnapshot(payments: Hex[], nudge = true): Promise<Snapshot> {
    let last: Snapshot | undefined;
    let nudgedAt = Date.now();
    await waitUntil(
      `${payments.length} payments indexed`,
      async () => {
        if (nudge && Date.now() - nudgedAt > 2_000) {
          nudgedAt = Date.now();
          await mineOneBlock();
        }
        last = await snapshot();
        const seen = new Set(last.entries.map((entry) => entry.transactionHash));
        return payments.every((hash) => seen.has(hash)) && last.invoices.every((invoice) => invoice.status !== "open");
      },
      90_000,
    );
    return last!;
  }

  function expectNoDuplicates(state: Snapshot): void {
    const ids = state.entries.map((entry) => entry.id);
    expect(new Set(ids).size, "ledger entry ids are unique").to.equal(ids.length);
    const payments = state.entries.filter((entry) => entry.kind === "payment").map((entry) => entry.transactionHash);
    expect(new Set(payments).size, "one payment entry per payment transaction").to.equal(payments.length);
  }

  /** `after` keeps every entry of `before` unchanged, in order, and adds exactly the new payments. */
  function expectExtends(before: Snapshot, after: Snapshot, newPayments: Hex[]): void {
    expect(after.registrations).to.deep.equal(before.registrations);
    expect(after.entries.slice(0, before.entries.length)).to.deep.equal(before.entries);
    const added = after.entries.slice(before.entries.length);
    expect(added.map((entry) => entry.kind)).to.deep.equal(newPayments.map(() => "payment"));
    expect(added.map((entry) => entry.transactionHash)).to.have.members(newPayments);
    for (const invoice of before.invoices) {
      expect(after.invoices.find((candidate) => candidate.id === invoice.id)).to.deep.equal(invoice);
    }
    expectNoDuplicates(after);
  }

  let baseline: Snapshot;

  it("indexes a first batch: payments and a partial refund", async () => {
    const invoices = await createInvoices(4);
    const payments = await pay(invoices);
    baseline = await settledSnapshot(payments);
    const refund = await stack.api("POST", `/v1/invoices/${invoices[0].id}/refund`, { key: merchant.apiKey, body: { amount: "0.004" } });
    expect(refund.status, await refund.clone().text()).to.equal(202);
    await waitUntil("the refund in the ledger", async () => {
      baseline = await snapshot();
      return baseline.entries.some((entry) => entry.kind === "refund");
    });
    expect(baseline.entries.map((entry) => entry.kind)).to.deep.equal(["payment", "payment", "payment", "payment", "refund"]);
    expect(baseline.registrations[0]).to.include({ registered: true, onchainMerchantId: "1" });
    expectNoDuplicates(baseline);
  });

  for (const signal of ["SIGINT", "SIGKILL"] as const) {
    it(`${signal === "SIGINT" ? "stopped" : "killed"} (${signal}) while payments stream in: loses nothing, duplicates nothing`, async () => {
      const before = baseline;
      const invoices = await createInvoices(8);
      // Payments keep arriving on the chain while Ponder stops and starts again.
      const streaming = pay(invoices);
      await waitUntil("the stream to be under way", async () => {
        const paid = await Promise.all(invoices.slice(0, 2).map((invoice) => stack.api("GET", `/v1/invoices/${invoice.id}`, { key: merchant.apiKey })));
        const statuses = await Promise.all(paid.map(async (response) => ((await response.json()) as InvoiceJson).status));
        return statuses.every((status) => status === "paid");
      }, 30_000);
      const restarted = stack.restartIndexer({ signal });
      const [payments] = await Promise.all([streaming, restarted]);

      const after = await settledSnapshot(payments);
      expectExtends(before, after, payments);
      expect(after.invoices.filter((invoice) => invoice.status === "paid")).to.have.length(after.invoices.length - 1);
      baseline = after;
    });
  }

  it("a restart on an idle chain (no new block) re-indexes its tail by itself and changes nothing; until then it says it is behind", async () => {
    // No block at all while Ponder restarts: its unfinalized tail is reverted, and it must come back without one.
    await chain.client.request({ method: "evm_setIntervalMining", params: [0] } as never);
    try {
      const head = await chain.client.getBlockNumber();
      await stack.restartIndexer();
      const first = await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey });
      const position = /block=(\d+)/.exec(first.headers.get("chainbill-indexed") ?? "");
      // Never claims a block whose rows it has not (re-)indexed: right after the restart, at most the head.
      if (position) expect(BigInt(position[1])).to.be.at.most(head);
      const again = await settledSnapshot(baseline.entries.map((entry) => entry.transactionHash), false);
      expect(again).to.deep.equal(baseline);
      expect(await chain.client.getBlockNumber()).to.equal(head);
    } finally {
      await chain.client.request({ method: "evm_setIntervalMining", params: [1000] } as never);
    }
  });

  it("a changed OPERATOR_KEY_SECRET stops the API at start with what to do, and the right one starts it again", async () => {
    let failure: unknown;
    await stack.restartIndexer({ env: { OPERATOR_KEY_SECRET: "ab".repeat(32) } }).catch((error: unknown) => (failure = error));
    expect(String(failure)).to.contain("Ponder exited");
    const log = readFileSync(stack.logFile, "utf8");
    expect(log).to.contain("OPERATOR_KEY_SECRET does not open the operator keys already stored");
    expect(log).to.contain("Restore the previous secret");
    await stack.restartIndexer();
    expect((await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey })).status).to.equal(200);
  });
});
