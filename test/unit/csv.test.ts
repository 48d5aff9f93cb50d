import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { CSV_BATCH, CSV_COLUMNS, csvField, statementCsv } from "../../api/statements/csv";
import type { Store } from "../../api/store";
import type { TokenInfo } from "../../api/tokens";
import { USDC, depsWith, fakeLedger, ledgerRow, scopeOf, storeInvoice } from "./helpers/statements";
import { sharedStore, uniqueId } from "./helpers/store";

const HEADER = CSV_COLUMNS.join(",") + "\r\n";

async function chunksOf(stream: ReadableStream<Uint8Array>): Promise<string[]> {
  const decoder = new TextDecoder();
  const chunks: string[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return chunks;
    chunks.push(decoder.decode(value));
  }
}

describe("unit: api/statements/csv csvField", () => {
  it("leaves plain values alone", () => {
    expect(csvField("USDC")).to.equal("USDC");
    expect(csvField("USDC", { text: true })).to.equal("USDC");
    expect(csvField("")).to.equal("");
    expect(csvField("a=b+c-d@e", { text: true })).to.equal("a=b+c-d@e");
  });

  it("defuses text a spreadsheet would run as a formula", () => {
    expect(csvField("=cmd()", { text: true })).to.equal("'=cmd()");
    expect(csvField("+1", { text: true })).to.equal("'+1");
    expect(csvField("-1", { text: true })).to.equal("'-1");
    expect(csvField("@x", { text: true })).to.equal("'@x");
    expect(csvField("\tx", { text: true })).to.equal("'\tx");
  });

  it("defuses a leading carriage return and quotes the field for it", () => {
    expect(csvField("\r=1", { text: true })).to.equal("\"'\r=1\"");
  });

  it("does not touch values that are not free text (negative amounts stay numbers)", () => {
    expect(csvField("-1")).to.equal("-1");
    expect(csvField("=cmd()")).to.equal("=cmd()");
    expect(csvField("+1", { text: false })).to.equal("+1");
  });

  it("quotes fields with quotes, commas, carriage returns or newlines, doubling the quotes", () => {
    expect(csvField('say "hi"')).to.equal('"say ""hi"""');
    expect(csvField("a,b")).to.equal('"a,b"');
    expect(csvField("a\nb")).to.equal('"a\nb"');
    expect(csvField("a\rb")).to.equal('"a\rb"');
    expect(csvField('"')).to.equal('""""');
  });

  it("defuses and quotes a hostile formula with quotes and commas", () => {
    expect(csvField('=HYPERLINK("http://x","y")', { text: true })).to.equal(`"'=HYPERLINK(""http://x"",""y"")"`);
    expect(csvField("-2,3", { text: true })).to.equal(`"'-2,3"`);
  });
});

describe("unit: api/statements/csv CSV_COLUMNS", () => {
  it("names the sixteen columns of a statement CSV in order", () => {
    expect(CSV_COLUMNS).to.deep.equal([
      "chain_id",
      "timestamp",
      "kind",
      "amount",
      "amount_base_units",
      "currency",
      "counterparty",
      "reference",
      "invoice_id",
      "transaction_hash",
      "block_number",
      "entry_id",
      "fiat_value",
      "fiat_currency",
      "fiat_rate",
      "fiat_rate_at",
    ]);
    expect(HEADER).to.equal(
      "chain_id,timestamp,kind,amount,amount_base_units,currency,counterparty,reference,invoice_id,transaction_hash,block_number,entry_id,fiat_value,fiat_currency,fiat_rate,fiat_rate_at\r\n",
    );
  });

  it("reads the ledger 5,000 rows at a time by default", () => {
    expect(CSV_BATCH).to.equal(5_000);
  });
});

describe("unit: api/statements/csv statementCsv", function () {
  // Tests take well under a second: a short limit turns a change that makes the code wait (a polling loop, a
  // stream that never ends) into a quick failure. Opening the shared store gets its own, longer limit.
  this.timeout(5_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  const period = { from: 1_767_225_600n, to: 1_769_904_000n };
  const rowsOf = (chainId: number, token: TokenInfo, count: number, start = 0) =>
    Array.from({ length: count }, (_, index) =>
      ledgerRow({ id: `${chainId}-${start + index}`, chainId, token: token.address, timestamp: period.from + BigInt(start + index), reference: `subscription:${start + index + 1}` }),
    );

  it("is the header alone when there is nothing to list", async () => {
    const { indexed, calls } = fakeLedger(new Map());
    const { deps } = depsWith(store, indexed);
    expect(await chunksOf(statementCsv(deps, "mer_x", [], period))).to.deep.equal([HEADER]);
    expect(calls).to.deep.equal([]);
  });

  it("writes one line per entry after the header, in RFC 4180 with CRLF line ends", async () => {
    const merchant = uniqueId("mer");
    const invoiceKey = `0x${randomBytes(32).toString("hex")}`;
    const invoiceId = await storeInvoice(store, merchant, 31337, invoiceKey);
    const rows = [
      ledgerRow({ id: "31337-1-0", amount: 25_000_000n, kind: "payment", reference: invoiceKey, blockNumber: 5n, timestamp: period.from }),
      ledgerRow({ id: "31337-2-0", amount: -2_500_000n, kind: "refund", reference: "subscription:7", blockNumber: 6n, timestamp: period.from + 60n }),
    ];
    const { indexed } = fakeLedger(new Map([[`31337:${USDC.address}`, rows]]));
    const { deps } = depsWith(store, indexed);
    const text = (await chunksOf(statementCsv(deps, merchant, [scopeOf(31337, 3n)], period))).join("");
    const tx = "0x" + "11".repeat(32);
    const counterparty = "0x00000000000000000000000000000000000000cc";
    expect(text).to.equal(
      HEADER +
        `31337,2026-01-01T00:00:00.000Z,payment,25.00,25000000,USDC,${counterparty},${invoiceKey},${invoiceId},${tx},5,31337-1-0,,,,\r\n` +
        `31337,2026-01-01T00:01:00.000Z,refund,-2.50,-2500000,USDC,${counterparty},sub_31337_7,,${tx},6,31337-2-0,,,,\r\n`,
    );
  });

  it("defuses a hostile token symbol and quotes an entry id that needs it", async () => {
    const evil: TokenInfo = { symbol: '=HYPERLINK("x")', address: "0x00000000000000000000000000000000000000bb", decimals: 2 };
    const rows = [ledgerRow({ id: "a,b", chainId: 1, token: evil.address, amount: 150n, reference: "withdrawal" })];
    const { indexed } = fakeLedger(new Map([[`1:${evil.address}`, rows]]));
    const { deps } = depsWith(store, indexed);
    const [, body] = await chunksOf(statementCsv(deps, "mer_x", [scopeOf(1, 1n, evil)], period));
    const fields = body.split(",");
    expect(fields[3]).to.equal("1.50");
    expect(fields[5]).to.equal(`"'=HYPERLINK(""x"")"`);
    expect(fields[7]).to.equal("withdrawal");
    expect(body.endsWith(`,"a,b",,,,\r\n`)).to.equal(true);
  });

  it("defuses a reference a spreadsheet would run", async () => {
    const rows = [ledgerRow({ id: "r", chainId: 1, reference: "@SUM(1+1)" })];
    const { indexed } = fakeLedger(new Map([[`1:${USDC.address}`, rows]]));
    const { deps } = depsWith(store, indexed);
    const [, body] = await chunksOf(statementCsv(deps, "mer_x", [scopeOf(1, 1n)], period));
    expect(body.split(",")[7]).to.equal("'@SUM(1+1)");
  });

  it("reads in batches with a keyset cursor, one chunk per batch, until a short batch", async () => {
    const rows = rowsOf(1, USDC, 5);
    const { indexed, calls } = fakeLedger(new Map([[`1:${USDC.address}`, rows]]));
    const { deps } = depsWith(store, indexed);
    const chunks = await chunksOf(statementCsv(deps, "mer_x", [scopeOf(1, 4n)], period, 2));
    expect(chunks).to.have.length(4);
    expect(chunks[0]).to.equal(HEADER);
    expect(chunks.slice(1).map((chunk) => chunk.split("\r\n").filter(Boolean).map((line) => line.split(",")[11]))).to.deep.equal([
      ["1-0", "1-1"],
      ["1-2", "1-3"],
      ["1-4"],
    ]);
    const owner = { chainId: 1, merchantId: 4n };
    expect(calls).to.deep.equal([
      { method: "ledgerPage", owner, token: USDC.address, from: period.from, to: period.to, limit: 2, cursor: undefined },
      { method: "ledgerPage", owner, token: USDC.address, from: period.from, to: period.to, limit: 2, cursor: { timestamp: rows[1].timestamp, id: "1-1" } },
      { method: "ledgerPage", owner, token: USDC.address, from: period.from, to: period.to, limit: 2, cursor: { timestamp: rows[3].timestamp, id: "1-3" } },
    ]);
  });

  it("asks once more after a full last batch, and ends on the empty answer", async () => {
    const rows = rowsOf(1, USDC, 2);
    const { indexed, calls } = fakeLedger(new Map([[`1:${USDC.address}`, rows]]));
    const { deps } = depsWith(store, indexed);
    const chunks = await chunksOf(statementCsv(deps, "mer_x", [scopeOf(1, 4n)], period, 2));
    expect(chunks).to.have.length(2);
    expect(calls.map((call) => call.cursor)).to.deep.equal([undefined, { timestamp: rows[1].timestamp, id: "1-1" }]);
  });

  it("follows the scopes in order, starting each chain's ledger from its beginning", async () => {
    const other: TokenInfo = { symbol: "USDC.e", address: "0x00000000000000000000000000000000000000dd", decimals: 6 };
    const first = rowsOf(1, USDC, 2);
    const second = rowsOf(8453, other, 1);
    const { indexed, calls } = fakeLedger(
      new Map([
        [`1:${USDC.address}`, first],
        [`8453:${other.address}`, second],
      ]),
    );
    const { deps } = depsWith(store, indexed);
    const chunks = await chunksOf(statementCsv(deps, "mer_x", [scopeOf(1, 4n), scopeOf(8453, 2n, other)], period, 2));
    expect(chunks.map((chunk) => chunk.split("\r\n").filter(Boolean).map((line) => line.split(",")[0]))).to.deep.equal([
      ["chain_id"],
      ["1", "1"],
      ["8453"],
    ]);
    expect(chunks[2].split(",")[5]).to.equal("USDC.e");
    expect(calls.map((call) => [call.owner.chainId, call.token, call.cursor])).to.deep.equal([
      [1, USDC.address, undefined],
      [1, USDC.address, { timestamp: first[1].timestamp, id: "1-1" }],
      [8453, other.address, undefined],
    ]);
  });

  it("skips a scope without entries", async () => {
    const other: TokenInfo = { symbol: "DAI", address: "0x00000000000000000000000000000000000000de", decimals: 18 };
    const { indexed } = fakeLedger(new Map([[`2:${other.address}`, rowsOf(2, other, 1)]]));
    const { deps } = depsWith(store, indexed);
    const chunks = await chunksOf(statementCsv(deps, "mer_x", [scopeOf(1, 4n), scopeOf(2, 4n, other)], period));
    expect(chunks).to.have.length(2);
    expect(chunks[1].startsWith("2,")).to.equal(true);
  });

  it("aborts the body and logs when the ledger cannot be read", async () => {
    const failure = new Error("indexer down");
    const { indexed } = fakeLedger(new Map(), { fail: failure });
    const { deps, lines } = depsWith(store, indexed);
    const reader = statementCsv(deps, "mer_broken", [scopeOf(1, 4n)], period).getReader();
    expect(new TextDecoder().decode((await reader.read()).value)).to.equal(HEADER);
    let caught: unknown;
    try {
      await reader.read();
    } catch (error) {
      caught = error;
    }
    expect(caught).to.equal(failure);
    expect(lines).to.deep.equal([{ level: "error", fields: { err: failure, merchantId: "mer_broken" }, message: "statement CSV stream failed" }]);
  });

  it("reads nothing before the client pulls past the header", async () => {
    const { indexed, calls } = fakeLedger(new Map([[`1:${USDC.address}`, rowsOf(1, USDC, 3)]]));
    const { deps } = depsWith(store, indexed);
    const reader = statementCsv(deps, "mer_x", [scopeOf(1, 4n)], period, 1).getReader();
    await reader.read();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(calls.length).to.be.at.most(1);
    await reader.cancel();
  });
});
