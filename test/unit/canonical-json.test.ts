import { expect } from "chai";
import { canonicalJson } from "../../api/canonical-json";

describe("unit: api/canonical-json canonicalJson", () => {
  it("sorts object keys and writes no whitespace", () => {
    expect(canonicalJson({ b: 1, a: 2, c: { z: true, y: false } })).to.equal('{"a":2,"b":1,"c":{"y":false,"z":true}}');
  });

  it("gives the same text whatever the key order", () => {
    expect(canonicalJson({ x: [1, { q: 1, p: 2 }], a: "s" })).to.equal(canonicalJson({ a: "s", x: [1, { p: 2, q: 1 }] }));
  });

  it("sorts keys by UTF-16 code units: capitals before small letters, a prefix first, non-ASCII last", () => {
    expect(canonicalJson({ b: 1, é: 2, aa: 3, B: 4, a: 5, "": 6, "1": 7 })).to.equal('{"":6,"1":7,"B":4,"a":5,"aa":3,"b":1,"é":2}');
  });

  it("encodes nested objects and arrays", () => {
    expect(canonicalJson({ z: { y: [1, { b: true, a: null }, []] }, a: "x", m: {} })).to.equal(
      '{"a":"x","m":{},"z":{"y":[1,{"a":null,"b":true},[]]}}',
    );
  });

  it("writes undefined array items as null, as JSON.stringify does", () => {
    expect(canonicalJson([1, undefined, 2])).to.equal("[1,null,2]");
    expect(canonicalJson([undefined])).to.equal("[null]");
    expect(canonicalJson([null, false, 0, ""])).to.equal('[null,false,0,""]');
  });

  it("leaves out object fields whose value is undefined, and keeps null ones", () => {
    expect(canonicalJson({ a: undefined, b: null, c: 1 })).to.equal('{"b":null,"c":1}');
    expect(canonicalJson({ a: undefined })).to.equal("{}");
  });

  it("refuses non-finite numbers", () => {
    for (const value of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      expect(() => canonicalJson(value)).to.throw("canonicalJson: non-finite number");
      expect(() => canonicalJson({ a: [value] })).to.throw("canonicalJson: non-finite number");
    }
  });

  it("writes finite numbers as JSON.stringify does", () => {
    expect(canonicalJson(0)).to.equal("0");
    expect(canonicalJson(-0)).to.equal("0");
    expect(canonicalJson(42)).to.equal("42");
    expect(canonicalJson(-1.5)).to.equal("-1.5");
    expect(canonicalJson(1e21)).to.equal("1e+21");
  });

  it("writes a bigint as its decimal string", () => {
    expect(canonicalJson(10n)).to.equal('"10"');
    expect(canonicalJson({ amount: 2n ** 96n - 1n })).to.equal('{"amount":"79228162514264337593543950335"}');
    expect(canonicalJson(-3n)).to.equal('"-3"');
  });

  it("writes null, booleans and strings as JSON", () => {
    expect(canonicalJson(null)).to.equal("null");
    expect(canonicalJson(true)).to.equal("true");
    expect(canonicalJson(false)).to.equal("false");
    expect(canonicalJson("")).to.equal('""');
    expect(canonicalJson("plain")).to.equal('"plain"');
  });

  it("escapes strings and keys exactly as JSON.stringify does", () => {
    const text = 'quote " backslash \\ newline \n tab \t nul \u0000 é ☕ \u2028';
    expect(canonicalJson(text)).to.equal(JSON.stringify(text));
    expect(canonicalJson({ [text]: text })).to.equal(`{${JSON.stringify(text)}:${JSON.stringify(text)}}`);
  });

  it("refuses values JSON has no form for", () => {
    expect(() => canonicalJson(undefined)).to.throw("canonicalJson: cannot encode undefined");
    expect(() => canonicalJson(() => 1)).to.throw("canonicalJson: cannot encode function");
    expect(() => canonicalJson(Symbol("s"))).to.throw("canonicalJson: cannot encode symbol");
    expect(() => canonicalJson({ nested: { f: () => 1 } })).to.throw("canonicalJson: cannot encode function");
  });

  it("parses back to the same value", () => {
    const value = { lineItems: [{ quantity: 3, unitAmount: "25.00", description: "Hours" }], customer: null, metadata: { k: "v" } };
    expect(JSON.parse(canonicalJson(value))).to.deep.equal(value);
  });
});
