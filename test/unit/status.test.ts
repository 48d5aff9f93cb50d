import { expect } from "chai";
import type { IndexedInvoice } from "../../api/indexed";
import { INVOICE_STATUSES, confirmations, invoiceStatus } from "../../api/status";
import { statusOf } from "../../api/invoices/view";
import { depositTransferUri } from "../../api/invoices/instructions";
import type { InvoiceRow } from "../../api/invoices/rows";

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
    depositHeld: 0n,
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

  it("only ever answers one of INVOICE_STATUSES, which lists the eleven statuses in lifecycle order (pending, underpaid, overpaid: deposits)", () => {
    expect(INVOICE_STATUSES).to.deep.equal(["open", "pending", "underpaid", "expired", "void", "paid", "overpaid", "disputed", "partially_refunded", "released", "refunded"]);
    const seen = new Set<string>();
    for (const status of [undefined, "held", "released", "refunded", "disputed", "voided"]) {
      for (const refundedAmount of [0n, 1n]) {
        for (const now of [EXPIRES_AT - 1n, EXPIRES_AT]) {
          seen.add(invoiceStatus(status === undefined ? undefined : indexed({ status, refundedAmount }), terms, now));
        }
      }
    }
    // pending, underpaid and overpaid come from what arrived at an address: BTC invoices (api/bitcoin/state.ts) and
    // EVM deposit addresses (statusOf, below).
    expect([...seen].sort()).to.deep.equal(INVOICE_STATUSES.filter((status) => !["pending", "underpaid", "overpaid"].includes(status)).sort());
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

describe("unit: api/invoices/view statusOf (deposit addresses)", () => {
  const row = { amount: "25000000", expiresAt: EXPIRES_AT } as InvoiceRow;
  const before = EXPIRES_AT - 1n;
  const seen = (balance: bigint) => ({ balance, block: 90n });

  it("an open invoice with nothing at its address stays open", () => {
    expect(statusOf(row, undefined, before, seen(0n))).to.equal("open");
    expect(statusOf(row, undefined, before)).to.equal("open");
  });
  it("one base unit short is underpaid; exactly the amount, or more, is pending (enough to sweep)", () => {
    expect(statusOf(row, undefined, before, seen(1n))).to.equal("underpaid");
    expect(statusOf(row, undefined, before, seen(24_999_999n))).to.equal("underpaid");
    expect(statusOf(row, undefined, before, seen(25_000_000n))).to.equal("pending");
    expect(statusOf(row, undefined, before, seen(25_000_001n))).to.equal("pending");
  });
  it("money arriving at an expired invoice's address does not make it payable again", () => {
    expect(statusOf(row, undefined, EXPIRES_AT, seen(25_000_000n))).to.equal("expired");
  });
  it("a paid invoice with an excess held for the refund address is overpaid until it is returned", () => {
    expect(statusOf(row, indexed({ depositHeld: 1n }), before)).to.equal("overpaid");
    expect(statusOf(row, indexed({ depositHeld: 0n }), before)).to.equal("paid");
    // Later states are the escrow's: a released invoice is released whatever still waits for the refund address.
    expect(statusOf(row, indexed({ status: "released", depositHeld: 1n }), before)).to.equal("released");
  });
  it("overpaid is one of the documented statuses", () => {
    expect(INVOICE_STATUSES).to.include.members(["pending", "underpaid", "overpaid"]);
  });
});

describe("unit: api/invoices/instructions depositTransferUri (EIP-681 plain transfers)", () => {
  const deposit = "0x1111111111111111111111111111111111111111";
  it("an ERC-20 invoice: the token's transfer function with the deposit address and base units", () => {
    expect(depositTransferUri(8453, "0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913", deposit, 25_000_000n)).to.equal(
      `ethereum:0x833589fCD6eDb6E08f4c7C32D4f71b54bdA02913@8453/transfer?address=${deposit}&uint256=25000000`,
    );
  });
  it("an ETH invoice: a value transfer to the deposit address, in wei", () => {
    expect(depositTransferUri(1, "0x0000000000000000000000000000000000000000", deposit, 10n ** 16n)).to.equal(`ethereum:${deposit}@1?value=10000000000000000`);
  });
});
