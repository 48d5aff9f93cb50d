import { expect } from "chai";
import type { IndexedInvoice } from "../../api/indexed";
import { INVOICE_STATUSES, confirmations, invoiceStatus } from "../../api/status";

const EXPIRES_AT = 1_800_000_000n;
const terms = { expiresAt: EXPIRES_AT };

function indexed(overrides: Partial<IndexedInvoice> = {}): IndexedInvoice {
  return {
    chainId: 31337,
    key: "0x01",
    merchantId: 1n,
    invoiceId: "0x02",
    status: "held",
    payer: "0x0000000000000000000000000000000000000003",
    token: "0x0000000000000000000000000000000000000004",
    amount: 25_000_000n,
    feeBps: 0,
    refundedAmount: 0n,
    releasedAmount: 0n,
    feeAmount: 0n,
    fulfilled: false,
    releaseAt: null,
    fulfillBy: null,
    disputeDeadline: null,
    lastDisputeId: null,
    paidAt: 1_700_000_000n,
    paidBlock: 100n,
    paidTransaction: "0x05",
    updatedAt: 1_700_000_000n,
    updatedBlock: 100n,
    ...overrides,
  } as IndexedInvoice;
}

describe("unit: api/status invoiceStatus", () => {
  describe("an invoice with no indexed on-chain record", () => {
    it("is open one second before expiresAt", () => {
      expect(invoiceStatus(undefined, terms, EXPIRES_AT - 1n)).to.equal("open");
    });

    it("is expired at exactly expiresAt", () => {
      expect(invoiceStatus(undefined, terms, EXPIRES_AT)).to.equal("expired");
    });

    it("is expired after expiresAt", () => {
      expect(invoiceStatus(undefined, terms, EXPIRES_AT + 86_400n)).to.equal("expired");
    });

    it("is open long before expiresAt", () => {
      expect(invoiceStatus(undefined, terms, 0n)).to.equal("open");
    });
  });

  describe("a held payment", () => {
    it("is paid", () => {
      expect(invoiceStatus(indexed({ status: "held" }), terms, EXPIRES_AT - 10n)).to.equal("paid");
    });

    it("stays paid after its expiresAt (expiry only stops new payments)", () => {
      expect(invoiceStatus(indexed({ status: "held" }), terms, EXPIRES_AT)).to.equal("paid");
      expect(invoiceStatus(indexed({ status: "held" }), terms, EXPIRES_AT + 1_000_000n)).to.equal("paid");
    });

    it("is partially_refunded once any part was refunded, before or after expiry", () => {
      expect(invoiceStatus(indexed({ status: "held", refundedAmount: 1n }), terms, EXPIRES_AT - 10n)).to.equal("partially_refunded");
      expect(invoiceStatus(indexed({ status: "held", refundedAmount: 24_999_999n }), terms, EXPIRES_AT + 10n)).to.equal(
        "partially_refunded",
      );
    });

    it("is paid, not partially_refunded, while nothing was refunded", () => {
      expect(invoiceStatus(indexed({ status: "held", refundedAmount: 0n }), terms, EXPIRES_AT + 10n)).to.equal("paid");
    });
  });

  describe("every other on-chain status", () => {
    for (const [onchain, expected] of [
      ["released", "released"],
      ["refunded", "refunded"],
      ["disputed", "disputed"],
      ["voided", "void"],
    ] as const) {
      it(`${onchain} is ${expected}, before and after expiresAt, whatever was refunded`, () => {
        for (const now of [EXPIRES_AT - 1n, EXPIRES_AT, EXPIRES_AT + 1n]) {
          for (const refundedAmount of [0n, 5n]) {
            expect(invoiceStatus(indexed({ status: onchain, refundedAmount }), terms, now), `${now} ${refundedAmount}`).to.equal(expected);
          }
        }
      });
    }

    it("a voided invoice is void even though its expiresAt has not come", () => {
      expect(invoiceStatus(indexed({ status: "voided", paidBlock: null }), terms, 0n)).to.equal("void");
    });
  });

  it("only ever answers one of INVOICE_STATUSES, which lists the ten statuses in lifecycle order (pending and underpaid: BTC)", () => {
    expect(INVOICE_STATUSES).to.deep.equal(["open", "pending", "underpaid", "expired", "void", "paid", "disputed", "partially_refunded", "released", "refunded"]);
    const seen = new Set<string>();
    for (const status of [undefined, "held", "released", "refunded", "disputed", "voided"]) {
      for (const refundedAmount of [0n, 1n]) {
        for (const now of [EXPIRES_AT - 1n, EXPIRES_AT]) {
          seen.add(invoiceStatus(status === undefined ? undefined : indexed({ status, refundedAmount }), terms, now));
        }
      }
    }
    // pending and underpaid come only from BTC invoices (api/bitcoin/state.ts, tested with the watcher).
    expect([...seen].sort()).to.deep.equal(INVOICE_STATUSES.filter((status) => status !== "pending" && status !== "underpaid").sort());
  });
});

describe("unit: api/status confirmations", () => {
  it("is 0 without an indexed record", () => {
    expect(confirmations(undefined, 500n)).to.equal(0);
  });

  it("is 0 while the invoice is unpaid (no payment block)", () => {
    expect(confirmations(indexed({ status: "voided", paidBlock: null }), 500n)).to.equal(0);
  });

  it("counts the payment's own block: 1 when the head is the payment block", () => {
    expect(confirmations(indexed({ paidBlock: 100n }), 100n)).to.equal(1);
  });

  it("counts every block on top of the payment block", () => {
    expect(confirmations(indexed({ paidBlock: 100n }), 101n)).to.equal(2);
    expect(confirmations(indexed({ paidBlock: 100n }), 109n)).to.equal(10);
  });

  it("is at least 1 when the cached head lags behind the indexed payment", () => {
    expect(confirmations(indexed({ paidBlock: 100n }), 95n)).to.equal(1);
    expect(confirmations(indexed({ paidBlock: 100n }), 0n)).to.equal(1);
  });

  it("is a plain number", () => {
    expect(confirmations(indexed({ paidBlock: 1n }), 12n)).to.be.a("number").and.equal(12);
  });
});
