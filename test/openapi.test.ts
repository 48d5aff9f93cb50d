import { expect } from "chai";
import { execFileSync } from "node:child_process";
import path from "node:path";

const ROOT = path.join(__dirname, "..");

describe("api/openapi.json and the typed client (api/client)", function () {
  this.timeout(60_000);
  it("match the API's routes (run `npm run openapi` after changing a route)", () => {
    const output = execFileSync(path.join(ROOT, "node_modules", ".bin", "tsx"), ["scripts/export-openapi.ts", "--check"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    expect(output).to.contain("current");
  });
});
