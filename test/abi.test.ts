import { expect } from "chai";
import { readFile } from "node:fs/promises";
import { ABI_FILE, renderAbiModule } from "../scripts/export-abi";

describe("sdk/src/abi.ts (ABIs exported to dApps, re-exported by contracts/abi.ts)", () => {
  it("matches the compiled contracts (run `npm run compile` after changing a contract)", async () => {
    expect(await readFile(ABI_FILE, "utf8")).to.equal(await renderAbiModule());
  });
});
