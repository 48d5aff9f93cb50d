/**
 * `npm run listen` against a real stack: the listener registers itself as a temporary endpoint, verifies what
 * chainbill delivers and forwards it to a real local app (a node http server verifying with `standardwebhooks`
 * and the listener's secret). The app's answer goes back to chainbill, so a failing or unreachable app is
 * retried (the stack retries after 1 s); stop() and SIGTERM delete the endpoint. The command line is run as
 * `npm run listen` runs it (node -r ts-node/register/transpile-only scripts/listen.ts).
 *
 * Run inside test/stack/webhooks.test.ts, on its stack (retries after 1 s), to spare a stack start.
 */
import { expect } from "chai";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { Webhook } from "standardwebhooks";
import { startListener, type Listener } from "../../scripts/listen";
import { createMerchant, invoicesOf, waitUntil, type Stack, type TestMerchant } from "./harness";

const ROOT = path.join(__dirname, "..", "..");
const LISTEN = path.join(ROOT, "scripts", "listen.ts");

interface Arrived {
  id: string;
  body: string;
  event: { id: string; type: string; data: Record<string, unknown> };
  /** The app verified it with the listener's secret. */
  verified: boolean;
  status: number;
}

/** The developer's app: verifies every request with `secret`, records it, answers what `respond` says. */
async function startApp() {
  const app = {
    secret: "",
    arrived: [] as Arrived[],
    respond: (_arrived: Arrived) => 200,
    port: 0,
    url: "",
    server: undefined as http.Server | undefined,
    async up() {
      const server = http.createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk: Buffer) => chunks.push(chunk));
        request.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          const headers = Object.fromEntries(
            ["webhook-id", "webhook-timestamp", "webhook-signature"].map((name) => [name, String(request.headers[name] ?? "")]),
          );
          let verified = false;
          try {
            new Webhook(app.secret).verify(body, headers);
            verified = true;
          } catch {
            // recorded as unverified
          }
          const arrived: Arrived = { id: headers["webhook-id"], body, event: JSON.parse(body) as Arrived["event"], verified, status: 0 };
          arrived.status = verified ? app.respond(arrived) : 400;
          app.arrived.push(arrived);
          response.writeHead(arrived.status, { "content-type": "text/plain" }).end(arrived.status < 300 ? "handled" : `app refused with ${arrived.status}`);
        });
      });
      await new Promise<void>((resolve) => server.listen(app.port, "127.0.0.1", () => resolve()));
      app.server = server;
      app.port = (server.address() as AddressInfo).port;
      app.url = `http://127.0.0.1:${app.port}/webhooks`;
    },
    async down() {
      const server = app.server;
      app.server = undefined;
      if (!server) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  await app.up();
  return app;
}

export function listenTests(sharedStack: () => Stack): void {
  describe("npm run listen", function () {
    this.timeout(300_000);
    let stack: Stack;
    let merchant: TestMerchant;
    let app: Awaited<ReturnType<typeof startApp>>;
    let listener: Listener;
    const lines: string[] = [];
    const children: ChildProcess[] = [];

    const api = (method: string, route: string, body?: unknown) => stack.api(method, route, { key: merchant.apiKey, body });
    const json = async <T>(response: Response, status = 200): Promise<T> => {
      const text = await response.text();
      expect(response.status, text).to.equal(status);
      return JSON.parse(text) as T;
    };
    const paidAt = (invoiceId: string) => app.arrived.filter((entry) => entry.event.type === "invoice.paid" && entry.event.data.invoiceId === invoiceId);
    const attemptsOf = async (eventId: string) =>
      (
        await json<{ data: { attempt: number; statusCode: number | null; responseExcerpt: string | null }[] }>(
          await api("GET", `/v1/webhook-endpoints/${listener.endpointId}/attempts?eventId=${eventId}`),
        )
      ).data;
    const endpoints = async () =>
      (
        await json<{ data: { id: string; url: string; description: string | null; events: string[]; expiresAt: string | null }[] }>(
          await api("GET", "/v1/webhook-endpoints"),
        )
      ).data;

    before(async () => {
      stack = sharedStack();
      merchant = await createMerchant(stack, 13, "Listen merchant");
      app = await startApp();
      listener = await startListener({
        apiUrl: stack.apiUrl,
        apiKey: merchant.apiKey,
        forwardTo: app.url,
        events: ["invoice.paid", "invoice.confirmed"],
        log: (line) => lines.push(line),
      });
      app.secret = listener.secret;
    });
    after(async () => {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await listener?.stop().catch(() => undefined);
      await app?.down();
    });

    it("registers a temporary loopback endpoint for the chosen events", async () => {
      expect(listener.secret).to.match(/^whsec_/);
      expect(listener.url).to.match(/^http:\/\/127\.0\.0\.1:\d+\/$/);
      const [endpoint] = (await endpoints()).filter((candidate) => candidate.id === listener.endpointId);
      expect(endpoint).to.include({ url: listener.url, description: "npm run listen" });
      expect(endpoint.events).to.deep.equal(["invoice.paid", "invoice.confirmed"]);
      const lifetime = Date.parse(endpoint.expiresAt!) - Date.now();
      expect(lifetime).to.be.within(86_000_000, 86_400_000);
    });

    it("forwards a paid invoice's invoice.paid to the app, which verifies it with the listener's secret", async () => {
      const invoice = await invoicesOf(stack, merchant, stack.chains[0]).paid({ amount: "0.01", currency: "ETH" });
      await waitUntil("invoice.paid at the app", async () => paidAt(invoice.id).length > 0, 30_000);
      const [paid] = paidAt(invoice.id);
      expect(paid.verified).to.equal(true);
      expect(paid.event.id).to.equal(paid.id);
      expect(paid.event.data).to.include({ invoiceId: invoice.id, currency: "ETH", amount: "0.01" });
      // The webhook-id the app saw is the one chainbill sent: chainbill's delivery log has it, answered with the app's 200.
      await waitUntil("the attempt in chainbill's log", async () => (await attemptsOf(paid.id)).length === 1, 10_000);
      const log = await attemptsOf(paid.id);
      expect(log.map((entry) => [entry.attempt, entry.statusCode, entry.responseExcerpt])).to.deep.equal([[1, 200, "handled"]]);
      const event = await json<{ id: string; type: string }>(await api("GET", `/v1/events/${paid.id}`));
      expect(event).to.include({ id: paid.id, type: "invoice.paid" });
      const line = lines.find((candidate) => candidate.includes(paid.id));
      expect(line).to.match(new RegExp(`^\\d\\d:\\d\\d:\\d\\d  invoice\\.paid +${paid.id}  ${invoice.id}  → 200 \\(\\d+ ms\\)$`));
      await waitUntil(
        "invoice.confirmed at the app",
        async () => app.arrived.some((entry) => entry.event.type === "invoice.confirmed" && entry.event.data.invoiceId === invoice.id),
        30_000,
      );
    });

    it("answers chainbill with the app's 500, so chainbill sends the same webhook-id again", async () => {
      let refusals = 1;
      app.respond = (arrived) => (arrived.event.type === "invoice.paid" && refusals-- > 0 ? 500 : 200);
      try {
        const invoice = await invoicesOf(stack, merchant, stack.chains[0]).paid({ amount: "0.02", currency: "ETH" });
        await waitUntil("invoice.paid twice at the app", async () => paidAt(invoice.id).length === 2, 30_000);
        const [first, second] = paidAt(invoice.id);
        expect([first.status, second.status]).to.deep.equal([500, 200]);
        expect(second.id).to.equal(first.id);
        expect(first.verified && second.verified).to.equal(true);
        expect(second.body).to.equal(first.body);
        await waitUntil("both attempts in chainbill's log", async () => (await attemptsOf(first.id)).length === 2, 10_000);
        const log = await attemptsOf(first.id);
        expect(log.map((entry) => [entry.attempt, entry.statusCode, entry.responseExcerpt])).to.deep.equal([
          [2, 200, "handled"],
          [1, 500, "app refused with 500"],
        ]);
        const printed = lines.filter((line) => line.includes(first.id));
        expect(printed[0]).to.contain("→ 500").and.to.contain("chainbill will retry");
        expect(printed[1]).to.contain("→ 200").and.to.contain("(delivery 2 of this id)");
      } finally {
        app.respond = () => 200;
      }
    });

    it("answers 502 while the app is unreachable; the retry reaches it once it is back", async () => {
      await app.down();
      const seen = lines.length;
      let invoiceId = "";
      const refusedLine = () => lines.slice(seen).find((line) => line.includes(invoiceId) && line.includes("→ 502"));
      try {
        invoiceId = (await invoicesOf(stack, merchant, stack.chains[0]).paid({ amount: "0.03", currency: "ETH" })).id;
        await waitUntil("a 502 line", async () => refusedLine() !== undefined, 30_000);
      } finally {
        await app.up();
      }
      const line = refusedLine()!;
      expect(line).to.contain("invoice.paid").and.to.contain("ECONNREFUSED").and.to.contain("chainbill will retry");
      const eventId = /(evt_[0-9a-f]+)/.exec(line)![1];
      await waitUntil("the retry at the app", async () => app.arrived.some((entry) => entry.id === eventId && entry.verified), 30_000);
      await waitUntil("the 200 in chainbill's log", async () => (await attemptsOf(eventId))[0]?.statusCode === 200, 10_000);
      const log = await attemptsOf(eventId);
      expect(log.slice(1).every((entry) => entry.statusCode === 502)).to.equal(true);
      expect(log.at(-1)!.responseExcerpt).to.contain("could not forward");
    });

    it("refuses a request without a valid signature (400) and forwards nothing", async () => {
      const before = app.arrived.length;
      const body = JSON.stringify({ id: "evt_forged", type: "invoice.paid", timestamp: new Date().toISOString(), data: {} });
      const forged = new Webhook(`whsec_${Buffer.from("not the endpoint's secret").toString("base64")}`).sign("evt_forged", new Date(), body);
      const response = await fetch(listener.url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          "webhook-id": "evt_forged",
          "webhook-timestamp": String(Math.floor(Date.now() / 1000)),
          "webhook-signature": forged,
        },
        body,
      });
      expect(response.status).to.equal(400);
      expect(await response.text()).to.contain("invalid signature");
      const unsigned = await fetch(listener.url, { method: "POST", headers: { "content-type": "application/json" }, body });
      expect(unsigned.status).to.equal(400);
      expect(app.arrived.length).to.equal(before);
      expect(lines.at(-1)).to.contain("✗ refused");
    });

    it("stop() deletes the temporary endpoint", async () => {
      await listener.stop();
      expect((await endpoints()).map((endpoint) => endpoint.id)).to.not.include(listener.endpointId);
      const refused = await fetch(listener.url, { method: "POST", body: "{}" }).then(
        () => false,
        () => true,
      );
      expect(refused).to.equal(true);
      await listener.stop(); // a second stop does nothing
    });

    describe("the command line", () => {
      /** The environment of a developer's shell without chainbill settings (and no .env). */
      const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => {
        const { CHAINBILL_API_URL: _url, CHAINBILL_API_KEY: _key, DATA_DIR: _data, ...env } = process.env;
        return { ...env, CHAINBILL_ENV_FILE: path.join(os.tmpdir(), "chainbill-listen-no-such.env"), NO_COLOR: "1", ...extra };
      };
      const run = (args: string[], env = cleanEnv()) =>
        spawnSync(process.execPath, ["-r", "ts-node/register/transpile-only", LISTEN, ...args], { cwd: ROOT, env, encoding: "utf8", timeout: 120_000 });

      it("--help explains it and exits 0", () => {
        const result = run(["--help"]);
        expect(result.status, result.stderr).to.equal(0);
        for (const text of ["--forward-to", "--events", "--api-url", "--api-key", "CHAINBILL_API_KEY", "demo-merchant.json", "502", "Ctrl-C"])
          expect(result.stdout).to.contain(text);
      });

      it("refuses a --forward-to that is not an http(s) URL, or none", () => {
        const bad = run(["--forward-to", "ftp://localhost/hooks"]);
        expect(bad.status).to.not.equal(0);
        expect(bad.stderr).to.contain("--forward-to must be an http(s) URL");
        const garbage = run(["--forward-to", "localhost 3000"]);
        expect(garbage.status).to.not.equal(0);
        expect(garbage.stderr).to.contain("--forward-to must be an http(s) URL");
        const missing = run([]);
        expect(missing.status).to.not.equal(0);
        expect(missing.stderr).to.contain("--forward-to is required");
      });

      it("says what to do without an API key", async () => {
        const dataDir = await mkdtemp(path.join(os.tmpdir(), "chainbill-listen-"));
        try {
          const result = run(["--forward-to", "http://localhost:3000/webhooks", "--api-url", stack.apiUrl], cleanEnv({ DATA_DIR: dataDir }));
          expect(result.status).to.not.equal(0);
          expect(result.stderr).to.contain("No API key").and.to.contain("--api-key").and.to.contain("CHAINBILL_API_KEY").and.to.contain("npm start");
        } finally {
          await rm(dataDir, { recursive: true, force: true });
        }
      });

      it("takes the demo merchant's key as npm start stored it, prints Ready, and deletes its endpoint on SIGTERM", async () => {
        const dataDir = await mkdtemp(path.join(os.tmpdir(), "chainbill-listen-"));
        try {
          await writeFile(path.join(dataDir, "demo-merchant.json"), JSON.stringify({ id: merchant.id, name: "Listen merchant", apiKey: merchant.apiKey }));
          const child = spawn(process.execPath, ["-r", "ts-node/register/transpile-only", LISTEN, "--forward-to", app.url], {
            cwd: ROOT,
            env: cleanEnv({ DATA_DIR: dataDir, CHAINBILL_API_URL: stack.apiUrl }),
            stdio: ["ignore", "pipe", "pipe"],
          });
          children.push(child);
          let stdout = "";
          let stderr = "";
          child.stdout!.on("data", (chunk: Buffer) => (stdout += chunk.toString("utf8")));
          child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
          const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
          await waitUntil("Ready", async () => stdout.includes("Ready:") || child.exitCode !== null, 120_000);
          expect(stdout, stderr).to.match(
            new RegExp(
              `^Ready: forwarding events to ${app.url.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}; signing secret whsec_\\S+ \\(verify with it in your handler\\)$`,
              "m",
            ),
          );
          expect(stderr).to.contain(`API key from the demo merchant ${merchant.id} of npm start (${path.join(dataDir, "demo-merchant.json")})`);
          expect(stderr).to.contain("API URL from CHAINBILL_API_URL");
          const registered = (await endpoints()).filter((endpoint) => endpoint.description === "npm run listen");
          expect(registered).to.have.length(1);
          child.kill("SIGTERM");
          expect(await exited, stderr).to.equal(0);
          expect(stderr).to.contain(`deleted the temporary endpoint ${registered[0].id}`);
          expect((await endpoints()).map((endpoint) => endpoint.id)).to.not.include(registered[0].id);
        } finally {
          await rm(dataDir, { recursive: true, force: true });
        }
      });
    });
  });
}
