/**
 * The API's configuration (api/config.ts): secrets are generated once into the data directory and kept there
 * for a local stack, refused against chains that are not local unless explicitly allowed, and every setting is
 * validated once with a message naming the variable.
 */
import { expect } from "chai";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { ConfigError, loadApiConfig } from "../../api/config";

describe("api/config: loadApiConfig", () => {
  let directory: string;
  beforeEach(() => {
    directory = mkdtempSync(path.join(os.tmpdir(), "chainbill-config-"));
  });
  afterEach(() => rmSync(directory, { recursive: true, force: true }));

  it("generates the admin key and the operator secret once into the data directory (mode 600) and reuses them", () => {
    const first = loadApiConfig({ DATA_DIR: directory });
    expect(first.generatedSecrets).to.deep.equal(["admin-api-key", "operator-key-secret"]);
    expect(first.adminApiKey).to.match(/^admin_[A-Za-z0-9_-]{32}$/);
    expect(readFileSync(path.join(directory, "admin-api-key"), "utf8").trim()).to.equal(first.adminApiKey);
    expect(statSync(path.join(directory, "operator-key-secret")).mode & 0o777).to.equal(0o600);
    const second = loadApiConfig({ DATA_DIR: directory });
    expect(second.adminApiKey).to.equal(first.adminApiKey);
    expect(second.operatorKeySecret.equals(first.operatorKeySecret)).to.equal(true);
  });

  it("refuses generated secrets against a chain that is not local, naming what to set", () => {
    let error: unknown;
    try {
      loadApiConfig({ DATA_DIR: directory }, [11155111]);
    } catch (caught) {
      error = caught;
    }
    expect(error).to.be.instanceOf(ConfigError);
    expect(String(error)).to.contain("ADMIN_API_KEY and OPERATOR_KEY_SECRET are not set").and.to.contain("11155111").and.to.contain("openssl rand -hex 32");
    // Nothing was generated on the way.
    expect(() => statSync(path.join(directory, "admin-api-key"))).to.throw();
  });

  it("accepts configured secrets against a remote chain, and generated ones only when explicitly allowed", () => {
    const configured = loadApiConfig({ DATA_DIR: directory, ADMIN_API_KEY: "a".repeat(24), OPERATOR_KEY_SECRET: "ab".repeat(32) }, [84532]);
    expect(configured.generatedSecrets).to.deep.equal([]);
    const allowed = loadApiConfig({ DATA_DIR: directory, ALLOW_GENERATED_SECRETS: "true" }, [84532]);
    expect(allowed.generatedSecrets).to.have.length(2);
  });

  it("validates settings once, naming the variable", () => {
    for (const [variable, value] of [["OPERATOR_KEY_SECRET", "not-hex"], ["ADMIN_API_KEY", "short"], ["INDEX_STALL_SECONDS", "0"], ["LOG_LEVEL", "loud"]] as const) {
      expect(() => loadApiConfig({ DATA_DIR: directory, [variable]: value }), variable).to.throw(ConfigError, variable);
    }
    expect(loadApiConfig({ DATA_DIR: directory, CORS_ORIGINS: " https://a.example, https://b.example ,," }).corsOrigins).to.deep.equal(["https://a.example", "https://b.example"]);
  });
});
