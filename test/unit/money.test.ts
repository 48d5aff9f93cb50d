import { expect } from "chai";
import { AMOUNT_ERROR_MESSAGES, formatAmount, parseAmount } from "../../api/money";

const MAX = 2n ** 96n - 1n; // 79228162514264337593543950335

describe("unit: api/money parseAmount", () => {
  it("parses a decimal string into base units", () => {
    expect(parseAmount("25.00", 6)).to.deep.equal({ ok: true, value: 25_000_000n });
    expect(parseAmount("25", 6)).to.deep.equal({ ok: true, value: 25_000_000n });
    expect(parseAmount("1.5", 18)).to.deep.equal({ ok: true, value: 1_500_000_000_000_000_000n });
    expect(parseAmount("123.456789", 6)).to.deep.equal({ ok: true, value: 123_456_789n });
  });

  it("accepts the smallest unit", () => {
    expect(parseAmount("0.000001", 6)).to.deep.equal({ ok: true, value: 1n });
    expect(parseAmount("0.01", 2)).to.deep.equal({ ok: true, value: 1n });
    expect(parseAmount("1", 0)).to.deep.equal({ ok: true, value: 1n });
  });

  it("refuses more fraction digits than the token has, even zeros", () => {
    expect(parseAmount("0.0000001", 6)).to.deep.equal({ ok: false, error: "too_precise" });
    expect(parseAmount("1.0000000", 6)).to.deep.equal({ ok: false, error: "too_precise" });
    expect(parseAmount("1.5", 0)).to.deep.equal({ ok: false, error: "too_precise" });
    expect(parseAmount("1.005", 2)).to.deep.equal({ ok: false, error: "too_precise" });
  });

  it("accepts exactly as many fraction digits as the token has", () => {
    expect(parseAmount("1.123456", 6)).to.deep.equal({ ok: true, value: 1_123_456n });
    expect(parseAmount("0.05", 2)).to.deep.equal({ ok: true, value: 5n });
  });

  it("refuses zero in any spelling", () => {
    for (const text of ["0", "0.0", "0.00", "0.000000"]) {
      expect(parseAmount(text, 6), text).to.deep.equal({ ok: false, error: "not_positive" });
    }
    expect(parseAmount("0", 0)).to.deep.equal({ ok: false, error: "not_positive" });
  });

  it("accepts 2^96 - 1 base units and refuses one more", () => {
    expect(parseAmount(MAX.toString(), 0)).to.deep.equal({ ok: true, value: MAX });
    expect(parseAmount((MAX + 1n).toString(), 0)).to.deep.equal({ ok: false, error: "too_large" });
    expect(parseAmount("79228162514264337593543.950335", 6)).to.deep.equal({ ok: true, value: MAX });
    expect(parseAmount("79228162514264337593543.950336", 6)).to.deep.equal({ ok: false, error: "too_large" });
  });

  it("reads up to 41 whole digits (then too_large) and refuses a longer number as not a decimal", () => {
    expect(parseAmount("1" + "0".repeat(40), 0)).to.deep.equal({ ok: false, error: "too_large" });
    expect(parseAmount("1" + "0".repeat(41), 0)).to.deep.equal({ ok: false, error: "not_a_decimal" });
  });

  it("refuses leading zeros", () => {
    for (const text of ["01", "00", "00.5", "007.00"]) {
      expect(parseAmount(text, 6), text).to.deep.equal({ ok: false, error: "not_a_decimal" });
    }
    expect(parseAmount("0.5", 6)).to.deep.equal({ ok: true, value: 500_000n });
  });

  it("refuses signs, exponents, separators, spaces and half-written decimals", () => {
    for (const text of ["-1", "+1", "1e6", "1E6", "1,000", "1_000", " 1", "1 ", "1.", ".5", "", "abc", "0x10", "1.2.3", "١"]) {
      expect(parseAmount(text, 6), JSON.stringify(text)).to.deep.equal({ ok: false, error: "not_a_decimal" });
    }
  });

  it("says what is wrong in words, naming the decimals of the currency when too precise", () => {
    expect(AMOUNT_ERROR_MESSAGES.not_a_decimal(6)).to.equal('must be a positive decimal string such as "25.00" (no sign, exponent or separators)');
    expect(AMOUNT_ERROR_MESSAGES.not_positive(6)).to.equal("must be greater than zero");
    expect(AMOUNT_ERROR_MESSAGES.too_precise(6)).to.equal("has more than 6 decimal places for this currency");
    expect(AMOUNT_ERROR_MESSAGES.too_precise(2)).to.equal("has more than 2 decimal places for this currency");
    expect(AMOUNT_ERROR_MESSAGES.too_large(6)).to.equal("is too large");
  });
});

describe("unit: api/money formatAmount", () => {
  it("shows at least two fraction digits", () => {
    expect(formatAmount(25_000_000n, 6)).to.equal("25.00");
    expect(formatAmount(1_500_000n, 6)).to.equal("1.50");
    expect(formatAmount(0n, 6)).to.equal("0.00");
    expect(formatAmount(10n ** 18n, 18)).to.equal("1.00");
  });

  it("keeps every significant fraction digit", () => {
    expect(formatAmount(1n, 6)).to.equal("0.000001");
    expect(formatAmount(123_456_789n, 6)).to.equal("123.456789");
    expect(formatAmount(1_230n, 6)).to.equal("0.00123");
  });

  it("pads a two-decimal currency to two digits", () => {
    expect(formatAmount(100n, 2)).to.equal("1.00");
    expect(formatAmount(150n, 2)).to.equal("1.50");
    expect(formatAmount(5n, 2)).to.equal("0.05");
  });

  it("leaves currencies with fewer than two decimals as they are", () => {
    expect(formatAmount(5n, 0)).to.equal("5");
    expect(formatAmount(15n, 1)).to.equal("1.5");
    expect(formatAmount(10n, 1)).to.equal("1");
  });

  it("formats negative amounts (refunds, payouts) with the same rules", () => {
    expect(formatAmount(-2_500_000n, 6)).to.equal("-2.50");
  });

  it("round-trips with parseAmount", () => {
    for (const [text, decimals] of [["25.00", 6], ["0.000001", 6], ["1.50", 2], ["79228162514264337593543.950335", 6]] as const) {
      const parsed = parseAmount(text, decimals);
      if (!parsed.ok) throw new Error(`${text} did not parse`);
      expect(formatAmount(parsed.value, decimals)).to.equal(text);
    }
  });
});
