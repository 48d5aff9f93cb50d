/**
 * Idempotency keys for unsafe requests (`Idempotency-Key` header, 1–255 characters), scoped per merchant.
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
import { canonicalJson } from "./invoices/details";
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

function badKey(slug: string, message: string): ProblemError {
  const errors: FieldError[] = [{ field: IDEMPOTENCY_HEADER, message }];
  return new ProblemError(400, slug, "Invalid Idempotency-Key", `The ${IDEMPOTENCY_HEADER} header ${message}.`, { errors });
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

let lastCleanup = 0;

async function cleanup(db: StoreDb): Promise<void> {
  if (Date.now() - lastCleanup < CLEANUP_EVERY_MS) return;
  lastCleanup = Date.now();
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
  work: (remember: (tx: StoreTx, response: RememberedResponse) => Promise<void>) => Promise<RememberedResponse>,
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
        409,
        "idempotency-key-reused",
        "Idempotency key reused",
        `The ${IDEMPOTENCY_HEADER} "${scope.key}" was already used with a different request. Use a new key for a new request.`,
        { errors: [{ field: IDEMPOTENCY_HEADER, message: "was already used with a different request" }] },
      );
    }
    if (existing.completed && existing.statusCode !== null) {
      return { status: existing.statusCode, body: storedText(existing.responseBody), replayed: true };
    }
    if (Date.now() > deadline) {
      throw new ProblemError(
        409,
        "idempotency-request-in-progress",
        "Request in progress",
        `A request with the ${IDEMPOTENCY_HEADER} "${scope.key}" is still being processed. Retry shortly with the same key.`,
      );
    }
    await sleep(POLL_MS);
  }

  let remembered = false;
  const remember = async (tx: StoreTx, response: RememberedResponse) => {
    await tx
      .update(idempotencyRecords)
      .set({ statusCode: response.status, responseBody: { text: response.body }, completed: true })
      .where(matches(scope));
    remembered = true;
  };
  try {
    const response = await work(remember);
    if (!remembered) {
      await db
        .update(idempotencyRecords)
        .set({ statusCode: response.status, responseBody: { text: response.body }, completed: true })
        .where(matches(scope));
    }
    return { ...response, replayed: false };
  } catch (error) {
    await db
      .delete(idempotencyRecords)
      .where(and(matches(scope), eq(idempotencyRecords.completed, false)))
      .catch(() => undefined);
    throw error;
  }
}
