/**
 * The webhook sender and its SSRF guard: address classification, the registration check, and real connections to
 * real servers on loopback (refused unless private addresses are allowed), timeouts and answer excerpts.
 */
import dns from "node:dns";
import http from "node:http";
import { hostname } from "node:os";
import type { AddressInfo } from "node:net";
import { expect } from "chai";
import { createSender, endpointUrlProblem, isPrivateAddress, type Sender } from "../../api/webhooks/send";

interface TestServer {
  port: number;
  hits: number;
  close(): Promise<void>;
}

async function startServer(handler: (request: http.IncomingMessage, response: http.ServerResponse) => void): Promise<TestServer> {
  const server = http.createServer((request, response) => {
    state.hits += 1;
    request.resume();
    request.on("end", () => handler(request, response));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const state: TestServer = {
    port: (server.address() as AddressInfo).port,
    hits: 0,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return state;
}

describe("unit: api/webhooks/send", function () {
  this.timeout(20_000);

  describe("isPrivateAddress", () => {
    const privateOnes = [
      // IPv4: private, loopback, link-local, CGNAT, "this network", documentation, benchmarking, multicast, reserved
      "10.0.0.1",
      "10.255.255.255",
      "172.16.0.1",
      "172.31.255.254",
      "192.168.1.1",
      "127.0.0.1",
      "127.1.2.3",
      "169.254.169.254",
      "100.64.0.1",
      "100.127.255.254",
      "0.0.0.0",
      "192.0.0.8",
      "192.0.2.10",
      "198.51.100.7",
      "203.0.113.9",
      "198.18.0.1",
      "224.0.0.1",
      "239.255.255.250",
      "240.0.0.1",
      "255.255.255.255",
      // IPv6: unspecified, loopback, unique local, link-local, multicast, documentation, NAT64, discard
      "::",
      "::1",
      "fc00::1",
      "fd12:3456:789a::1",
      "fe80::1",
      "febf::1",
      "ff02::1",
      "2001:db8::1",
      "64:ff9b::7f00:1",
      "100::1",
      // IPv4-mapped IPv6, dotted and hex
      "::ffff:127.0.0.1",
      "::FFFF:10.0.0.1",
      "::ffff:169.254.169.254",
      "::ffff:7f00:1",
      "::ffff:a00:1",
    ];
    const publicOnes = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "172.32.0.1", "100.128.0.1", "192.169.0.1", "2606:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8"];

    for (const address of privateOnes) {
      it(`${address} is private`, () => expect(isPrivateAddress(address)).to.equal(true));
    }
    for (const address of publicOnes) {
      it(`${address} is public`, () => expect(isPrivateAddress(address)).to.equal(false));
    }
    it("anything that is not an IP literal counts as private (refused)", () => {
      for (const value of ["", "localhost", "example.com", "1.2.3", "999.1.1.1", "[::1]"]) expect(isPrivateAddress(value), value).to.equal(true);
    });
  });

  describe("endpointUrlProblem", () => {
    const refused: [string, RegExp][] = [
      ["not a url", /absolute URL/],
      ["/relative/path", /absolute URL/],
      ["ftp://93.184.216.34/hook", /https/],
      ["http://93.184.216.34/hook", /must use https/],
      ["https://user:pass@93.184.216.34/hook", /credentials/],
      ["https://user@93.184.216.34/hook", /credentials/],
      ["https://127.0.0.1/hook", /127\.0\.0\.1, a private or loopback address/],
      ["https://127.0.0.1:8443/hook", /private or loopback/],
      ["https://[::1]/hook", /::1, a private or loopback address/],
      ["https://[::ffff:127.0.0.1]/hook", /private or loopback/],
      ["https://0x7f000001/hook", /127\.0\.0\.1/],
      ["https://2130706433/hook", /127\.0\.0\.1/],
      ["https://10.1.2.3/hook", /private or loopback/],
      ["https://192.168.0.10/hook", /private or loopback/],
      ["https://169.254.169.254/latest/meta-data", /169\.254\.169\.254/],
      ["https://100.64.1.1/hook", /private or loopback/],
      ["https://[fe80::1]/hook", /private or loopback/],
      ["https://localhost/hook", /local name/],
      ["https://LOCALHOST:3000/hook", /local name/],
      ["https://api.localhost/hook", /local name/],
      ["https://printer.local/hook", /local name/],
      ["https://metadata.google.internal/hook", /local name/],
    ];
    for (const [url, problem] of refused) {
      it(`refuses ${url}`, async () => expect(await endpointUrlProblem(url, false)).to.be.a("string").and.match(problem));
    }

    it("refuses a name that resolves to a loopback address (checked after DNS)", async function () {
      // This machine's own name resolves locally (hosts file) without a DNS server; skip where it does not.
      const name = hostname();
      const addresses = await dns.promises.lookup(name, { all: true }).catch(() => []);
      if (addresses.length === 0 || !addresses.some((entry) => isPrivateAddress(entry.address))) this.skip();
      expect(await endpointUrlProblem(`https://${name}/hook`, false)).to.match(/^resolves to .+, a private or loopback address$/);
    });

    it("refuses a name that does not resolve", async () => {
      expect(await endpointUrlProblem("https://no-such-host.invalid/hook", false)).to.match(/does not resolve/);
    });

    it("accepts a public https URL given as an IP literal (no DNS needed)", async () => {
      expect(await endpointUrlProblem("https://93.184.216.34/hook", false)).to.equal(undefined);
      expect(await endpointUrlProblem("https://93.184.216.34:8443/a/b?c=d", false)).to.equal(undefined);
      expect(await endpointUrlProblem("https://[2606:4700::1111]/hook", false)).to.equal(undefined);
    });

    it("accepts private, loopback, local names and plain http when private addresses are allowed (but not credentials or non-URLs)", async () => {
      for (const url of [
        "http://127.0.0.1:3000/hook",
        "https://127.0.0.1/hook",
        "http://[::1]:8080/hook",
        "http://localhost:4000/hook",
        "http://10.0.0.5/hook",
        "http://169.254.169.254/",
        "http://printer.local/hook",
        "https://93.184.216.34/hook",
      ]) {
        expect(await endpointUrlProblem(url, true), url).to.equal(undefined);
      }
      expect(await endpointUrlProblem("http://user:pw@127.0.0.1/hook", true)).to.match(/credentials/);
      expect(await endpointUrlProblem("not a url", true)).to.match(/absolute URL/);
      expect(await endpointUrlProblem("ftp://127.0.0.1/", true)).to.match(/https/);
    });
  });

  describe("createSender", () => {
    const senders: Sender[] = [];
    const servers: TestServer[] = [];
    const sender = (options: { allowPrivate: boolean; timeoutMs: number }) => {
      const created = createSender(options);
      senders.push(created);
      return created;
    };
    const server = async (handler: Parameters<typeof startServer>[0]) => {
      const started = await startServer(handler);
      servers.push(started);
      return started;
    };
    afterEach(async () => {
      for (const each of senders.splice(0)) each.close();
      for (const each of servers.splice(0)) await each.close();
    });

    it("with private addresses refused, never connects to a loopback server, by IP literal or by name", async () => {
      const target = await server((_request, response) => response.writeHead(200).end("ok"));
      const guarded = sender({ allowPrivate: false, timeoutMs: 2_000 });
      for (const url of [`http://127.0.0.1:${target.port}/`, `http://localhost:${target.port}/`, `http://[::ffff:127.0.0.1]:${target.port}/`, `http://2130706433:${target.port}/`]) {
        const result = await guarded.send(url, {}, "{}");
        expect(result.ok, url).to.equal(false);
        expect(result.statusCode, url).to.equal(null);
        expect(result.error, url).to.match(/private or loopback/);
      }
      // Refused before connecting, even where nothing listens (not a connection error).
      const unlistened = await guarded.send("http://[::1]:9/", {}, "{}");
      expect(unlistened.error).to.match(/::1 is a private or loopback address/);
      expect(target.hits).to.equal(0);
    });

    it("with private addresses allowed, connects and posts the body with the given headers", async () => {
      let seen: { headers: http.IncomingHttpHeaders; body: string } | undefined;
      const plain = http.createServer((request, response) => {
        const chunks: Buffer[] = [];
        request.on("data", (chunk: Buffer) => chunks.push(chunk));
        request.on("end", () => {
          seen = { headers: request.headers, body: Buffer.concat(chunks).toString("utf8") };
          response.writeHead(204).end();
        });
      });
      await new Promise<void>((resolve) => plain.listen(0, "127.0.0.1", () => resolve()));
      const port = (plain.address() as AddressInfo).port;
      try {
        const open = sender({ allowPrivate: true, timeoutMs: 2_000 });
        const body = JSON.stringify({ id: "evt_1", data: { amount: "1.00", note: "é" } });
        const result = await open.send(`http://127.0.0.1:${port}/hook`, { "webhook-id": "evt_1" }, body);
        expect(result).to.include({ ok: true, statusCode: 204, error: null, excerpt: "" });
        expect(seen!.body).to.equal(body);
        expect(seen!.headers).to.include({ "webhook-id": "evt_1", "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) });
        expect(seen!.headers["user-agent"]).to.match(/^chainbill-webhooks\//);
        const byName = await open.send(`http://localhost:${port}/hook`, {}, "{}");
        expect(byName.ok, byName.error ?? "").to.equal(true);
      } finally {
        plain.closeAllConnections();
        await new Promise<void>((resolve) => plain.close(() => resolve()));
      }
    });

    it("a server that never answers gives an error result within the timeout, not a hang", async () => {
      const silent = await server(() => undefined);
      const timed = sender({ allowPrivate: true, timeoutMs: 300 });
      const started = Date.now();
      const result = await timed.send(`http://127.0.0.1:${silent.port}/`, {}, "{}");
      const took = Date.now() - started;
      expect(result).to.include({ ok: false, statusCode: null, excerpt: null });
      expect(result.error).to.equal("no answer within 300 ms");
      expect(took).to.be.at.least(250).and.below(1_500);
      expect(result.latencyMs).to.be.at.least(250).and.below(1_500);
      expect(silent.hits).to.equal(1);
    });

    it("a server trickling an endless answer is cut off at the timeout too (the whole exchange is bounded)", async () => {
      const trickling = await server((_request, response) => {
        response.writeHead(200, { "content-type": "text/plain" });
        const timer = setInterval(() => response.write("."), 50);
        response.on("close", () => clearInterval(timer));
      });
      const timed = sender({ allowPrivate: true, timeoutMs: 400 });
      const started = Date.now();
      const result = await timed.send(`http://127.0.0.1:${trickling.port}/`, {}, "{}");
      expect(Date.now() - started).to.be.at.least(350).and.below(2_000);
      expect(result.ok).to.equal(false);
      expect(result.error).to.equal("no answer within 400 ms");
    });

    it("keeps at most 512 bytes of a large answer", async () => {
      const big = "x".repeat(200_000);
      const large = await server((_request, response) => response.writeHead(200, { "content-type": "text/plain" }).end(big));
      const failing = await server((_request, response) => response.writeHead(500).end(`error: ${"y".repeat(10_000)}`));
      const open = sender({ allowPrivate: true, timeoutMs: 2_000 });
      const ok = await open.send(`http://127.0.0.1:${large.port}/`, {}, "{}");
      expect(ok.ok).to.equal(true);
      expect(Buffer.byteLength(ok.excerpt!)).to.equal(512);
      expect(ok.excerpt).to.equal(big.slice(0, 512));
      const refused = await open.send(`http://127.0.0.1:${failing.port}/`, {}, "{}");
      expect(refused).to.include({ ok: false, statusCode: 500, error: "HTTP 500" });
      expect(Buffer.byteLength(refused.excerpt!)).to.equal(512);
      expect(refused.excerpt!.startsWith("error: yyy")).to.equal(true);
    });

    it("does not follow redirects: a 3xx is a failure naming the redirect, and its target receives nothing", async () => {
      const target = await server((_request, response) => response.writeHead(200).end("ok"));
      const location = `http://127.0.0.1:${target.port}/elsewhere`;
      const redirecting = await server((_request, response) => response.writeHead(307, { location }).end());
      const open = sender({ allowPrivate: true, timeoutMs: 2_000 });
      const result = await open.send(`http://127.0.0.1:${redirecting.port}/`, {}, "{}");
      expect(result).to.include({ ok: false, statusCode: 307, error: `redirect to ${location} not followed` });
      expect(redirecting.hits).to.equal(1);
      expect(target.hits).to.equal(0);
    });

    it("refuses what is not an http(s) URL without sending anything", async () => {
      const open = sender({ allowPrivate: true, timeoutMs: 2_000 });
      expect(await open.send("not a url", {}, "{}")).to.include({ ok: false, error: "invalid URL", statusCode: null });
      expect(await open.send("ftp://127.0.0.1/", {}, "{}")).to.include({ ok: false, error: "unsupported scheme", statusCode: null });
    });
  });
});
