/**
 * `npm start -- --help` lists every environment variable the stack reads: the API's configuration, the chains,
 * the indexer, the deploy. Found by reading the code itself, so a new variable without a line in --help fails.
 */
import { expect } from "chai";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { API_ENVIRONMENT } from "../../api/config";

const ROOT = path.join(__dirname, "..", "..");

/** Read by the stack but set by npm start itself, or not meant for users of npm start (with why). */
const NOT_FOR_USERS: Record<string, string> = {
  API_PORT: "npm start passes PORT as API_PORT (Ponder reads PORT itself)",
  API_HOST: "npm start passes HOST as API_HOST",
  API_STORE_DIR: "derived from DATA_DIR",
  PGLITE_DIR: "derived from DATA_DIR",
  LOCAL_RPC_URL: "npm start points the deploy at its chain",
  CUSTOM_RPC_URL: "npm start points the deploy at its chain",
  HARDHAT_CHAIN_ID: "tests run a second local chain",
  REPORT_GAS: "the gas reporter of the contract tests",
  CHECK: "npm run compile's freshness check",
  NO_COLOR: "the terminal convention",
};

function sourceFiles(entry: string): string[] {
  const full = path.join(ROOT, entry);
  if (statSync(full).isFile()) return [full];
  return readdirSync(full).flatMap((name) => (name === "node_modules" || name === "client" ? [] : sourceFiles(path.join(entry, name))));
}

function variablesReadByTheCode(): Set<string> {
  const names = new Set<string>(API_ENVIRONMENT);
  for (const file of ["api", "contracts", "indexer", "scripts", "hardhat.config.ts"].flatMap(sourceFiles).filter((name) => name.endsWith(".ts"))) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/(?:process\.env|\benv)\.([A-Z][A-Z0-9_]+)/g)) names.add(match[1]);
    for (const match of text.matchAll(/env\[`([A-Z_]+)\$\{[a-zA-Z]+\}([A-Z_]+)`\]/g)) names.add(`${match[1]}<id>${match[2]}`);
    for (const match of text.matchAll(/number\("([A-Z][A-Z0-9_]+)"/g)) names.add(match[1]);
  }
  return names;
}

describe("npm start --help", function () {
  this.timeout(60_000);

  it("lists every environment variable the stack reads", () => {
    const help = execFileSync(process.execPath, ["-r", "ts-node/register/transpile-only", path.join(ROOT, "scripts", "start.ts"), "--help"], { cwd: ROOT, encoding: "utf8" });
    const missing = [...variablesReadByTheCode()].filter((name) => !(name in NOT_FOR_USERS) && !help.includes(name)).sort();
    expect(missing, `add these to scripts/start.ts HELP: ${missing.join(", ")}`).to.deep.equal([]);
    expect(help).to.contain("PORT").and.to.contain("OPERATOR_KEY_SECRET").and.to.contain("LOG_LEVEL").and.to.contain("CHAIN_<id>_WS_URL");
  });
});
