/**
 * `npm run listen -- --forward-to http://localhost:3000/webhooks`: chainbill's webhooks on a developer's machine,
 * in the spirit of `stripe listen`.
 *
 * It starts an HTTP server on a free loopback port and registers it with the API as a temporary webhook endpoint
 * (`temporarySeconds` 86400, description "npm run listen"). Every delivery is verified with the endpoint's
 * signing secret (the `standardwebhooks` package; an invalid one is answered 400), then forwarded to the local
 * app byte for byte with its `webhook-id`, `webhook-timestamp` and `webhook-signature` headers unchanged, so the
 * app verifies it with the same secret. The app's status code goes back to chainbill as the answer (a failing
 * app is retried by chainbill like any endpoint; an app that cannot be reached is answered 502, one that does
 * not answer in time 504), and one line per event is printed. Ctrl-C / SIGTERM deletes the endpoint.
 *
 * The core is `startListener()` (used by test/scripts/listen.test.ts); `main()` is the command line around it.
 */
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { Webhook } from "standardwebhooks";
import { EVENT_TYPES } from "../api/webhooks/events";
import { ApiError, createApiClient } from "./lib/api-client";
import { detail, step } from "./lib/output";
import { onShutdown } from "./lib/processes";
import { loadDotEnv, readJson, runningStack, stackPaths, type DemoMerchant } from "./lib/stack-files";

const DEFAULT_API_URL = "http://127.0.0.1:8787";
/** How long a temporary endpoint lives (the API's maximum): chainbill stops sending to it afterwards. */
const TEMPORARY_SECONDS = 86_400;
/** The largest request accepted from chainbill (its payloads are a few kilobytes). */
const MAX_BODY_BYTES = 1024 * 1024;
/** Bytes of the app's answer passed back to chainbill (its delivery log keeps the first 512). */
const MAX_ANSWER_BYTES = 64 * 1024;
const SIGNATURE_HEADERS = ["webhook-id", "webhook-timestamp", "webhook-signature"] as const;

const HELP = `npm run listen — receive chainbill's webhooks on this machine and forward them to your app

  npm run listen -- --forward-to http://localhost:3000/webhooks [--events invoice.paid,invoice.confirmed]
                    [--api-url URL] [--api-key KEY]

Starts an HTTP server on a free loopback port and registers it with the API as a temporary webhook endpoint
(description "npm run listen", it stops receiving after 24 hours), then prints:

  Ready: forwarding events to <--forward-to>; signing secret whsec_… (verify with it in your handler)

For every event chainbill delivers, it
  1. verifies the Standard Webhooks signature with that secret (an invalid request is answered 400 and
     not forwarded);
  2. POSTs the exact body, with the webhook-id, webhook-timestamp and webhook-signature headers unchanged, to
     --forward-to: your app verifies it with the same secret, exactly as it will in production;
  3. answers chainbill with your app's status code, so an event your app fails (non-2xx) is retried on
     chainbill's schedule like any delivery; when your app cannot be reached the answer is 502, when it does
     not answer within 10 s, 504;
  4. prints one line: time, event type, event id (= webhook-id: dedupe on it), what it is about (invoice or
     subscription id), and your app's answer with how long it took.

Ctrl-C (or SIGTERM) deletes the temporary endpoint and exits.

The API must be able to reach this machine's loopback address, so this is for a local stack: npm start
allows loopback and plain-http endpoints (WEBHOOK_ALLOW_PRIVATE_URLS=true); an API that refuses them answers
that the URL is private.

Options:
  --forward-to URL      where to forward each event (required): an http:// or https:// URL of your app
  --events a,b          only these event types (default: every type). Types: ${EVENT_TYPES.join(", ")}
  --api-url URL         the chainbill API (default: $CHAINBILL_API_URL, else the running npm start's, else
                        ${DEFAULT_API_URL})
  --api-key KEY         a merchant API key with webhooks:write (default: $CHAINBILL_API_KEY, else the local
                        demo merchant's key that npm start keeps in <data>/demo-merchant.json)
  -h, --help            this text

Environment (also read from .env): CHAINBILL_API_URL, CHAINBILL_API_KEY, DATA_DIR (npm start's data directory,
default .data).
`;

/** A mistake of the person running the command: printed without a stack trace. */
export class ListenError extends Error {
  override name = "ListenError";
}

export interface ListenOptions {
  apiUrl: string;
  /** A merchant key with the webhooks:write scope. */
  apiKey: string;
  /** The local app's webhook URL (http or https). */
  forwardTo: string;
  /** Event types to receive (default: every type). */
  events?: string[];
  /** Where each event's line goes (default: stdout). */
  log?: (line: string) => void;
  /** How long the app has to answer (default 10 s, chainbill's own default timeout). */
  forwardTimeoutMs?: number;
}

export interface Listener {
  endpointId: string;
  /** The endpoint's `whsec_…` signing secret: the local app verifies with it. */
  secret: string;
  /** The loopback URL chainbill delivers to. */
  url: string;
  /** When chainbill stops delivering to the temporary endpoint. */
  expiresAt: string | null;
  /** Stops the server and deletes the endpoint (again: nothing). */
  stop(): Promise<void>;
}

/** The --forward-to URL, checked: an absolute http(s) URL without credentials. */
export function parseForwardTo(raw: string | undefined): URL {
  if (!raw) throw new ListenError("--forward-to is required: the URL of your app's webhook handler, e.g. --forward-to http://localhost:3000/webhooks");
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ListenError(`--forward-to must be an http(s) URL such as http://localhost:3000/webhooks; got "${raw}"`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new ListenError(`--forward-to must be an http(s) URL such as http://localhost:3000/webhooks; got "${raw}" (scheme ${url.protocol.replace(/:$/, "")})`);
  }
  if (url.username || url.password) throw new ListenError("--forward-to must not carry a user name or password");
  return url;
}

/** The --events list, checked against the event types the API knows. */
export function parseEvents(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const events = [...new Set(raw.split(",").map((type) => type.trim()).filter(Boolean))];
  if (events.length === 0) throw new ListenError("--events is empty: name event types separated by commas, or leave it out for every type");
  const unknown = events.filter((type) => !(EVENT_TYPES as readonly string[]).includes(type));
  if (unknown.length > 0) throw new ListenError(`--events: unknown event type ${unknown.join(", ")}; known types: ${EVENT_TYPES.join(", ")}`);
  return events;
}

/** What an event is about, for its line: the invoice, subscription or alert id, else its object. */
function subjectOf(body: Buffer): { type: string; subject: string } {
  try {
    const event = JSON.parse(body.toString("utf8")) as { type?: unknown; data?: Record<string, unknown> };
    const data = event.data ?? {};
    const subject = [data.invoiceId, data.subscriptionId, data.alertId].find((value) => typeof value === "string") as string | undefined;
    const transaction = (data.transaction as { hash?: string } | undefined)?.hash;
    return {
      type: typeof event.type === "string" ? event.type : "?",
      subject: subject ?? (typeof data.object === "string" ? `${data.object}${transaction ? ` ${transaction.slice(0, 10)}…` : ""}` : "-"),
    };
  } catch {
    return { type: "?", subject: "-" };
  }
}

const clock = () => new Date().toTimeString().slice(0, 8);

interface Forwarded {
  status: number;
  body: Buffer;
  contentType: string | undefined;
  ms: number;
  /** Why the app gave no answer (then `status` is 502 or 504). */
  failure?: string;
}

/** POSTs `body` with the signature headers to the app; never throws (no answer becomes 502, a timeout 504). */
function forward(target: URL, headers: Record<string, string>, body: Buffer, timeoutMs: number): Promise<Forwarded> {
  const started = performance.now();
  const ms = () => Math.round(performance.now() - started);
  return new Promise((resolve) => {
    const client = target.protocol === "https:" ? https : http;
    const request = client.request(
      target,
      {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "content-length": body.length, "user-agent": "chainbill-listen/1" },
        timeout: timeoutMs,
        agent: false,
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on("data", (chunk: Buffer) => {
          if (size < MAX_ANSWER_BYTES) chunks.push(chunk);
          size += chunk.length;
        });
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 502, body: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES), contentType: response.headers["content-type"], ms: ms() }),
        );
        response.on("error", (error) => resolve({ status: 502, body: Buffer.from(`the app's answer broke off: ${error.message}`), contentType: "text/plain", ms: ms(), failure: error.message }));
      },
    );
    let timedOut = false;
    request.on("timeout", () => {
      timedOut = true;
      request.destroy(new Error(`no answer within ${timeoutMs} ms`));
    });
    request.on("error", (error: NodeJS.ErrnoException) => {
      const reason = error.message || error.code || "no answer";
      const status = timedOut ? 504 : 502;
      resolve({ status, body: Buffer.from(`npm run listen could not forward to ${target.href}: ${reason}`), contentType: "text/plain", ms: ms(), failure: reason });
    });
    request.end(body);
  });
}

/** Turns an API failure while registering into what to do about it. */
function registrationProblem(error: unknown, apiUrl: string): Error {
  if (error instanceof ApiError) {
    const fields = (error.problem?.errors ?? []).map((entry) => `${entry.field}: ${entry.message}`).join("; ");
    if (error.status === 401) return new ListenError(`The API at ${apiUrl} refused the API key (401). Pass a merchant key of this API with --api-key or CHAINBILL_API_KEY (npm start prints the demo merchant's).`);
    if (error.status === 403) return new ListenError(`The API key may not manage webhook endpoints (403: ${error.problem?.detail ?? "forbidden"}). Use a key with the webhooks:write scope.`);
    if (error.status === 422 && /url/.test(fields)) {
      return new ListenError(
        `The API at ${apiUrl} refuses a loopback endpoint (${fields}). npm run listen needs an API that may call this machine: a local stack started with npm start (it sets WEBHOOK_ALLOW_PRIVATE_URLS=true), or an API run with WEBHOOK_ALLOW_PRIVATE_URLS=true.`,
      );
    }
    if (error.status === 409) return new ListenError(`${error.message}. List them with GET /v1/webhook-endpoints and delete one (an npm run listen that was killed leaves its endpoint until it expires).`);
    return new ListenError(`Could not register the endpoint: ${error.message}`);
  }
  const { cause } = error as { cause?: { code?: string; message?: string } };
  const reason = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : undefined);
  return new ListenError(`No API answers at ${apiUrl}${reason ? ` (${reason})` : ""}: start the stack with npm start, or pass --api-url (or set CHAINBILL_API_URL).`);
}

/**
 * Starts the loopback server, registers it as a temporary endpoint and forwards every verified delivery to
 * `forwardTo`. Resolves once chainbill may deliver.
 */
export async function startListener(options: ListenOptions): Promise<Listener> {
  const target = parseForwardTo(options.forwardTo);
  const events = options.events ? parseEvents(options.events.join(",")) : undefined;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const timeoutMs = options.forwardTimeoutMs ?? 10_000;
  const api = createApiClient(options.apiUrl, options.apiKey);
  let verifier: Webhook | undefined;
  /** Deliveries seen per webhook-id: a second one is chainbill retrying (or redelivering) the same event. */
  const seen = new Map<string, number>();

  const server = http.createServer((request, response) => {
    const answer = (status: number, text: string) => {
      if (!response.headersSent) response.writeHead(status, { "content-type": "text/plain; charset=utf-8" }).end(text);
    };
    if (request.method !== "POST") return answer(405, "npm run listen takes chainbill's webhook deliveries (POST) only");
    const chunks: Buffer[] = [];
    let size = 0;
    request.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on("end", () => {
      void (async () => {
        if (size > MAX_BODY_BYTES) return answer(413, `a delivery is at most ${MAX_BODY_BYTES} bytes`);
        const body = Buffer.concat(chunks);
        const headers: Record<string, string> = {};
        for (const name of SIGNATURE_HEADERS) {
          const value = request.headers[name];
          if (typeof value === "string") headers[name] = value;
        }
        try {
          if (!verifier) throw new Error("the endpoint is not registered yet");
          verifier.verify(body.toString("utf8"), headers);
        } catch (error) {
          const reason = error instanceof Error ? error.message : String(error);
          log(`${clock()}  ✗ refused a request without a valid chainbill signature (${reason}): 400, not forwarded`);
          return answer(400, `invalid signature: ${reason}`);
        }
        const id = headers["webhook-id"];
        const count = (seen.get(id) ?? 0) + 1;
        seen.set(id, count);
        if (seen.size > 10_000) seen.delete(seen.keys().next().value!);
        const { type, subject } = subjectOf(body);
        const result = await forward(target, headers, body, timeoutMs);
        const again = count > 1 ? `  (delivery ${count} of this id)` : "";
        const outcome = result.failure
          ? `→ ${result.status} (${result.ms} ms): ${result.failure}; chainbill will retry`
          : result.status >= 200 && result.status < 300
            ? `→ ${result.status} (${result.ms} ms)`
            : `→ ${result.status} (${result.ms} ms): your app failed it; chainbill will retry`;
        log(`${clock()}  ${type.padEnd(27)} ${id}  ${subject}  ${outcome}${again}`);
        if (!response.headersSent) {
          response.writeHead(result.status, result.contentType ? { "content-type": result.contentType } : {}).end(result.body);
        }
      })().catch((error: unknown) => answer(500, `npm run listen failed: ${error instanceof Error ? error.message : String(error)}`));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  const closeServer = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });

  let endpoint: { id: string; secret: string; expiresAt: string | null };
  try {
    endpoint = await api.request("POST", "/v1/webhook-endpoints", {
      body: { url, description: "npm run listen", temporarySeconds: TEMPORARY_SECONDS, ...(events ? { events } : {}) },
    });
  } catch (error) {
    await closeServer();
    throw registrationProblem(error, api.baseUrl);
  }
  verifier = new Webhook(endpoint.secret);

  let stopping: Promise<void> | undefined;
  return {
    endpointId: endpoint.id,
    secret: endpoint.secret,
    url,
    expiresAt: endpoint.expiresAt,
    stop() {
      stopping ??= (async () => {
        await closeServer();
        const response = await api.raw("DELETE", `/v1/webhook-endpoints/${endpoint.id}`);
        if (response.status !== 204 && response.status !== 404) {
          throw new ListenError(`Could not delete the temporary endpoint ${endpoint.id} (DELETE → ${response.status}: ${(await response.text()).slice(0, 300)}); it expires by itself at ${endpoint.expiresAt}`);
        }
      })();
      return stopping;
    },
  };
}

/** Where a setting came from, for the person running the command. */
interface Sourced {
  value: string;
  source: string;
}

function apiUrlOf(flag: string | undefined): Sourced {
  if (flag) return { value: flag, source: "--api-url" };
  if (process.env.CHAINBILL_API_URL) return { value: process.env.CHAINBILL_API_URL, source: "CHAINBILL_API_URL" };
  const stack = runningStack(stackPaths());
  if (stack) return { value: stack.apiUrl, source: `the running npm start (${stackPaths().stackFile})` };
  return { value: DEFAULT_API_URL, source: "the default" };
}

function apiKeyOf(flag: string | undefined): Sourced {
  if (flag) return { value: flag, source: "--api-key" };
  if (process.env.CHAINBILL_API_KEY) return { value: process.env.CHAINBILL_API_KEY, source: "CHAINBILL_API_KEY" };
  const file = stackPaths().demoMerchantFile;
  let stored: DemoMerchant | undefined;
  try {
    stored = readJson<DemoMerchant>(file);
  } catch (error) {
    throw new ListenError(`${file} is not readable JSON (${error instanceof Error ? error.message : error}): pass --api-key, or run npm start to write it again.`);
  }
  if (stored?.apiKey) return { value: stored.apiKey, source: `the demo merchant ${stored.id} of npm start (${file})` };
  throw new ListenError(
    `No API key: pass --api-key <merchant key> or set CHAINBILL_API_KEY, or run npm start first (it creates a demo merchant and keeps its key in ${file}).`,
  );
}

async function main(): Promise<void> {
  let values: { "forward-to"?: string; events?: string; "api-url"?: string; "api-key"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: {
        "forward-to": { type: "string" },
        events: { type: "string" },
        "api-url": { type: "string" },
        "api-key": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new ListenError(`${error instanceof Error ? error.message : String(error)}; see npm run listen -- --help`);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return;
  }
  const forwardTo = parseForwardTo(values["forward-to"]);
  const events = parseEvents(values.events);
  loadDotEnv();
  const apiUrl = apiUrlOf(values["api-url"]);
  try {
    new URL(apiUrl.value);
  } catch {
    throw new ListenError(`The API URL from ${apiUrl.source} is not a URL: "${apiUrl.value}"`);
  }
  const apiKey = apiKeyOf(values["api-key"]);
  step(`registering a temporary webhook endpoint with ${apiUrl.value} (API URL from ${apiUrl.source})`);
  detail(`API key from ${apiKey.source}`);
  const listener = await startListener({ apiUrl: apiUrl.value, apiKey: apiKey.value, forwardTo: forwardTo.href, events });
  onShutdown(async () => {
    await listener.stop();
    detail(`deleted the temporary endpoint ${listener.endpointId}`);
  });
  detail(`endpoint ${listener.endpointId} → ${listener.url} (${events ? events.join(", ") : "every event type"}; expires ${listener.expiresAt ?? "never"})`);
  process.stdout.write(`Ready: forwarding events to ${forwardTo.href}; signing secret ${listener.secret} (verify with it in your handler)\n`);
  detail("Ctrl-C stops and deletes the endpoint.");
}

if (require.main === module) {
  main().catch((error: unknown) => {
    process.stderr.write(`✗ listen: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
