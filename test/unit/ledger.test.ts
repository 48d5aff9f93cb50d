import { expect } from "chai";
import { randomBytes } from "node:crypto";
import type { LedgerKindTotal } from "../../api/indexed";
import { chainStatement, entryView, invoiceIdsOf, LEDGER_KINDS, referenceOf, totalsOf } from "../../api/statements/ledger";
import type { Store } from "../../api/store";
import { sharedStore, uniqueId } from "./helpers/store";
import { USDC, depsWith, fakeLedger, ledgerRow, scopeOf, storeInvoice } from "./helpers/statements";

const KEY_A = "0x" + "aa".repeat(32);
/** Invoice keys are unique per chain in the store: each test stores its own. */
const randomKey = () => `0x${randomBytes(32).toString("hex")}`;

describe("unit: api/statements/ledger totalsOf", () => {
  const rows: LedgerKindTotal[] = [
    { kind: "payment", total: 100n, count: 2 },
    { kind: "subscription_charge", total: 50n, count: 1 },
    { kind: "refund", total: -10n, count: 1 },
    { kind: "subscription_refund", total: -5n, count: 1 },
    { kind: "release", total: -60n, count: 3 },
    { kind: "withdrawal", total: -20n, count: 1 },
    { kind: "fee", total: -3n, count: 4 },
  ];

  it("adds payments and subscription charges as paid", () => {
    expect(totalsOf(rows).paid).to.equal(150n);
  });

  it("reports refunds and subscription refunds as a positive refunded amount", () => {
    expect(totalsOf(rows).refunded).to.equal(15n);
  });

  it("reports releases and withdrawals as a positive released amount", () => {
    expect(totalsOf(rows).released).to.equal(80n);
  });

  it("reports fees as a positive amount", () => {
    expect(totalsOf(rows).fees).to.equal(3n);
  });

  it("nets every movement with its sign and counts every entry", () => {
    expect(totalsOf(rows)).to.deep.equal({ paid: 150n, refunded: 15n, released: 80n, fees: 3n, net: 52n, count: 13 });
  });

  it("keeps kinds it does not total in the net and the count only", () => {
    expect(totalsOf([...rows, { kind: "adjustment", total: 7n, count: 2 }])).to.deep.equal({
      paid: 150n,
      refunded: 15n,
      released: 80n,
      fees: 3n,
      net: 59n,
      count: 15,
    });
  });

  it("is all zero for no movements", () => {
    expect(totalsOf([])).to.deep.equal({ paid: 0n, refunded: 0n, released: 0n, fees: 0n, net: 0n, count: 0 });
  });

  it("adds several rows of one kind", () => {
    expect(totalsOf([{ kind: "fee", total: -1n, count: 1 }, { kind: "fee", total: -2n, count: 1 }]).fees).to.equal(3n);
  });

  it("knows the seven ledger kinds", () => {
    expect(LEDGER_KINDS).to.deep.equal(["payment", "refund", "release", "fee", "subscription_charge", "subscription_refund", "withdrawal"]);
  });
});

describe("unit: api/statements/ledger referenceOf", () => {
  it("turns a subscription reference into the public subscription id of its chain", () => {
    expect(referenceOf(ledgerRow({ id: "e", chainId: 8453, reference: "subscription:12" }))).to.equal("sub_8453_12");
    expect(referenceOf(ledgerRow({ id: "e", chainId: 1, reference: "subscription:123456789012345678901234567890" }))).to.equal(
      "sub_1_123456789012345678901234567890",
    );
  });

  it("keeps an invoice key as it is", () => {
    expect(referenceOf(ledgerRow({ id: "e", reference: KEY_A }))).to.equal(KEY_A);
  });

  it("keeps anything that is not exactly subscription:<digits>", () => {
    for (const reference of ["subscription:", "subscription:12x", "xsubscription:12", "subscription:-1", "Subscription:1", "withdrawal"]) {
      expect(referenceOf(ledgerRow({ id: "e", reference })), reference).to.equal(reference);
    }
  });
});

describe("unit: api/statements/ledger entryView", () => {
  it("shows a ledger row in the API's terms", () => {
    const row = ledgerRow({ id: "31337-10-0", amount: -2_500_000n, kind: "refund", reference: KEY_A.toUpperCase().replace("0X", "0x"), blockNumber: 77n });
    expect(entryView(row, USDC, new Map([[KEY_A, "inv_1"]]))).to.deep.equal({
      id: "31337-10-0",
      chainId: 31337,
      network: "eip155:31337",
      timestamp: "2026-01-01T00:00:00.000Z",
      kind: "refund",
      amount: "-2.50",
      amountBaseUnits: "-2500000",
      counterparty: row.counterparty,
      reference: row.reference,
      invoiceId: "inv_1",
      transactionHash: row.transactionHash,
      blockNumber: "77",
      fiatValue: null,
      fiatCurrency: null,
      fiatRate: null,
      fiatRateAt: null,
    });
  });

  it("has no invoice id for a reference that is not a known invoice", () => {
    expect(entryView(ledgerRow({ id: "x", reference: "subscription:3" }), USDC, new Map([[KEY_A, "inv_1"]]))).to.include({
      reference: "sub_31337_3",
      invoiceId: null,
    });
  });
});

describe("unit: api/statements/ledger invoiceIdsOf (real store)", function () {
  // Tests take well under a second: a short limit turns a change that makes the code wait (a polling loop, a
  // stream that never ends) into a quick failure. Opening the shared store gets its own, longer limit.
  this.timeout(5_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  it("maps the merchant's invoice keys among the entries to invoice ids, whatever the case of the entry's reference", async () => {
    const merchant = uniqueId("mer");
    const [keyA, keyB, keyC] = [randomKey(), randomKey(), randomKey()];
    const idA = await storeInvoice(store, merchant, 31337, keyA);
    const idB = await storeInvoice(store, merchant, 31337, keyB);
    await storeInvoice(store, merchant, 31337, keyC);
    const { deps } = depsWith(store, {});
    const entries = [
      ledgerRow({ id: "1", reference: keyA.toUpperCase().replace("0X", "0x") }),
      ledgerRow({ id: "2", reference: keyB }),
      ledgerRow({ id: "3", reference: keyA }),
      ledgerRow({ id: "4", reference: "subscription:1" }),
    ];
    const ids = await invoiceIdsOf(deps, merchant, 31337, entries);
    expect([...ids.entries()].sort()).to.deep.equal(
      [
        [keyA, idA],
        [keyB, idB],
      ].sort(),
    );
  });

  it("ignores invoices of other merchants and other chains", async () => {
    const merchant = uniqueId("mer");
    const other = uniqueId("mer");
    const [key, otherKey] = [randomKey(), randomKey()];
    await storeInvoice(store, other, 31337, key);
    const onBaseId = await storeInvoice(store, merchant, 8453, otherKey);
    const { deps } = depsWith(store, {});
    expect((await invoiceIdsOf(deps, merchant, 31337, [ledgerRow({ id: "1", reference: key })])).size).to.equal(0);
    expect((await invoiceIdsOf(deps, merchant, 31337, [ledgerRow({ id: "1", reference: otherKey })])).size).to.equal(0);
    const onBase = await invoiceIdsOf(deps, merchant, 8453, [ledgerRow({ id: "1", reference: otherKey })]);
    expect([...onBase.entries()]).to.deep.equal([[otherKey, onBaseId]]);
  });

  it("does not query the store when no entry references an invoice", async () => {
    const refusing = {
      get db(): never {
        throw new Error("the store was queried");
      },
    };
    const { deps } = depsWith(refusing as unknown as Store, {});
    const ids = await invoiceIdsOf(deps, "mer_x", 1, [ledgerRow({ id: "1", reference: "subscription:4" }), ledgerRow({ id: "2", reference: "withdrawal" })]);
    expect(ids.size).to.equal(0);
    expect((await invoiceIdsOf(deps, "mer_x", 1, [])).size).to.equal(0);
  });
});

describe("unit: api/statements/ledger chainStatement", function () {
  // Tests take well under a second: a short limit turns a change that makes the code wait (a polling loop, a
  // stream that never ends) into a quick failure. Opening the shared store gets its own, longer limit.
  this.timeout(5_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  const period = { from: 1_767_225_600n, to: 1_769_904_000n };

  function setup(count: number, extra: Parameters<typeof fakeLedger>[1] = {}, invoiceKey = randomKey()) {
    const rows = Array.from({ length: count }, (_, index) =>
      ledgerRow({ id: `e${index}`, chainId: 31337, timestamp: period.from + BigInt(index), reference: index === 0 ? invoiceKey : `subscription:${index}` }),
    );
    const ledger = fakeLedger(new Map([[`31337:${USDC.address}`, rows]]), extra);
    return { rows, ...ledger };
  }

  it("gives opening and closing balances, totals, the first page and a cursor to the next", async () => {
    const merchant = uniqueId("mer");
    const invoiceKey = randomKey();
    const invoiceId = await storeInvoice(store, merchant, 31337, invoiceKey);
    const { rows, indexed, calls } = setup(4, {
      balance: 1_000_000n,
      totals: [
        { kind: "payment", total: 75_000_000n, count: 3 },
        { kind: "refund", total: -5_000_000n, count: 1 },
        { kind: "release", total: -20_000_000n, count: 1 },
        { kind: "fee", total: -250_000n, count: 1 },
      ],
    }, invoiceKey);
    const { deps } = depsWith(store, indexed);
    const scope = scopeOf(31337, 9n);
    const statement = await chainStatement(deps, merchant, scope, period, { limit: 3 });
    expect(statement).to.deep.equal({
      chainId: 31337,
      network: "eip155:31337",
      onchainMerchantId: "9",
      currency: "USDC",
      token: USDC.address,
      decimals: 6,
      openingBalance: "1.00",
      openingBalanceBaseUnits: "1000000",
      closingBalance: "50.75",
      closingBalanceBaseUnits: "50750000",
      totals: {
        paid: "75.00",
        paidBaseUnits: "75000000",
        refunded: "5.00",
        refundedBaseUnits: "5000000",
        released: "20.00",
        releasedBaseUnits: "20000000",
        fees: "0.25",
        feesBaseUnits: "250000",
      },
      entryCount: 6,
      entries: [entryView(rows[0], USDC, new Map([[invoiceKey, invoiceId]])), entryView(rows[1], USDC, new Map()), entryView(rows[2], USDC, new Map())],
      nextCursor: { chainId: 31337, timestamp: rows[2].timestamp, id: "e2" },
    });
    expect(statement.entries[0].invoiceId).to.equal(invoiceId);
    const owner = { chainId: 31337, merchantId: 9n };
    expect(calls).to.deep.include({ method: "ledgerBalance", owner, token: USDC.address, from: period.from });
    expect(calls).to.deep.include({ method: "ledgerTotals", owner, token: USDC.address, from: period.from, to: period.to });
    expect(calls).to.deep.include({ method: "ledgerPage", owner, token: USDC.address, from: period.from, to: period.to, limit: 4, cursor: undefined });
  });

  it("has no next cursor on the last page, and passes the page cursor on", async () => {
    const { rows, indexed, calls } = setup(3);
    const { deps } = depsWith(store, indexed);
    const cursor = { timestamp: rows[0].timestamp, id: "e0" };
    const statement = await chainStatement(deps, uniqueId("mer"), scopeOf(31337, 9n), period, { limit: 2, cursor });
    expect(statement.entries.map((entry) => entry.id)).to.deep.equal(["e1", "e2"]);
    expect(statement.nextCursor).to.equal(null);
    expect(calls.find((call) => call.method === "ledgerPage")).to.deep.include({ limit: 3, cursor });
  });

  it("has no next cursor when the page is exactly full", async () => {
    const { indexed } = setup(2);
    const { deps } = depsWith(store, indexed);
    const statement = await chainStatement(deps, uniqueId("mer"), scopeOf(31337, 9n), period, { limit: 2 });
    expect(statement.entries).to.have.length(2);
    expect(statement.nextCursor).to.equal(null);
  });

  it("is empty with equal balances when nothing moved", async () => {
    const { indexed } = setup(0, { balance: 42n });
    const { deps } = depsWith(store, indexed);
    const statement = await chainStatement(deps, uniqueId("mer"), scopeOf(31337, 9n), period, { limit: 10 });
    expect(statement).to.include({ openingBalance: "0.000042", closingBalance: "0.000042", closingBalanceBaseUnits: "42", entryCount: 0, nextCursor: null });
    expect(statement.entries).to.deep.equal([]);
  });
});
