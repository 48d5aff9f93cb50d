/**
 * Sends one webhook request. Endpoint URLs may not reach private, loopback or link-local addresses (SSRF)
 * unless the configuration allows them: the address is checked when the URL is registered and again on every
 * connection, on the address actually connected to (the DNS answer is checked inside the socket's lookup, so a
 * name that re-resolves to 127.0.0.1 later is still refused). Redirects are never followed: a 3xx answer is a
 * failed attempt.
 */
import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import net from "node:net";

const BLOCKED = new net.BlockList();
for (const [address, prefix] of [
  ["0.0.0.0", 8],
  ["10.0.0.0", 8],
  ["100.64.0.0", 10],
  ["127.0.0.0", 8],
  ["169.254.0.0", 16],
  ["172.16.0.0", 12],
  ["192.0.0.0", 24],
  ["192.0.2.0", 24],
  ["192.168.0.0", 16],
  ["198.18.0.0", 15],
  ["198.51.100.0", 24],
  ["203.0.113.0", 24],
  ["224.0.0.0", 4],
  ["240.0.0.0", 4],
] as const) {
  BLOCKED.addSubnet(address, prefix, "ipv4");
}
for (const [address, prefix] of [
  ["::", 128],
  ["::1", 128],
  ["64:ff9b::", 96],
  ["100::", 64],
  ["2001:db8::", 32],
  ["fc00::", 7],
  ["fe80::", 10],
  ["ff00::", 8],
] as const) {
  BLOCKED.addSubnet(address, prefix, "ipv6");
}

/** Whether `address` (an IP literal) is private, loopback, link-local, reserved or multicast. */
export function isPrivateAddress(address: string): boolean {
  const family = net.isIP(address);
  if (family === 4) return BLOCKED.check(address, "ipv4");
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return BLOCKED.check(mapped[1], "ipv4");
    return BLOCKED.check(address, "ipv6");
  }
  return true;
}

export class BlockedAddressError extends Error {
  override name = "BlockedAddressError";
}

/** A DNS lookup that refuses private answers (used by every outgoing webhook connection). */
function guardedLookup(allowPrivate: boolean): net.LookupFunction {
  return (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, "", 0);
      const list = addresses as dns.LookupAddress[];
      const blocked = list.find((entry) => isPrivateAddress(entry.address));
      if (!allowPrivate && blocked) {
        return callback(new BlockedAddressError(`${hostname} resolves to ${blocked.address}, a private or loopback address`), "", 0);
      }
      if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      callback(null, list[0].address, list[0].family);
    });
  };
}

/** Why a URL cannot be an endpoint, or undefined when it can (DNS names are resolved and checked too). */
export async function endpointUrlProblem(raw: string, allowPrivate: boolean): Promise<string | undefined> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "is not an absolute URL";
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") return "must use https";
  if (url.protocol === "http:" && !allowPrivate) return "must use https (plain http is accepted only where private addresses are allowed, for local development)";
  if (url.username || url.password) return "must not carry credentials";
  if (allowPrivate) return undefined;
  const host = url.hostname.replace(/^\[|\]$/g, "");
  if (net.isIP(host)) return isPrivateAddress(host) ? `points to ${host}, a private or loopback address` : undefined;
  if (host === "localhost" || host.endsWith(".localhost") || host.endsWith(".local") || host.endsWith(".internal")) {
    return `points to ${host}, a local name`;
  }
  try {
    const addresses = await dns.promises.lookup(host, { all: true });
    const blocked = addresses.find((entry) => isPrivateAddress(entry.address));
    if (blocked) return `resolves to ${blocked.address}, a private or loopback address`;
  } catch {
    return `does not resolve (${host})`;
  }
  return undefined;
}

export interface SendResult {
  statusCode: number | null;
  latencyMs: number;
  /** The first characters of the answer's body. */
  excerpt: string | null;
  error: string | null;
  ok: boolean;
}

export interface Sender {
  send(url: string, headers: Record<string, string>, body: string): Promise<SendResult>;
  close(): void;
}

const EXCERPT_BYTES = 512;

export function createSender(options: { allowPrivate: boolean; timeoutMs: number }): Sender {
  const lookup = guardedLookup(options.allowPrivate);
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: 128, lookup } as http.AgentOptions),
    "https:": new https.Agent({ keepAlive: true, maxSockets: 128, lookup } as https.AgentOptions),
  };
  const sender: Sender = {
    async send(raw, headers, body) {
      const first = await attempt(raw, headers, body);
      // Node's advice for kept-alive sockets: a request a stale socket reset is retried once on a fresh one.
      return first.staleSocket ? attempt(raw, headers, body) : first;
    },
    close() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  };
  return sender;

  function attempt(raw: string, headers: Record<string, string>, body: string): Promise<SendResult & { staleSocket?: boolean }> {
    {
      const started = performance.now();
      const elapsed = () => Math.round(performance.now() - started);
      return new Promise<SendResult & { staleSocket?: boolean }>((resolve) => {
        let url: URL;
        try {
          url = new URL(raw);
        } catch {
          return resolve({ statusCode: null, latencyMs: 0, excerpt: null, error: "invalid URL", ok: false });
        }
        // An IP literal is connected to without a DNS lookup, so the guarded lookup never sees it: check it here.
        const literal = url.hostname.replace(/^\[|\]$/g, "");
        if (!options.allowPrivate && net.isIP(literal) && isPrivateAddress(literal)) {
          return resolve({ statusCode: null, latencyMs: 0, excerpt: null, error: `${literal} is a private or loopback address`, ok: false });
        }
        const client = url.protocol === "https:" ? https : http;
        const agent = agents[url.protocol as "http:" | "https:"];
        if (!agent) return resolve({ statusCode: null, latencyMs: 0, excerpt: null, error: "unsupported scheme", ok: false });
        const request = client.request(
          url,
          {
            method: "POST",
            agent,
            lookup,
            headers: { ...headers, "content-type": "application/json", "content-length": Buffer.byteLength(body), "user-agent": "chainbill-webhooks/1" },
            timeout: options.timeoutMs,
          },
          (response) => {
            const statusCode = response.statusCode ?? 0;
            const chunks: Buffer[] = [];
            let size = 0;
            response.on("data", (chunk: Buffer) => {
              if (size < EXCERPT_BYTES) chunks.push(chunk);
              size += chunk.length;
            });
            response.on("end", () => {
              const excerpt = Buffer.concat(chunks).subarray(0, EXCERPT_BYTES).toString("utf8").replace(/\u0000/g, "");
              const ok = statusCode >= 200 && statusCode < 300;
              const redirect = statusCode >= 300 && statusCode < 400;
              resolve({
                statusCode,
                latencyMs: elapsed(),
                excerpt,
                error: ok ? null : redirect ? `redirect to ${response.headers.location ?? "?"} not followed` : `HTTP ${statusCode}`,
                ok,
              });
            });
            response.on("error", (error) => resolve({ statusCode, latencyMs: elapsed(), excerpt: null, error: error.message, ok: false }));
          },
        );
        request.on("timeout", () => request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
        // The whole exchange, not only silence, is bounded: a receiver trickling bytes cannot hold a lease.
        const deadline = setTimeout(() => request.destroy(new Error(`no answer within ${options.timeoutMs} ms`)), options.timeoutMs);
        request.on("close", () => clearTimeout(deadline));
        request.on("error", (error) => {
          // A kept-alive socket the receiver closed just as this request went out: not the receiver's answer.
          const stale = request.reusedSocket && (error as NodeJS.ErrnoException).code === "ECONNRESET";
          resolve({ statusCode: null, latencyMs: elapsed(), excerpt: null, error: error.message, ok: false, ...(stale ? { staleSocket: true } : {}) });
        });
        request.end(body);
      });
    }
  }
}
