import { expect } from "chai";
import { ProblemError } from "../../api/problems";
import { DEFAULT_PERIOD_SECONDS, parseInstant, statementPeriod } from "../../api/statements/period";

const FORMAT_MESSAGE = "must be an ISO 8601 date (2026-01-31) or date-time with an offset (2026-01-31T12:00:00Z)";
const INVALID_MESSAGE = "is not a valid calendar date and time";
const seconds = (iso: string) => BigInt(Date.parse(iso) / 1000);

function problemOf(run: () => unknown): ProblemError {
  try {
    run();
  } catch (error) {
    if (error instanceof ProblemError) return error;
    throw error;
  }
  throw new Error("expected a problem");
}

describe("unit: api/statements/period parseInstant", () => {
  it("reads a date as midnight UTC", () => {
    expect(parseInstant("2026-01-31")).to.equal(Date.UTC(2026, 0, 31));
    expect(parseInstant("1970-01-01")).to.equal(0);
  });

  it("reads a date-time in UTC (Z)", () => {
    expect(parseInstant("2026-01-31T12:34:56Z")).to.equal(Date.UTC(2026, 0, 31, 12, 34, 56));
  });

  it("reads a date-time with a positive or negative offset", () => {
    expect(parseInstant("2026-01-31T12:00:00+02:00")).to.equal(Date.UTC(2026, 0, 31, 10, 0, 0));
    expect(parseInstant("2026-01-31T12:00:00-05:30")).to.equal(Date.UTC(2026, 0, 31, 17, 30, 0));
    expect(parseInstant("2026-01-01T00:30:00+01:00")).to.equal(Date.UTC(2025, 11, 31, 23, 30, 0));
    expect(parseInstant("2026-01-31T12:00:00+23:59")).to.equal(Date.UTC(2026, 0, 30, 12, 1, 0));
  });

  it("reads a date-time without seconds", () => {
    expect(parseInstant("2026-01-31T12:34Z")).to.equal(Date.UTC(2026, 0, 31, 12, 34));
  });

  it("keeps fractional seconds (to the millisecond)", () => {
    expect(parseInstant("2026-01-31T12:00:00.5Z")).to.equal(Date.UTC(2026, 0, 31, 12, 0, 0, 500));
    expect(parseInstant("2026-01-31T12:00:00.123456789Z")).to.equal(Date.UTC(2026, 0, 31, 12, 0, 0, 123));
  });

  it("accepts the last valid value of every field", () => {
    expect(parseInstant("2026-12-31T23:59:59Z")).to.equal(Date.UTC(2026, 11, 31, 23, 59, 59));
    expect(parseInstant("2024-02-29")).to.equal(Date.UTC(2024, 1, 29));
  });

  it("refuses a date-time without an offset, and other shapes", () => {
    for (const text of [
      "2026-01-31T12:00:00",
      "2026-01-31T12",
      "2026-01-31 12:00:00Z",
      "2026-1-31",
      "20260131",
      "26-01-31",
      " 2026-01-31",
      "2026-01-31 ",
      "2026-01-31T12:00:00.Z",
      "2026-01-31T12:00:00.1234567890Z",
      "2026-01-31T12:00:00+0200",
      "2026-01-31T12:00:00z",
      "2026-01-31Z",
      "",
      "yesterday",
      "1769860800",
    ]) {
      expect(parseInstant(text), JSON.stringify(text)).to.equal(FORMAT_MESSAGE);
    }
  });

  it("refuses days that do not exist in the calendar", () => {
    for (const text of ["2026-02-30", "2026-02-29", "2025-02-29", "2026-04-31", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32"]) {
      expect(parseInstant(text), text).to.equal(INVALID_MESSAGE);
    }
    expect(parseInstant("2026-02-30T12:00:00Z")).to.equal(INVALID_MESSAGE);
  });

  it("refuses years before 0100 (Date.UTC reads them as 19xx, so the calendar check fails)", () => {
    expect(parseInstant("0099-12-31")).to.equal(INVALID_MESSAGE);
    expect(parseInstant("0000-01-01")).to.equal(INVALID_MESSAGE);
    expect(parseInstant("0100-01-01")).to.equal(Date.parse("0100-01-01T00:00:00Z"));
  });

  it("refuses times that do not exist", () => {
    for (const text of [
      "2026-01-31T24:00:00Z",
      "2026-01-31T12:60:00Z",
      "2026-01-31T12:00:60Z",
      "2026-01-31T12:00:00+24:00",
      "2026-01-31T12:00:00+02:60",
    ]) {
      expect(parseInstant(text), text).to.equal(INVALID_MESSAGE);
    }
  });
});

describe("unit: api/statements/period statementPeriod", () => {
  const NOW = 1_800_000_000n;

  it("defaults to the 30 days before the default end", () => {
    expect(DEFAULT_PERIOD_SECONDS).to.equal(30n * 86_400n);
    expect(statementPeriod({}, NOW)).to.deep.equal({ from: NOW - 2_592_000n, to: NOW });
  });

  it("takes `to` from the query and `from` 30 days before it", () => {
    expect(statementPeriod({ to: "2026-03-01" }, NOW)).to.deep.equal({ from: seconds("2026-01-30T00:00:00Z"), to: seconds("2026-03-01T00:00:00Z") });
  });

  it("takes `from` from the query and `to` from the default", () => {
    expect(statementPeriod({ from: "2026-01-01" }, NOW)).to.deep.equal({ from: seconds("2026-01-01T00:00:00Z"), to: NOW });
  });

  it("takes both bounds, with offsets, as unix seconds", () => {
    expect(statementPeriod({ from: "2026-01-01T00:00:00+01:00", to: "2026-02-01T00:00:00-01:00" }, NOW)).to.deep.equal({
      from: seconds("2025-12-31T23:00:00Z"),
      to: seconds("2026-02-01T01:00:00Z"),
    });
  });

  it("rounds fractional bounds up to the next whole second", () => {
    expect(statementPeriod({ from: "1970-01-01T00:00:10.5Z", to: "1970-01-01T00:00:12.001Z" }, NOW)).to.deep.equal({ from: 11n, to: 13n });
    expect(statementPeriod({ from: "1970-01-01T00:00:10Z", to: "1970-01-01T00:00:12Z" }, NOW)).to.deep.equal({ from: 10n, to: 12n });
  });

  it("accepts a period of one second", () => {
    expect(statementPeriod({ from: "1970-01-01T00:00:10Z", to: "1970-01-01T00:00:11Z" }, NOW)).to.deep.equal({ from: 10n, to: 11n });
  });

  it("refuses an empty period (from = to) as a 422 on `from`", () => {
    const problem = problemOf(() => statementPeriod({ from: "2026-01-31", to: "2026-01-31T00:00:00Z" }, NOW));
    expect(problem.slug).to.equal("validation-error");
    expect(problem.extensions).to.deep.equal({ errors: [{ field: "from", message: "must be before `to`" }] });
  });

  it("refuses an inverted period as a 422 on `from`", () => {
    const problem = problemOf(() => statementPeriod({ from: "2026-02-01", to: "2026-01-01" }, NOW));
    expect(problem.extensions).to.deep.equal({ errors: [{ field: "from", message: "must be before `to`" }] });
  });

  it("refuses a `from` after the default end", () => {
    const problem = problemOf(() => statementPeriod({ from: "2030-01-01" }, seconds("2026-01-01T00:00:00Z")));
    expect(problem.extensions).to.deep.equal({ errors: [{ field: "from", message: "must be before `to`" }] });
  });

  it("refuses a fractional empty period once rounded (10.2 to 10.7 is [11, 11))", () => {
    const problem = problemOf(() => statementPeriod({ from: "1970-01-01T00:00:10.2Z", to: "1970-01-01T00:00:10.7Z" }, NOW));
    expect(problem.extensions).to.deep.equal({ errors: [{ field: "from", message: "must be before `to`" }] });
  });

  it("names each invalid bound in one 422, `from` first", () => {
    const problem = problemOf(() => statementPeriod({ from: "2026-02-30", to: "soon" }, NOW));
    expect(problem.status).to.equal(422);
    expect(problem.extensions).to.deep.equal({
      errors: [
        { field: "from", message: INVALID_MESSAGE },
        { field: "to", message: FORMAT_MESSAGE },
      ],
    });
  });

  it("names only the invalid bound", () => {
    expect(problemOf(() => statementPeriod({ to: "2026-02-30" }, NOW)).extensions).to.deep.equal({
      errors: [{ field: "to", message: INVALID_MESSAGE }],
    });
    expect(problemOf(() => statementPeriod({ from: "x", to: "2026-01-01" }, NOW)).extensions).to.deep.equal({
      errors: [{ field: "from", message: FORMAT_MESSAGE }],
    });
  });
});
