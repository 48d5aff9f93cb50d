import { expect } from "chai";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { OpenAPIHono } from "@hono/zod-openapi";
import { asc, eq, sql } from "drizzle-orm";
import type { Context } from "hono";
import { GENESIS_HASH, appendAudit, auditFrom, verifyAuditChain, type AuditEntryInput } from "../../api/audit";
import { canonicalJson } from "../../api/canonical-json";
import type { ApiDeps, AppEnv, MerchantRecord, Principal } from "../../api/env";
import { errorHandler } from "../../api/middleware";
import { auditRoutes } from "../../api/routes/audit";
import { openStore, type Store } from "../../api/store";
import { auditLog } from "../../api/store/schema";
import { recordingLogger } from "./helpers/logger";
import { sharedStore, uniqueId } from "./helpers/store";

type AuditRow = typeof auditLog.$inferSelect;

/** The hash as the documentation states it, computed here independently of api/audit.ts. */
function expectedHash(row: AuditRow): string {
  const { hash: _hash, ...fields } = row;
  return createHash("sha256")
    .update(canonicalJson({ ...fields, createdAt: row.createdAt.toISOString() }))
    .digest("hex");
}

async function rowsOf(store: Store, merchantId: string): Promise<AuditRow[]> {
  return store.db.select().from(auditLog).where(eq(auditLog.merchantId, merchantId)).orderBy(asc(auditLog.sequence));
}

async function rowAt(store: Store, sequence: number): Promise<AuditRow> {
  const [row] = await store.db.select().from(auditLog).where(eq(auditLog.sequence, sequence));
  return row;
}

const entry = (merchantId: string | null, action: string, details: Record<string, unknown> = {}): AuditEntryInput => ({
  merchantId,
  actor: "merchant",
  apiKeyId: "key_test",
  requestId: "req_test",
  action,
  target: "tgt_1",
  details,
});

/** The audit routes under /v1 for a merchant key with `scopes`. */
function auditApp(store: Store, merchantId: string, scopes: string[] = ["merchant:read"]) {
  const deps = { store } as unknown as ApiDeps;
  const principal: Principal = { kind: "merchant", merchant: { id: merchantId } as MerchantRecord, apiKeyId: "key_route", scopes: new Set(scopes) };
  const app = new OpenAPIHono<AppEnv>();
  app.use("*", async (c, next) => {
    c.set("requestId", "req_route");
    c.set("principal", principal);
    await next();
  });
  app.route("/v1", auditRoutes(deps));
  app.onError(errorHandler(recordingLogger().logger));
  return app;
}

describe("unit: api/audit (real store)", function () {
  this.timeout(10_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  it("chains each entry to the one before with SHA-256 over its canonical JSON", async () => {
    const merchantId = uniqueId("mer");
    const first = await appendAudit(store.db, entry(merchantId, "api_key.create", { name: "ci" }));
    const second = await appendAudit(store.db, entry(merchantId, "api_key.revoke"));
    const third = await appendAudit(store.db, { merchantId, actor: "keeper", action: "payout.send" });
    expect(second.sequence).to.equal(first.sequence + 1);
    expect(third.sequence).to.equal(second.sequence + 1);
    const rows = await rowsOf(store, merchantId);
    expect(rows.map((row) => row.sequence)).to.deep.equal([first.sequence, second.sequence, third.sequence]);
    expect(rows.map((row) => row.hash)).to.deep.equal([first.hash, second.hash, third.hash]);
    for (const row of rows) {
      expect(row.hash).to.match(/^[0-9a-f]{64}$/);
      expect(row.hash).to.equal(expectedHash(row));
    }
    expect(rows[1].previousHash).to.equal(rows[0].hash);
    expect(rows[2].previousHash).to.equal(rows[1].hash);
    expect(rows[0]).to.include({ actor: "merchant", apiKeyId: "key_test", requestId: "req_test", action: "api_key.create", target: "tgt_1" });
    expect(rows[0].details).to.deep.equal({ name: "ci" });
    // Optional fields not given are stored (and hashed) as null and {}.
    expect(rows[2]).to.include({ actor: "keeper", apiKeyId: null, requestId: null, target: null });
    expect(rows[2].details).to.deep.equal({});
    expect(rows[0].createdAt.getTime() % 1).to.equal(0);
    if (first.sequence === 1) expect(rows[0].previousHash).to.equal(GENESIS_HASH);
    else expect(rows[0].previousHash).to.equal((await rowAt(store, first.sequence - 1)).hash);
  });

  it("stores details as jsonb gives them back (bigints as strings, dates as ISO, undefined dropped), so they verify", async () => {
    const merchantId = uniqueId("mer");
    await appendAudit(store.db, entry(merchantId, "refund.send", { amount: 12_345_678_901_234_567_890n, at: new Date("2025-01-02T03:04:05.678Z"), gone: undefined, list: [1, "two", null], nested: { z: 1, a: true } }));
    const [row] = await rowsOf(store, merchantId);
    expect(row.details).to.deep.equal({ amount: "12345678901234567890", at: "2025-01-02T03:04:05.678Z", list: [1, "two", null], nested: { z: 1, a: true } });
    expect(row.hash).to.equal(expectedHash(row));
    expect(await verifyAuditChain(store.db)).to.include({ ok: true });
  });

  it("appends inside a given transaction: the entry commits with it, or rolls back with it", async () => {
    const merchantId = uniqueId("mer");
    const failure = await store.db
      .transaction(async (tx) => {
        await appendAudit(tx, entry(merchantId, "rolled.back"));
        throw new Error("the change failed");
      })
      .catch((error: Error) => error);
    expect(failure).to.be.instanceOf(Error);
    expect(await rowsOf(store, merchantId)).to.have.length(0);
    const appended = await store.db.transaction(async (tx) => appendAudit(tx, entry(merchantId, "committed")));
    const rows = await rowsOf(store, merchantId);
    expect(rows.map((row) => [row.sequence, row.action])).to.deep.equal([[appended.sequence, "committed"]]);
    // The rolled back entry left no gap: the chain is whole.
    expect(await verifyAuditChain(store.db)).to.include({ ok: true });
  });

  it("keeps the chain contiguous and valid under 20 concurrent appends", async () => {
    const merchantId = uniqueId("mer");
    const results = await Promise.all(Array.from({ length: 20 }, (_, index) => appendAudit(store.db, entry(merchantId, `concurrent.${index}`, { index }))));
    const sequences = results.map((result) => result.sequence).sort((a, b) => a - b);
    expect(new Set(sequences).size).to.equal(20);
    expect(sequences.at(-1)! - sequences[0]).to.equal(19);
    const rows = await rowsOf(store, merchantId);
    expect(rows).to.have.length(20);
    for (let index = 1; index < rows.length; index += 1) expect(rows[index].previousHash).to.equal(rows[index - 1].hash);
    const verified = await verifyAuditChain(store.db);
    expect(verified).to.include({ ok: true });
    expect(verified.entries).to.be.at.least(sequences.at(-1)!);
  });

  it("is refused UPDATE and DELETE by the append-only trigger", async () => {
    const merchantId = uniqueId("mer");
    const { sequence } = await appendAudit(store.db, entry(merchantId, "kept"));
    const update = await store.db
      .update(auditLog)
      .set({ details: { forged: true } })
      .where(eq(auditLog.sequence, sequence))
      .catch((error: Error) => error);
    expect(update).to.be.instanceOf(Error);
    expect(String((update as Error & { cause?: Error }).cause?.message ?? (update as Error).message)).to.contain("audit_log is append-only");
    const deletion = await store.db
      .delete(auditLog)
      .where(eq(auditLog.sequence, sequence))
      .catch((error: Error) => error);
    expect(deletion).to.be.instanceOf(Error);
    expect(String((deletion as Error & { cause?: Error }).cause?.message ?? (deletion as Error).message)).to.contain("audit_log is append-only");
    const [row] = await rowsOf(store, merchantId);
    expect(row.details).to.deep.equal({});
    expect(await verifyAuditChain(store.db)).to.include({ ok: true });
  });

  describe("tampering (a throwaway store with the trigger disabled)", function () {
    let directory: string;
    let own: Store;
    before(async function () {
      this.timeout(120_000);
      directory = mkdtempSync(path.join(tmpdir(), "chainbill-audit-tamper-"));
      own = await openStore({ directory });
      for (let index = 1; index <= 5; index += 1) await appendAudit(own.db, entry("mer_tamper", `action.${index}`, { index }));
    });
    after(async () => {
      await own?.close();
      if (directory) rmSync(directory, { recursive: true, force: true });
    });

    /** Runs `change` with the append-only trigger off, as someone with the database's owner rights could. */
    async function tamper(change: () => Promise<unknown>) {
      await own.db.execute(sql`ALTER TABLE chainbill_api.audit_log DISABLE TRIGGER audit_log_append_only`);
      try {
        await change();
      } finally {
        await own.db.execute(sql`ALTER TABLE chainbill_api.audit_log ENABLE TRIGGER audit_log_append_only`);
      }
    }

    it("verifies the untouched chain from the genesis hash", async () => {
      expect(await verifyAuditChain(own.db)).to.deep.equal({ ok: true, entries: 5 });
      expect((await rowAt(own, 1)).previousHash).to.equal(GENESIS_HASH);
    });

    it("names the entry whose details were changed, and verifies again once they are restored", async () => {
      const original = await rowAt(own, 3);
      await tamper(() => own.db.update(auditLog).set({ details: { index: 33 } }).where(eq(auditLog.sequence, 3)));
      const broken = await verifyAuditChain(own.db);
      expect(broken).to.deep.equal({ ok: false, sequence: 3, entries: 2, reason: "entry 3 was changed (its hash does not match its contents)" });
      await tamper(() => own.db.update(auditLog).set({ details: original.details }).where(eq(auditLog.sequence, 3)));
      expect(await verifyAuditChain(own.db)).to.deep.equal({ ok: true, entries: 5 });
    });

    it("names the next entry when a changed entry's hash was recomputed too", async () => {
      const original = await rowAt(own, 2);
      const forged = { ...original, action: "forged" };
      await tamper(() => own.db.update(auditLog).set({ action: "forged", hash: expectedHash(forged) }).where(eq(auditLog.sequence, 2)));
      expect(await verifyAuditChain(own.db)).to.deep.equal({ ok: false, sequence: 3, entries: 2, reason: "entry 3 does not link to entry 2 (previousHash differs)" });
      await tamper(() => own.db.update(auditLog).set({ action: original.action, hash: original.hash }).where(eq(auditLog.sequence, 2)));
      expect(await verifyAuditChain(own.db)).to.deep.equal({ ok: true, entries: 5 });
    });

    it("names a removed entry as missing", async () => {
      await tamper(() => own.db.delete(auditLog).where(eq(auditLog.sequence, 4)));
      expect(await verifyAuditChain(own.db)).to.deep.equal({ ok: false, sequence: 4, entries: 3, reason: "entry 4 is missing (the next entry is 5)" });
      const response = await auditApp(own, "mer_tamper").request("/v1/audit-log/verify");
      expect(await response.json()).to.deep.equal({ ok: false, entries: 3, brokenAt: 4, reason: "entry 4 is missing (the next entry is 5)" });
    });

    it("names entry 1 as missing when the chain does not start at 1", async () => {
      await tamper(() => own.db.delete(auditLog).where(eq(auditLog.sequence, 1)));
      expect(await verifyAuditChain(own.db)).to.deep.include({ ok: false, sequence: 1, entries: 0 });
    });
  });

  describe("verification past one batch of 1000", function () {
    let directory: string;
    let own: Store;
    before(async function () {
      this.timeout(120_000);
      directory = mkdtempSync(path.join(tmpdir(), "chainbill-audit-batch-"));
      own = await openStore({ directory });
    });
    after(async () => {
      await own?.close();
      if (directory) rmSync(directory, { recursive: true, force: true });
    });

    it("verifies 1001 entries, and finds a change in the second batch", async () => {
      // 1000 entries chained here (one insert, faster than 1000 appends), then one appended after them.
      const rows: AuditRow[] = [];
      let previousHash = GENESIS_HASH;
      for (let sequence = 1; sequence <= 1000; sequence += 1) {
        const row = { ...entry(null, "bulk", { sequence }), apiKeyId: null, requestId: null, target: null, details: { sequence }, sequence, previousHash, createdAt: new Date(1_700_000_000_000 + sequence), hash: "" };
        row.hash = expectedHash(row);
        rows.push(row);
        previousHash = row.hash;
      }
      await own.db.insert(auditLog).values(rows);
      expect(await appendAudit(own.db, entry(null, "after.bulk"))).to.include({ sequence: 1001 });
      expect(await verifyAuditChain(own.db)).to.deep.equal({ ok: true, entries: 1001 });
      await own.db.execute(sql`ALTER TABLE chainbill_api.audit_log DISABLE TRIGGER audit_log_append_only`);
      await own.db.update(auditLog).set({ target: "forged" }).where(eq(auditLog.sequence, 1001));
      expect(await verifyAuditChain(own.db)).to.deep.include({ ok: false, sequence: 1001, entries: 1000 });
    });
  });
});

describe("unit: api/audit auditFrom", () => {
  const merchant = { id: "mer_from" } as MerchantRecord;
  const contextOf = (principal: Principal) =>
    ({ get: (key: string) => (key === "principal" ? principal : key === "requestId" ? "req_from" : undefined) }) as unknown as Context<AppEnv>;

  it("takes a merchant key's merchant, key and request", () => {
    const c = contextOf({ kind: "merchant", merchant, apiKeyId: "key_from", scopes: new Set() });
    expect(auditFrom(c, "api_key.create", "key_new", { name: "ci" })).to.deep.equal({
      merchantId: "mer_from",
      actor: "merchant",
      apiKeyId: "key_from",
      requestId: "req_from",
      action: "api_key.create",
      target: "key_new",
      details: { name: "ci" },
    });
  });

  it("takes the admin key as actor admin without a merchant or key", () => {
    const c = contextOf({ kind: "admin", scopes: new Set() });
    expect(auditFrom(c, "merchant.create")).to.deep.equal({
      merchantId: null,
      actor: "admin",
      apiKeyId: null,
      requestId: "req_from",
      action: "merchant.create",
      target: null,
      details: {},
    });
  });
});

describe("unit: api/routes/audit (real store)", function () {
  this.timeout(10_000);
  let store: Store;
  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
  });

  const appAs = (merchantId: string, scopes?: string[]) => auditApp(store, merchantId, scopes);

  interface Page {
    data: { sequence: number; action: string; hash: string; previousHash: string; details: Record<string, unknown>; actor: string; createdAt: string }[];
    nextCursor: string | null;
  }

  it("lists only the merchant's entries, newest first, a page at a time", async () => {
    const merchantId = uniqueId("mer");
    const other = uniqueId("mer");
    for (let index = 1; index <= 5; index += 1) {
      await appendAudit(store.db, entry(merchantId, `mine.${index}`, { index }));
      await appendAudit(store.db, entry(other, `theirs.${index}`));
    }
    const app = appAs(merchantId);
    const first = (await (await app.request("/v1/audit-log?limit=2")).json()) as Page;
    expect(first.data.map((item) => item.action)).to.deep.equal(["mine.5", "mine.4"]);
    expect(first.data[0]).to.include({ actor: "merchant" });
    expect(first.data[0].details).to.deep.equal({ index: 5 });
    expect(first.data[0].hash).to.match(/^[0-9a-f]{64}$/);
    // The entry before it in the global chain is the other merchant's.
    const [previous] = await store.db.select().from(auditLog).where(eq(auditLog.sequence, first.data[0].sequence - 1));
    expect(previous.merchantId).to.equal(other);
    expect(first.data[0].previousHash).to.equal(previous.hash);
    expect(first.nextCursor).to.be.a("string");
    const second = (await (await app.request(`/v1/audit-log?limit=2&cursor=${first.nextCursor}`)).json()) as Page;
    expect(second.data.map((item) => item.action)).to.deep.equal(["mine.3", "mine.2"]);
    const third = (await (await app.request(`/v1/audit-log?limit=2&cursor=${second.nextCursor}`)).json()) as Page;
    expect(third.data.map((item) => item.action)).to.deep.equal(["mine.1"]);
    expect(third.nextCursor).to.equal(null);
    const all = (await (await app.request("/v1/audit-log")).json()) as Page;
    expect(all.data).to.have.length(5);
  });

  it("refuses a cursor it did not make and a limit out of range (422), and a key without merchant:read (403)", async () => {
    const app = appAs(uniqueId("mer"));
    const badCursor = await app.request("/v1/audit-log?cursor=cur_nope");
    expect(badCursor.status).to.equal(422);
    expect(((await badCursor.json()) as { errors: { field: string }[] }).errors[0].field).to.equal("cursor");
    expect((await app.request("/v1/audit-log?limit=0")).status).to.equal(422);
    expect((await app.request("/v1/audit-log?limit=101")).status).to.equal(422);
    expect((await appAs(uniqueId("mer"), ["invoices:read"]).request("/v1/audit-log")).status).to.equal(403);
    expect((await appAs(uniqueId("mer"), ["invoices:read"]).request("/v1/audit-log/verify")).status).to.equal(403);
  });

  it("verifies the whole chain", async () => {
    await appendAudit(store.db, entry(uniqueId("mer"), "verified"));
    const response = await appAs(uniqueId("mer")).request("/v1/audit-log/verify");
    expect(response.status).to.equal(200);
    const body = (await response.json()) as { ok: boolean; entries: number; brokenAt?: number };
    expect(body.ok).to.equal(true);
    expect(body.brokenAt).to.equal(undefined);
    const [{ total }] = await store.db.select({ total: sql<number>`count(*)::int` }).from(auditLog);
    expect(body.entries).to.equal(Number(total));
  });
});
