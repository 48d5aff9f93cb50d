import { expect } from "chai";
import { keccak256, stringToBytes } from "viem";
import { detailsHash, type InvoiceDetails } from "../../api/invoices/details";

const hashOf = (canonical: string) => keccak256(stringToBytes(canonical));

describe("unit: api/invoices/details detailsHash", () => {
  it("is keccak256 of the canonical JSON of the details (keys sorted, no whitespace)", () => {
    const details: InvoiceDetails = {
      metadata: { order: "42", b: "x" },
      lineItems: [{ unitAmount: "25.00", quantity: 3, description: "Hours" }],
      description: "Consulting, March",
      customer: { id: "cus_1", email: "ada@example.com" },
    };
    const canonical =
      '{"customer":{"email":"ada@example.com","id":"cus_1"},"description":"Consulting, March",' +
      '"lineItems":[{"description":"Hours","quantity":3,"unitAmount":"25.00"}],"metadata":{"b":"x","order":"42"}}';
    expect(detailsHash(details)).to.equal(hashOf(canonical));
  });

  it("hashes absent optional fields as null, [] and {}", () => {
    const details: InvoiceDetails = { description: null, lineItems: [], customer: null, metadata: {} };
    expect(detailsHash(details)).to.equal(hashOf('{"customer":null,"description":null,"lineItems":[],"metadata":{}}'));
  });

  it("hashes every string as UTF-8 bytes, exactly as sent", () => {
    const details: InvoiceDetails = {
      description: "Café ☕ \"quoted\"\n",
      lineItems: [{ description: "Thé", quantity: 1, unitAmount: "3.50" }],
      customer: { id: "c" },
      metadata: {},
    };
    const canonical =
      '{"customer":{"id":"c"},"description":"Café ☕ \\"quoted\\"\\n","lineItems":[{"description":"Thé","quantity":1,"unitAmount":"3.50"}],"metadata":{}}';
    expect(detailsHash(details)).to.equal(hashOf(canonical));
    expect(detailsHash({ ...details, description: "Cafe ☕ \"quoted\"\n" })).not.to.equal(hashOf(canonical));
  });

  it("does not depend on the order of keys, and changes with any value", () => {
    const a: InvoiceDetails = { description: "d", lineItems: [], customer: { id: "x", email: "e@x" }, metadata: { a: "1", b: "2" } };
    const b: InvoiceDetails = { metadata: { b: "2", a: "1" }, customer: { email: "e@x", id: "x" }, lineItems: [], description: "d" };
    expect(detailsHash(a)).to.equal(detailsHash(b));
    expect(detailsHash({ ...a, metadata: { a: "1", b: "3" } })).not.to.equal(detailsHash(a));
    expect(detailsHash(a)).to.match(/^0x[0-9a-f]{64}$/);
  });
});
