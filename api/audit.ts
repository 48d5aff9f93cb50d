/**
 * The audit log: an append-only, tamper-evident record of administrative actions (keys created and revoked,
 * settings changed, refunds sent, alert rules changed…), one global hash chain across merchants.
 *
 * Entry n stores `previousHash` (entry n-1's hash; 64 zeros for entry 1) and `hash` = SHA-256 (hex) of the
 * canonical JSON of the entry itself with that previous hash. Changing an entry changes its hash, which no
 * longer matches (and no longer links to the next entry); removing one leaves a gap in the sequences. A
 * trigger (migration 0003) refuses UPDATE and DELETE, so only someone able to drop it can tamper, and
 * `verifyAuditChain` then tells where. Appenders are serialized by a transaction-scoped advisory lock, so the
 * chain never forks: the next entry is always computed from the committed last one.
 *
 * What the chain does not show by itself: entries cut off at the end (the last hash is as valid as any). Note
 * the head (`verifyAuditChain` / the last entry's hash) somewhere else now and then to notice that too.
 */
import { createHash } from "node:crypto";
import { asc, desc, gt, sql } from "drizzle-orm";
import type { Context } from "hono";
import { canonicalJson } from "./canonical-json";
import type { AppEnv } from "./env";
import type { StoreTx } from "./idempotency";
import type { StoreDb } from "./store";
import { auditLog } from "./store/schema";

export type AuditActor = "merchant" | "admin" | "keeper" | "system" | "customer";

export interface AuditEntryInput {
  merchantId: string | null;
  actor: AuditActor;
  apiKeyId?: string | null;
  requestId?: string | null;
  /** What was done, e.g. `api_key.create`, `alert_rule.update`. */
  action: string;
  /** What it was done to (an id), when there is one. */
  target?: string | null;
  details?: Record<string, unknown>;
}

export const GENESIS_HASH = "0".repeat(64);

/** The advisory lock that serializes appenders ("cbal"). */
const AUDIT_LOCK = 0x63_62_61_6c;
const VERIFY_BATCH = 1_000;

type AuditRow = typeof auditLog.$inferSelect;

/** The fields hashed, in the form they are stored and read back. */
function hashOf(entry: Omit<AuditRow, "hash">): string {
  const hashed = {
    sequence: entry.sequence,
    previousHash: entry.previousHash,
    merchantId: entry.merchantId,
    actor: entry.actor,
    apiKeyId: entry.apiKeyId,
    requestId: entry.requestId,
    action: entry.action,
    target: entry.target,
    details: entry.details,
    createdAt: entry.createdAt.toISOString(),
  };
  return createHash("sha256").update(canonicalJson(hashed)).digest("hex");
}

/**
 * Details as jsonb will give them back (bigints as decimal strings, dates as ISO strings, undefined dropped),
 * so the hash computed now is the hash recomputed from the stored row.
 */
function storedDetails(details: Record<string, unknown> | undefined): Record<string, unknown> {
  const text = JSON.stringify(details ?? {}, (_key, value: unknown) => (typeof value === "bigint" ? value.toString() : value));
  const parsed = JSON.parse(text) as unknown;
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw new Error("audit details must be an object");
  return parsed as Record<string, unknown>;
}

/**
 * Appends one entry to the chain. Given a transaction, the entry commits (or rolls back) with it, and the lock
 * is held until it ends: keep such transactions short. Given the store, it runs in a transaction of its own.
 */
export async function appendAudit(db: StoreDb | StoreTx, entry: AuditEntryInput): Promise<{ sequence: number; hash: string }> {
  const details = storedDetails(entry.details);
  // A transaction's `transaction` opens a savepoint: the lock is still taken by (and held until the end of) the
  // caller's transaction.
  return (db as StoreDb).transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${sql.raw(String(AUDIT_LOCK))})`);
    const [last] = await tx.select({ sequence: auditLog.sequence, hash: auditLog.hash }).from(auditLog).orderBy(desc(auditLog.sequence)).limit(1);
    // Milliseconds, as a JS date holds them: stored and read back unchanged (timestamptz keeps microseconds).
    const createdAt = new Date(Date.now());
    const row: Omit<AuditRow, "hash"> = {
      sequence: (last?.sequence ?? 0) + 1,
      previousHash: last?.hash ?? GENESIS_HASH,
      merchantId: entry.merchantId,
      actor: entry.actor,
      apiKeyId: entry.apiKeyId ?? null,
      requestId: entry.requestId ?? null,
      action: entry.action,
      target: entry.target ?? null,
      details,
      createdAt,
    };
    const hash = hashOf(row);
    await tx.insert(auditLog).values({ ...row, hash });
    return { sequence: row.sequence, hash };
  });
}

/**
 * The entry for an action of the request's principal: a merchant key (its merchant and key id) or the admin
 * key (no merchant: spread the result and set `merchantId` when the action concerns one, e.g. creating it).
 */
export function auditFrom(c: Context<AppEnv>, action: string, target?: string | null, details?: Record<string, unknown>): AuditEntryInput {
  const principal = c.get("principal");
  return {
    merchantId: principal.merchant?.id ?? null,
    actor: principal.kind === "admin" ? "admin" : "merchant",
    apiKeyId: principal.apiKeyId ?? null,
    requestId: c.get("requestId") ?? null,
    action,
    target: target ?? null,
    details: details ?? {},
  };
}

export type AuditVerification = { ok: true; entries: number } | { ok: false; sequence: number; reason: string; entries: number };

/**
 * Recomputes the whole chain in sequence order: sequences contiguous from 1, each `previousHash` the hash of
 * the entry before, each `hash` the hash of its entry. On failure, `sequence` is the first entry that does
 * not verify (for a gap: the first missing sequence) and `entries` how many verified before it.
 */
export async function verifyAuditChain(db: StoreDb | StoreTx): Promise<AuditVerification> {
  let expected = 1;
  let previousHash = GENESIS_HASH;
  for (;;) {
    const rows = await (db as StoreDb)
      .select()
      .from(auditLog)
      .where(gt(auditLog.sequence, expected - 1))
      .orderBy(asc(auditLog.sequence))
      .limit(VERIFY_BATCH);
    for (const row of rows) {
      const entries = expected - 1;
      if (row.sequence !== expected) {
        return { ok: false, sequence: expected, reason: `entry ${expected} is missing (the next entry is ${row.sequence})`, entries };
      }
      if (row.previousHash !== previousHash) {
        return { ok: false, sequence: row.sequence, reason: `entry ${row.sequence} does not link to entry ${row.sequence - 1} (previousHash differs)`, entries };
      }
      const { hash, ...rest } = row;
      if (hashOf(rest) !== hash) {
        return { ok: false, sequence: row.sequence, reason: `entry ${row.sequence} was changed (its hash does not match its contents)`, entries };
      }
      previousHash = hash;
      expected += 1;
    }
    if (rows.length < VERIFY_BATCH) return { ok: true, entries: expected - 1 };
  }
}
