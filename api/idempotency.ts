/**
 * Idempotency keys for unsafe requests (`Idempotency-Key` header, 1–255 characters), scoped per merchant, as one
 * middleware every state-changing route uses: `idempotent(db, { required })`.
 *
 * The first request with a key inserts its record (`INSERT … ON CONFLICT DO NOTHING`) before doing any work,
 * so of many concurrent identical requests exactly one does the work. The others wait for its response and
 * replay it (same status, byte-identical body, plus `Idempotent-Replayed: true`), or give up with 409
 * `idempotency-request-in-progress` after `WAIT_MS`. A key sent again with a different request (method, path
 * or JSON body) is refused with 409 `idempotency-key-reused`.
 *
 * Only successful responses are remembered: when the request fails (validation, conflict, chain error) its
 * record is deleted, so the same key can be retried once the problem is fixed. A record left unfinished by a
 * crashed process is taken over after `STALE_MS`; records are forgotten after `RETENTION_MS`.
 */
import { createHash } from "node:crypto";
import { and, eq, lt } from "drizzle-orm";
import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import { canonicalJson } from "./canonical-json";
import type { AppEnv } from "./env";
import { ProblemError, type FieldError } from "./problems";
import type { StoreDb } from "./store";
import { idempotencyRecords } from "./store/schema";

export const IDEMPOTENCY_HEADER = "Idempotency-Key";
export const MAX_IDEMPOTENCY_KEY_LENGTH = 255;

/** How long a duplicate request waits for the first one to finish. */
const WAIT_MS = 15_000;
const POLL_MS = 50;
/** An unfinished record older than this belongs to a request that died; a new request may take it over. */
const STALE_MS = 120_000;
/** Completed records are kept this long. */
const RETENTION_MS = 24 * 60 * 60 * 1000;
const CLEANUP_EVERY_MS = 10 * 60 * 1000;

export type StoreTx = Parameters<Parameters<StoreDb["transaction"]>[0]>[0];

/** A response as remembered: status and the exact JSON text of the body. */
export interface RememberedResponse {
  status: number;
  body: string;
}

export interface IdempotencyScope {
  merchantId: string;
  key: string;
  /** Hash of what the request asks for (see `requestFingerprint`). */
  fingerprint: string;
}

function badKey(slug: "idempotency-key-missing" | "idempotency-key-invalid", message: string): ProblemError {
  const errors: FieldError[] = [{ field: IDEMPOTENCY_HEADER, message }];
  return new ProblemError(slug, `The ${IDEMPOTENCY_HEADER} header ${message}.`, { errors });
}

/** Reads and checks the `Idempotency-Key` header; throws a 400 problem when it is required and missing. */
export function readIdempotencyKey(c: Context, required: boolean): string | undefined {
  const value = c.req.header(IDEMPOTENCY_HEADER);
  if (value === undefined || value === "") {
    if (!required) return undefined;
    throw badKey(
      "idempotency-key-missing",
      "is required: send a unique value (e.g. a UUID) per invoice, and the same value when you retry",
    );
  }
  if (value.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw badKey("idempotency-key-invalid", `must be at most ${MAX_IDEMPOTENCY_KEY_LENGTH} characters`);
  }
  return value;
}

/** What makes two requests "the same": method, path and the JSON body (key order and whitespace ignored). */
export function requestFingerprint(method: string, path: string, body: unknown): string {
  return createHash("sha256").update(`${method.toUpperCase()} ${path}\n${canonicalJson(body ?? null)}`).digest("hex");
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function matches(scope: IdempotencyScope) {
  return and(eq(idempotencyRecords.merchantId, scope.merchantId), eq(idempotencyRecords.key, scope.key));
}

/**
 * The body is kept as its exact JSON text inside a JSON object (`{"text": "..."}`): jsonb would reorder the
 * keys of the body itself, and drivers differ on whether a bare JSON string parameter is text or JSON.
 */
function storedText(stored: unknown): string {
  if (stored && typeof stored === "object" && typeof (stored as { text?: unknown }).text === "string") {
    return (stored as { text: string }).text;
  }
  return JSON.stringify(stored);
}

const lastCleanup = new WeakMap<StoreDb, number>();

async function cleanup(db: StoreDb): Promise<void> {
  if (Date.now() - (lastCleanup.get(db) ?? 0) < CLEANUP_EVERY_MS) return;
  lastCleanup.set(db, Date.now());
  await db.delete(idempotencyRecords).where(lt(idempotencyRecords.createdAt, new Date(Date.now() - RETENTION_MS)));
}

/**
 * Runs `work` once per (merchant, key). `work` receives `remember(tx, response)` to record its response inside
 * its own transaction (so the created resource and the record commit together); a response not recorded
 * that way is recorded after `work` returns. Returns the response and whether it was replayed.
 */
export async function withIdempotency(
  db: StoreDb,
  scope: IdempotencyScope,
  work: (remember: Remember) => Promise<RememberedResponse & { failed?: boolean }>,
): Promise<RememberedResponse & { replayed: boolean }> {
  await cleanup(db).catch(() => undefined);
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const inserted = await db
      .insert(idempotencyRecords)
      .values({ merchantId: scope.merchantId, key: scope.key, requestHash: scope.fingerprint })
      .onConflictDoNothing()
      .returning({ key: idempotencyRecords.key });
    if (inserted.length > 0) break;

    const [existing] = await db.select().from(idempotencyRecords).where(matches(scope)).limit(1);
    if (!existing) continue; // the first request failed and released the key: try to take it
    const age = Date.now() - existing.createdAt.getTime();
    if (age > RETENTION_MS) {
      await db
        .delete(idempotencyRecords)
        .where(and(matches(scope), lt(idempotencyRecords.createdAt, new Date(Date.now() - RETENTION_MS))));
      continue;
    }
    if (!existing.completed && age > STALE_MS) {
      await db
        .delete(idempotencyRecords)
        .where(
          and(
            matches(scope),
            eq(idempotencyRecords.completed, false),
            lt(idempotencyRecords.createdAt, new Date(Date.now() - STALE_MS)),
          ),
        );
      continue;
    }
    if (existing.requestHash !== scope.fingerprint) {
      throw new ProblemError(
        "idempotency-key-reused",
        `The ${IDEMPOTENCY_HEADER} "${scope.key}" was already used with a different request. Use a new key for a new request.`,
        { errors: [{ field: IDEMPOTENCY_HEADER, message: "was already used with a different request" }] },
      );
    }
    if (existing.completed && existing.statusCode !== null) {
      return { status: existing.statusCode, body: storedText(existing.responseBody), replayed: true };
    }
    if (Date.now() > deadline) {
      throw new ProblemError(
        "idempotency-request-in-progress",
        `A request with the ${IDEMPOTENCY_HEADER} "${scope.key}" is still being processed. Retry shortly with the same key.`,
      );
    }
    await sleep(POLL_MS);
  }

  let remembered = false;
  const remember: Remember = async (tx, response) => {
    await tx
      .update(idempotencyRecords)
      .set({ statusCode: response.status, responseBody: { text: response.body }, completed: true })
      .where(matches(scope));
    remembered = true;
  };
  try {
    const response = await work(remember);
    if (response.failed) {
      // A failure (a problem response) is not remembered: the key is released for a corrected retry.
      await release(db, scope);
      return { status: response.status, body: response.body, replayed: false };
    }
    if (!remembered) {
      await db
        .update(idempotencyRecords)
        .set({ statusCode: response.status, responseBody: { text: response.body }, completed: true })
        .where(matches(scope));
    }
    return { ...response, replayed: false };
  } catch (error) {
    await release(db, scope);
    throw error;
  }
}

async function release(db: StoreDb, scope: IdempotencyScope): Promise<void> {
  await db
    .delete(idempotencyRecords)
    .where(and(matches(scope), eq(idempotencyRecords.completed, false)))
    .catch(() => undefined);
}

/** Records a response inside the caller's own transaction (so a created resource and its record commit together). */
export type Remember = (tx: StoreTx, response: RememberedResponse) => Promise<void>;

/** The JSON body as the fingerprint sees it: parsed when it is JSON, else its text (validation refuses it later). */
async function fingerprintBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.length === 0) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return { unparsedBody: text };
  }
}

/**
 * Makes a state-changing route idempotent. With a key, the first request runs the route and its successful
 * response (2xx) is stored; the same key and request replays it (`Idempotent-Replayed: true`), another request
 * with the key is 409. A route that creates a resource may call `c.get("remember")(tx, response)` to store the
 * response in its own transaction. Without a key the route just runs (unless `required`).
 */
export function idempotent(db: StoreDb, options: { required: boolean }) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const key = readIdempotencyKey(c, options.required);
    if (key === undefined) {
      await next();
      return;
    }
    // Keys are scoped per merchant; the admin key's requests share one scope of their own.
    const owner = c.get("principal").merchant?.id ?? "admin";
    const fingerprint = requestFingerprint(c.req.method, c.req.path, await fingerprintBody(c));
    const result = await withIdempotency(db, { merchantId: owner, key, fingerprint }, async (remember) => {
      c.set("remember", remember);
      await next();
      const status = c.res.status;
      const body = await c.res.clone().text();
      return { status, body, failed: status >= 400 };
    });
    if (result.replayed) {
      c.res = new Response(result.body, {
        status: result.status,
        headers: { "content-type": "application/json", "Idempotent-Replayed": "true" },
      });
    }
  });
}
