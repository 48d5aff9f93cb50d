/**
 * Opens the API store: embedded PGlite in a local directory by default, Postgres when DATABASE_URL is set.
 * Applies the committed drizzle migrations on open (under an advisory lock on Postgres, so replicas can start
 * together).
 */
import path from "node:path";
import { mkdirSync } from "node:fs";
import { sql } from "drizzle-orm";
import type { PgDatabase, PgQueryResultHKT } from "drizzle-orm/pg-core";
import * as schema from "./schema";

export type StoreDb = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Store {
  db: StoreDb;
  kind: "pglite" | "postgres";
  close(): Promise<void>;
}

const MIGRATIONS = path.join(__dirname, "migrations");
const MIGRATION_LOCK = 0x63_62_69_6c; // "cbil"

export async function openStore(options: { databaseUrl?: string; directory: string }): Promise<Store> {
  if (options.databaseUrl) {
    const { Pool } = await import("pg");
    const { drizzle } = await import("drizzle-orm/node-postgres");
    const { migrate } = await import("drizzle-orm/node-postgres/migrator");
    const pool = new Pool({ connectionString: options.databaseUrl, max: 20 });
    const db = drizzle(pool, { schema });
    const lockClient = await pool.connect();
    try {
      await lockClient.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK]);
      await migrate(db, { migrationsFolder: MIGRATIONS, migrationsSchema: "chainbill_api_migrations" });
    } finally {
      await lockClient.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK]).catch(() => undefined);
      lockClient.release();
    }
    return { db: db as unknown as StoreDb, kind: "postgres", close: () => pool.end() };
  }
  const { PGlite } = await import("@electric-sql/pglite");
  const { drizzle } = await import("drizzle-orm/pglite");
  const { migrate } = await import("drizzle-orm/pglite/migrator");
  mkdirSync(options.directory, { recursive: true });
  const client = new PGlite(options.directory);
  const db = drizzle(client, { schema });
  await migrate(db, { migrationsFolder: MIGRATIONS, migrationsSchema: "chainbill_api_migrations" });
  await db.execute(sql`select 1`);
  return { db: db as unknown as StoreDb, kind: "pglite", close: () => client.close() };
}

export { schema };
