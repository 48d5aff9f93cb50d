import { expect } from "chai";
import { decodeCursor, encodeCursor, requireCursor } from "../../api/cursor";
import { ProblemError } from "../../api/problems";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64url");

describe("unit: api/cursor", () => {
  describe("encodeCursor", () => {
    it("is cur_ and the unpadded base64url of the JSON array of the parts as strings", () => {
      expect(encodeCursor(["x"])).to.equal("cur_WyJ4Il0");
      expect(encodeCursor(["a", 1, 2n])).to.equal(`cur_${b64('["a","1","2"]')}`);
    });

    it("never contains characters outside base64url", () => {
      const cursor = encodeCursor(["??>>~~", "ü", "\u0000", 'quote"', 10n ** 30n]);
      expect(cursor).to.match(/^cur_[A-Za-z0-9_-]+$/);
    });
  });

  describe("decodeCursor", () => {
    it("round-trips the parts of encodeCursor as strings", () => {
      expect(decodeCursor(encodeCursor(["2026-01-31T00:00:00Z", 42, 7n]), 3)).to.deep.equal(["2026-01-31T00:00:00Z", "42", "7"]);
      expect(decodeCursor(encodeCursor(["ü", 'quote"', ""]), 3)).to.deep.equal(["ü", 'quote"', ""]);
      expect(decodeCursor(encodeCursor([]), 0)).to.deep.equal([]);
    });

    it("refuses a cursor with another number of parts", () => {
      const cursor = encodeCursor(["a", "b"]);
      expect(decodeCursor(cursor, 1)).to.equal(undefined);
      expect(decodeCursor(cursor, 3)).to.equal(undefined);
      expect(decodeCursor(cursor, 2)).to.deep.equal(["a", "b"]);
    });

    it("refuses characters outside base64url (a quote before the payload)", () => {
      expect(decodeCursor("cur_'eyJzIjoxfQ", 1)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64('["x"]')}.`, 1)).to.equal(undefined);
      expect(decodeCursor(`cur_ ${b64('["x"]')}`, 1)).to.equal(undefined);
    });

    it("refuses padding", () => {
      const payload = b64('["xy"]'); // 6 bytes: no padding needed
      expect(decodeCursor(`cur_${payload}`, 1)).to.deep.equal(["xy"]);
      const padded = Buffer.from('["x"]').toString("base64"); // 5 bytes: one "="
      expect(padded.endsWith("=")).to.equal(true);
      expect(decodeCursor(`cur_${padded}`, 1)).to.equal(undefined);
      expect(decodeCursor(`cur_${payload}==`, 1)).to.equal(undefined);
    });

    it("refuses standard base64's + and /", () => {
      const cursor = encodeCursor(["??>>"]); // encodes with - or _ in base64url
      expect(cursor).to.match(/[-_]/);
      expect(decodeCursor(cursor, 1)).to.deep.equal(["??>>"]);
      expect(decodeCursor(cursor.replace(/-/g, "+").replace(/_/g, "/"), 1)).to.equal(undefined);
    });

    it("refuses a wrong or missing prefix", () => {
      const payload = encodeCursor(["x"]).slice(4);
      for (const cursor of [payload, `cux_${payload}`, `CUR_${payload}`, `cur${payload}`, `xcur_${payload}`, `cur__${payload}`]) {
        expect(decodeCursor(cursor, 1), cursor).to.equal(undefined);
      }
    });

    it("refuses an empty payload", () => {
      expect(decodeCursor("cur_", 0)).to.equal(undefined);
      expect(decodeCursor("", 0)).to.equal(undefined);
    });

    it("refuses non-canonical base64 (the same bytes with other trailing bits)", () => {
      expect(encodeCursor(["x"])).to.equal("cur_WyJ4Il0");
      expect(Buffer.from("WyJ4Il1", "base64url").toString()).to.equal('["x"]');
      expect(decodeCursor("cur_WyJ4Il1", 1)).to.equal(undefined);
      expect(decodeCursor("cur_WyJ4Il0", 1)).to.deep.equal(["x"]);
    });

    it("refuses a payload that is not JSON", () => {
      expect(decodeCursor(`cur_${b64("not json")}`, 1)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64('["x"')}`, 1)).to.equal(undefined);
    });

    it("refuses JSON that is not an array", () => {
      expect(decodeCursor("cur_eyJzIjoxfQ", 1)).to.equal(undefined); // {"s":1}
      expect(decodeCursor(`cur_${b64('"x"')}`, 1)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64("null")}`, 0)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64('{"length":1,"0":"x"}')}`, 1)).to.equal(undefined);
    });

    it("refuses parts that are not strings", () => {
      expect(decodeCursor(`cur_${b64("[1]")}`, 1)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64('["a",1]')}`, 2)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64('[1,"a"]')}`, 2)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64("[null]")}`, 1)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64('[["x"]]')}`, 1)).to.equal(undefined);
    });

    it("refuses JSON written another way than encodeCursor writes it", () => {
      expect(decodeCursor(`cur_${b64('[ "x"]')}`, 1)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64('["\\u0078"]')}`, 1)).to.equal(undefined);
      expect(decodeCursor(`cur_${b64('["x"]\n')}`, 1)).to.equal(undefined);
    });

    it("accepts a payload of 600 characters and refuses a longer one", () => {
      const longest = encodeCursor(["a".repeat(446)]); // 450 bytes of JSON: 600 characters
      expect(longest.length).to.equal(4 + 600);
      expect(decodeCursor(longest, 1)).to.deep.equal(["a".repeat(446)]);
      const tooLong = encodeCursor(["a".repeat(447)]);
      expect(tooLong.length).to.equal(4 + 602);
      expect(decodeCursor(tooLong, 1)).to.equal(undefined);
      expect(decodeCursor(encodeCursor(["a".repeat(5000)]), 1)).to.equal(undefined);
    });

    it("accepts the shortest canonical payload", () => {
      expect(decodeCursor(`cur_${b64("[]")}`, 0)).to.deep.equal([]);
    });
  });

  describe("requireCursor", () => {
    it("returns the parts of a valid cursor", () => {
      expect(requireCursor(encodeCursor(["a", "b"]), 2)).to.deep.equal(["a", "b"]);
    });

    it("passes the parts to the check and returns them when it agrees", () => {
      const seen: string[][] = [];
      const parts = requireCursor(encodeCursor(["7", "x"]), 2, (given) => {
        seen.push(given);
        return true;
      });
      expect(parts).to.deep.equal(["7", "x"]);
      expect(seen).to.deep.equal([["7", "x"]]);
    });

    function expectCursorProblem(run: () => unknown) {
      let caught: unknown;
      try {
        run();
      } catch (error) {
        caught = error;
      }
      expect(caught).to.be.instanceOf(ProblemError);
      const problem = caught as ProblemError;
      expect(problem.slug).to.equal("validation-error");
      expect(problem.status).to.equal(422);
      expect(problem.extensions).to.deep.equal({
        errors: [{ field: "cursor", message: "is not a cursor returned by this list (pass the previous page's `nextCursor`)" }],
      });
    }

    it("is a 422 validation problem on `cursor` for a tampered cursor", () => {
      expectCursorProblem(() => requireCursor("cur_'eyJzIjoxfQ", 1));
      expectCursorProblem(() => requireCursor("cur_WyJ4Il1", 1));
    });

    it("is a 422 validation problem on `cursor` for a cursor of another list (wrong part count)", () => {
      expectCursorProblem(() => requireCursor(encodeCursor(["a"]), 2));
    });

    it("is a 422 validation problem on `cursor` when the check refuses the parts", () => {
      expectCursorProblem(() => requireCursor(encodeCursor(["not-a-number"]), 1, ([part]) => /^\d+$/.test(part)));
    });
  });
});
