/**
 * Verifies a chainbill webhook delivery (Standard Webhooks): `webhook-signature` holds one or more space-separated
 * `v1,<base64>` entries (two during a secret rotation), each an HMAC-SHA256, keyed with the base64 part of the
 * endpoint's `whsec_…` secret, of `${webhook-id}.${webhook-timestamp}.${body}`. Uses WebCrypto only
 * (`globalThis.crypto.subtle`: Node ≥ 20, browsers, Deno, Workers), so it imports nothing.
 *
 *   const event = await verifyWebhook({ secret, headers: request.headers, body: rawBody });
 *
 * Pass the body exactly as received (the raw bytes or their text): JSON parsed and serialised again is not the
 * signed text.
 */

/** A verified delivery's body. */
export interface WebhookEvent<Data = Record<string, unknown>> {
  /** `evt_…`, equal to `webhook-id`: the same on every attempt and redelivery. Dedupe on it. */
  id: string;
  /** e.g. `invoice.paid`. */
  type: string;
  /** When the fact happened (ISO 8601). */
  timestamp: string;
  data: Data;
}

export type WebhookVerificationFailure =
  | "missing-header"
  | "invalid-header"
  | "invalid-timestamp"
  | "timestamp-too-old"
  | "timestamp-too-new"
  | "invalid-secret"
  | "malformed-signature"
  | "signature-mismatch"
  | "invalid-body";

export class WebhookVerificationError extends Error {
  override name = "WebhookVerificationError";
  constructor(
    /** Why the delivery was refused. */
    readonly reason: WebhookVerificationFailure,
    message: string,
  ) {
    super(message);
  }
}

/** Fetch `Headers`, or a plain object of header names to values (Node's `request.headers`; any letter case). */
export type WebhookHeaders = { get(name: string): string | null } | Record<string, string | readonly string[] | undefined>;

export interface VerifyWebhookOptions {
  /** The endpoint's signing secret, `whsec_<base64>` (the prefix is optional). */
  secret: string;
  headers: WebhookHeaders;
  /** The raw body: its text, or its bytes. */
  body: string | Uint8Array | ArrayBuffer;
  /** Largest distance between `webhook-timestamp` and now, in seconds (default 300: five minutes). */
  toleranceSeconds?: number;
  /** The current time (default: the clock), a Date or Unix milliseconds. */
  now?: Date | number;
}

const SECRET_PREFIX = "whsec_";
// Printable ASCII only: no NUL, no line breaks, nothing a header could not carry.
const HEADER_VALUE = /^[\x20-\x7e]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as { get?: unknown }).get === "function") {
    return (headers as { get(name: string): string | null }).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | readonly string[] | undefined>;
  const key = Object.keys(record).find((candidate) => candidate.toLowerCase() === name);
  const value = key === undefined ? undefined : record[key];
  return Array.isArray(value) ? (value as readonly string[])[0] : (value as string | undefined);
}

function base64ToBytes(text: string): Uint8Array | undefined {
  if (text.length === 0 || !BASE64.test(text)) return undefined;
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let index = 0; index < binary.length; index += 1) bytes[index] = binary.charCodeAt(index);
  return bytes;
}

function bodyBytes(body: VerifyWebhookOptions["body"]): Uint8Array {
  if (typeof body === "string") return new TextEncoder().encode(body);
  return body instanceof Uint8Array ? body : new Uint8Array(body);
}

/** Compares two byte strings in time that depends only on their lengths. */
function equalConstantTime(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let difference = 0;
  for (let index = 0; index < a.length; index += 1) difference |= a[index] ^ b[index];
  return difference === 0;
}

/** The part of WebCrypto used here (typed locally: the DOM's and Node's declarations both fit it). */
interface HmacSubtle {
  importKey(format: "raw", key: Uint8Array<ArrayBuffer>, algorithm: { name: "HMAC"; hash: "SHA-256" }, extractable: false, usages: ["sign"]): Promise<unknown>;
  sign(algorithm: "HMAC", key: unknown, data: Uint8Array<ArrayBuffer>): Promise<ArrayBuffer>;
}

function subtle(): HmacSubtle {
  const crypto = (globalThis as { crypto?: { subtle?: HmacSubtle } }).crypto;
  if (!crypto?.subtle) throw new Error("verifyWebhook needs WebCrypto (globalThis.crypto.subtle): Node.js ≥ 20 or a browser");
  return crypto.subtle;
}

/** The `v1,<base64>` signature of a delivery: what chainbill sends (exported for tests and for your own tools). */
export async function signWebhook(secret: string, id: string, timestamp: number | string, body: VerifyWebhookOptions["body"]): Promise<string> {
  return `v1,${bytesToBase64(await hmac(secretKey(secret), id, String(timestamp), bodyBytes(body)))}`;
}

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

function secretKey(secret: string): Uint8Array {
  const encoded = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = base64ToBytes(encoded);
  if (!key) throw new WebhookVerificationError("invalid-secret", "the webhook secret is not whsec_ followed by base64 (copy it exactly as the API returned it)");
  return key;
}

async function hmac(key: Uint8Array, id: string, timestamp: string, body: Uint8Array): Promise<Uint8Array> {
  const prefix = new TextEncoder().encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(prefix.length + body.length);
  content.set(prefix);
  content.set(body, prefix.length);
  const cryptoKey = await subtle().importKey("raw", new Uint8Array(key), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return new Uint8Array(await subtle().sign("HMAC", cryptoKey, content));
}

/**
 * Checks a delivery and returns its parsed body; throws `WebhookVerificationError` (with a `reason`) when it is not
 * a genuine, fresh chainbill delivery. Any one valid signature suffices (during a rotation the new and the
 * previous secret both sign).
 */
export async function verifyWebhook<Data = Record<string, unknown>>(options: VerifyWebhookOptions): Promise<WebhookEvent<Data>> {
  const { toleranceSeconds = 300 } = options;
  const id = header(options.headers, "webhook-id");
  const timestamp = header(options.headers, "webhook-timestamp");
  const signatures = header(options.headers, "webhook-signature");
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError("missing-header", "missing webhook-id, webhook-timestamp or webhook-signature header");
  }
  for (const [name, value] of [["webhook-id", id], ["webhook-timestamp", timestamp], ["webhook-signature", signatures]] as const) {
    if (!HEADER_VALUE.test(value)) throw new WebhookVerificationError("invalid-header", `${name} holds characters a delivery never has (control characters or non-ASCII)`);
  }
  if (!/^\d{1,15}$/.test(timestamp)) throw new WebhookVerificationError("invalid-timestamp", "webhook-timestamp is not integer Unix seconds");
  const nowMs = options.now === undefined ? Date.now() : typeof options.now === "number" ? options.now : options.now.getTime();
  const skew = Math.floor(nowMs / 1000) - Number(timestamp);
  if (skew > toleranceSeconds) throw new WebhookVerificationError("timestamp-too-old", `webhook-timestamp is ${skew} s old (more than ${toleranceSeconds} s): a replay, or a wrong clock`);
  if (-skew > toleranceSeconds) throw new WebhookVerificationError("timestamp-too-new", `webhook-timestamp is ${-skew} s in the future (more than ${toleranceSeconds} s): a wrong clock`);

  const key = secretKey(options.secret);
  const body = bodyBytes(options.body);
  const expected = await hmac(key, id, timestamp, body);
  let wellFormed = 0;
  let valid = false;
  for (const entry of signatures.split(" ")) {
    const separator = entry.indexOf(",");
    if (separator < 0 || entry.slice(0, separator) !== "v1") continue;
    const given = base64ToBytes(entry.slice(separator + 1));
    if (!given) continue;
    wellFormed += 1;
    // Every entry is compared (no early exit), each in constant time.
    if (equalConstantTime(given, expected)) valid = true;
  }
  if (wellFormed === 0) throw new WebhookVerificationError("malformed-signature", "webhook-signature has no v1,<base64> entry");
  if (!valid) throw new WebhookVerificationError("signature-mismatch", "no signature matches: a wrong secret, or the body was changed (verify the raw body as received)");
  try {
    return JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(body)) as WebhookEvent<Data>;
  } catch {
    throw new WebhookVerificationError("invalid-body", "the signed body is not JSON");
  }
}
