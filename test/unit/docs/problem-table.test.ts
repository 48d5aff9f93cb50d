/**
 * docs/API.md's table of problem types must name every slug the API can answer (api/problems.ts PROBLEM_TYPES).
 * Kept apart from the module's unit tests (and out of the mutation run): it checks the documentation, not code.
 */
import { expect } from "chai";
import { readFileSync } from "node:fs";
import path from "node:path";
import { PROBLEM_TYPES } from "../../../api/problems";

const API_MD = path.join(__dirname, "..", "..", "..", "docs", "API.md");

/** The rows of the table whose header names the `type` column (`| status | \`type\` … |`). */
function problemTable(markdown: string): string {
  const lines = markdown.split("\n");
  const header = lines.findIndex((line) => /^\|\s*status\s*\|\s*`type`/.test(line));
  if (header < 0) throw new Error("docs/API.md has no problem table (a row starting `| status | `type``)");
  const rows: string[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line);
  }
  return rows.join("\n");
}

describe("unit: docs/API.md problem table", () => {
  it("lists every slug of PROBLEM_TYPES", () => {
    const table = problemTable(readFileSync(API_MD, "utf8"));
    const missing = Object.keys(PROBLEM_TYPES).filter((slug) => !table.includes(`\`${slug}\``));
    expect(missing, `slugs missing from docs/API.md's problem table`).to.deep.equal([]);
  });
});
