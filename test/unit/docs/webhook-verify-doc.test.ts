/**
 * docs/WEBHOOKS.md's plain-Node verifier (the ```ts block that starts with `// plain-node-verify`) must be right:
 * the block is taken from the page as written, compiled with TypeScript and run against signatures made by the
 * `standardwebhooks` package, the way chainbill signs deliveries. It accepts them (also two signatures, as during
 * a rotation, and a Buffer body) and refuses a changed body, a wrong secret and timestamps over 5 minutes off.
 * Kept with the documentation checks (and out of the mutation run): it checks the docs, not the API's code.
 */
import { expect } from "chai";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import path from "node:path";
import { Webhook } from "standardwebhooks";
import ts from "typescript";

const WEBHOOKS_MD = path.join(__dirname, "..", "..", "..", "docs", "WEBHOOKS.md");
const MARKER = "// plain-node-verify";

type Verify = (secret: string, headers: Record<string, string | string[] | undefined>, rawBody: Buffer | string, nowMs?: number) => { id: string; type: string };

/** The marked code block of the page, compiled to CommonJS and evaluated; its exported function. */
function verifierFromDocs(): Verify {
  const markdown = readFileSync(WEBHOOKS_MD, "utf8");
  const blocks = [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((match) => match[1]).filter((code) => code.trimStart().startsWith(MARKER));
  if (blocks.length !== 1) throw new Error(`docs/WEBHOOKS.md must have exactly one \`\`\`ts block starting with "${MARKER}" (found ${blocks.length})`);
  const { outputText, diagnostics } = ts.transpileModule(blocks[0], {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, strict: true },
    reportDiagnostics: true,
  });
  if (diagnostics?.length) throw new Error(`the snippet does not compile: ${diagnostics.map((entry) => ts.flattenDiagnosticMessageText(entry.messageText, "\n")).join("; ")}`);
  const module = { exports: {} as Record<string, unknown> };
  new Function("require", "module", "exports", outputText)(require, module, module.exports);
  const verify = Object.values(module.exports).find((value) => typeof value === "function");
  if (!verify) throw new Error("the snippet exports no function");
  return verify as Verify;
}

const newSecret = () => `whsec_${randomBytes(24).toString("base64")}`;

/** Headers as chainbill's worker sends them: signed with standardwebhooks at `at`. */
function signed(secrets: string[], id: string, body: string, at = new Date()) {
  return {
    "webhook-id": id,
    "webhook-timestamp": String(Math.floor(at.getTime() / 1000)),
    "webhook-signature": secrets.map((secret) => new Webhook(secret).sign(id, at, body)).join(" "),
  };
}

describe("unit: docs/WEBHOOKS.md plain-Node verifier", () => {
  let verify: Verify;
  before(() => {
    verify = verifierFromDocs();
  });
  const secret = newSecret();
  const id = "evt_5a0c4c0f7b1e4d2a9c3e8f6b2d1a7c90";
  const body = JSON.stringify({ id, type: "invoice.paid", timestamp: "2026-12-01T12:00:00.000Z", data: { invoiceId: "inv_1", amount: "25.00", note: "é ✓" } });

  it("accepts what standardwebhooks signs, as a string or a Buffer body, and returns the event", () => {
    const headers = signed([secret], id, body);
    expect(verify(secret, headers, body)).to.include({ id, type: "invoice.paid" });
    expect(verify(secret, headers, Buffer.from(body, "utf8"))).to.include({ id });
    // And standardwebhooks agrees (same inputs, same answer).
    expect(() => new Webhook(secret).verify(body, headers)).to.not.throw();
  });

  it("accepts either secret while two signatures are sent (rotation overlap)", () => {
    const previous = newSecret();
    const headers = signed([secret, previous], id, body);
    expect(headers["webhook-signature"].split(" ")).to.have.length(2);
    expect(verify(secret, headers, body)).to.include({ id });
    expect(verify(previous, headers, body)).to.include({ id });
  });

  it("refuses a changed body", () => {
    const headers = signed([secret], id, body);
    expect(() => verify(secret, headers, body.replace("25.00", "2500.00"))).to.throw(/no valid signature/);
    expect(() => verify(secret, headers, `${body} `)).to.throw(/no valid signature/);
  });

  it("refuses a wrong secret, another event id and a non-v1 signature", () => {
    const headers = signed([secret], id, body);
    expect(() => verify(newSecret(), headers, body)).to.throw(/no valid signature/);
    expect(() => verify(secret, { ...headers, "webhook-id": "evt_other" }, body)).to.throw(/no valid signature/);
    expect(() => verify(secret, { ...headers, "webhook-signature": headers["webhook-signature"].replace("v1,", "v2,") }, body)).to.throw(/no valid signature/);
  });

  it("refuses timestamps more than 5 minutes old or ahead, and missing headers", () => {
    const old = signed([secret], id, body, new Date(Date.now() - 6 * 60_000));
    expect(() => verify(secret, old, body)).to.throw(/5 minutes/);
    expect(() => new Webhook(secret).verify(body, old)).to.throw(/too old/);
    const ahead = signed([secret], id, body, new Date(Date.now() + 6 * 60_000));
    expect(() => verify(secret, ahead, body)).to.throw(/5 minutes/);
    const recent = signed([secret], id, body, new Date(Date.now() - 4 * 60_000));
    expect(verify(secret, recent, body)).to.include({ id });
    expect(() => verify(secret, { ...signed([secret], id, body), "webhook-timestamp": "soon" }, body)).to.throw(/5 minutes/);
    expect(() => verify(secret, { "webhook-id": id, "webhook-timestamp": String(Math.floor(Date.now() / 1000)) }, body)).to.throw(/missing/);
  });
});
