/**
 * BTC invoices through the real HTTP API, on the webhooks test's stack (its API process runs the Bitcoin
 * watcher against the test's regtest chain, served as an Esplora API on loopback): created, paid, confirmed,
 * reported in the statement and as signed webhooks, then reorged back to open — as an EVM invoice is.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import type { RegtestChain } from "../../scripts/lib/bitcoin-regtest/chain";
import { testWallet } from "../../scripts/lib/bitcoin-regtest/wallet";
import type { Receiver } from "../helpers/receiver";
import { waitUntil, type Stack, type TestMerchant } from "./harness";

interface BtcView {
  id: string;
  status: string;
  confirmations: number;
  confirmationsRequired: number;
  paidTransaction: string | null;
  network: string;
  payment: { btc: { address: string; amountSats: string; uri: string; custody: string } };
  bitcoin: { receivedSats: string; indexedHeight: number | null };
}

export function bitcoinTests(context: () => { stack: Stack; merchant: TestMerchant; receiver: Receiver; chain: RegtestChain }) {
  describe("BTC invoices through the HTTP API (regtest chain over Esplora)", () => {
    const call = async <T>(method: string, route: string, body?: unknown, status = 200): Promise<T> => {
      const { stack, merchant } = context();
      const response = await stack.api(method, route, { key: merchant.apiKey, body, headers: method === "GET" ? {} : { "idempotency-key": randomUUID() } });
      const text = await response.text();
      expect(response.status, text).to.equal(status);
      return JSON.parse(text) as T;
    };
    const read = (id: string) => call<BtcView>("GET", `/v1/invoices/${id}`);
    const typesOf = (id: string) => context().receiver.received.filter((entry) => entry.event.data.invoiceId === id).map((entry) => entry.event.type);

    it("is paid, confirmed, in the statement and announced by signed webhooks; a reorg moves it back to open with invoice.payment_reverted", async () => {
      const { chain } = context();
      const account = await call<{ firstAddress: string; confirmations: number }>("PUT", "/v1/merchants/me/bitcoin", { key: testWallet(40).descriptor, confirmations: 2 });
      expect(account.confirmations).to.equal(2);
      const invoice = await call<BtcView>("POST", "/v1/invoices", { amount: "0.0025", currency: "BTC", description: "Sats", metadata: { order: "B-1" } }, 201);
      expect(invoice).to.include({ status: "open", network: "bip122:0f9188f13cb7b2c71f2a335e3a4fc328", confirmationsRequired: 2 });
      expect(invoice.payment.btc).to.include({ amountSats: "250000", custody: "merchant_wallet" });

      const payment = chain.pay(invoice.payment.btc.address, 250_000n);
      await waitUntil("the payment seen in the mempool", async () => (await read(invoice.id)).status === "pending", 20_000);
      chain.mine();
      await waitUntil("paid once mined", async () => (await read(invoice.id)).status === "paid", 20_000);
      chain.mine();
      await waitUntil("invoice.confirmed at the receiver", async () => typesOf(invoice.id).includes("invoice.confirmed"), 30_000);
      expect(typesOf(invoice.id)).to.deep.equal(["invoice.payment_detected", "invoice.paid", "invoice.confirmed"]);
      const paid = context().receiver.received.find((entry) => entry.event.data.invoiceId === invoice.id && entry.event.type === "invoice.paid")!;
      expect(paid.event.data).to.include({ object: "invoice", currency: "BTC", chainId: null, amountBaseUnits: "250000", invoiceAmount: "0.0025" });
      expect((paid.event.data.transaction as { hash: string }).hash).to.equal(payment.txid);
      const view = await read(invoice.id);
      expect(view).to.include({ status: "paid", confirmations: 2, paidTransaction: payment.txid });
      expect(view.bitcoin.indexedHeight).to.equal(chain.height);

      const statement = async () => {
        const answer = await call<{ chains: { closingBalanceBaseUnits: string; entries: { kind: string; invoiceId: string; amountBaseUnits: string }[] }[] }>(
          "GET",
          `/v1/statements?currency=BTC&from=${new Date(Date.now() - 3_600_000).toISOString()}&to=${new Date(Date.now() + 86_400_000).toISOString()}`,
        );
        return answer.chains[0];
      };
      const before = await statement();
      expect(before.entries.filter((entry) => entry.invoiceId === invoice.id).map((entry) => [entry.kind, entry.amountBaseUnits])).to.deep.equal([["payment", "250000"]]);

      chain.disconnect(2, { dropTransactions: true });
      chain.mine(3);
      await waitUntil("open again after the reorg", async () => (await read(invoice.id)).status === "open", 20_000);
      await waitUntil("invoice.payment_reverted at the receiver", async () => typesOf(invoice.id).includes("invoice.payment_reverted"), 30_000);
      const after = await statement();
      expect(after.entries.filter((entry) => entry.invoiceId === invoice.id)).to.deep.equal([]);
      expect(BigInt(after.closingBalanceBaseUnits)).to.equal(BigInt(before.closingBalanceBaseUnits) - 250_000n);
    });
  });
}
