/**
 * How current the indexed data is, per chain, and the watchdog that notices and recovers a stalled index.
 *
 * Every second the watchdog reads Ponder's checkpoint (the latest indexed block and its time, per chain) and
 * each chain's head. A block seen at the head and still not indexed `INDEX_STALL_SECONDS` later means the index
 * stalled: `/ready` answers 503, every `/v1` answer says so in its `Chainbill-Indexed` header, and the recovery
 * runs (logged each time). Answers that report chain state carry the header, so a client always knows up to
 * which block (and block time) an answer is true.
 */
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import type { ChainRuntime } from "./chains";
import type { IndexedDb } from "./indexed";

export type IndexState = "current" | "behind" | "stalled" | "unknown";

export interface ChainFreshness {
  chainId: number;
  /** Latest block whose events are indexed (null before the first checkpoint). */
  indexedBlock: bigint | null;
  /** Timestamp of that block (unix seconds). */
  indexedBlockTime: bigint | null;
  /** Head of the chain at the last check (null: node unreachable). */
  headBlock: bigint | null;
  state: IndexState;
  /** Since when (ms) a head block has waited to be indexed, while behind or stalled. */
  waitingSince: number | null;
  checkedAt: number;
}

export interface Freshness {
  /** The last check, per chain. */
  snapshot(): ChainFreshness[];
  /** Whether the backfill is done and no chain's index is stalled, with the reasons when not. */
  readiness(): Promise<{ ready: boolean; reasons: string[] }>;
  /** The `Chainbill-Indexed` header value. */
  header(): string;
  /** Checks now (the loop does it every second). */
  check(): Promise<void>;
  stop(): void;
}

/** What the watchdog does when a chain's index stalls (e.g. ask the node for a block, restart the indexer). */
export type StallRecovery = (chain: ChainRuntime, state: ChainFreshness, attempt: number) => Promise<string>;

interface Target {
  block: bigint;
  since: number;
}

const CHECK_EVERY_MS = 1_000;

/** Rows of a raw query, whichever driver ran it (node-postgres and PGlite both answer `{ rows }`). */
function rowsOf(result: unknown): unknown[] {
  const rows = (result as { rows?: unknown[] }).rows;
  return Array.isArray(rows) ? rows : Array.isArray(result) ? result : [];
}

/** The database schema Ponder writes to (its checkpoint and meta tables live there). */
export function ponderSchema(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv): string | undefined {
  if (env.DATABASE_SCHEMA) return env.DATABASE_SCHEMA;
  const index = argv.indexOf("--schema");
  return index >= 0 ? argv[index + 1] : undefined;
}

export function createFreshness(options: {
  db: IndexedDb;
  schema: string | undefined;
  chains: Map<number, ChainRuntime>;
  stallSeconds: number;
  logger: Logger;
  recover: StallRecovery;
}): Freshness {
  const { db, schema, chains, logger } = options;
  const states = new Map<number, ChainFreshness>();
  const targets = new Map<number, Target>();
  const attempts = new Map<number, number>();
  let lastRecovery = new Map<number, number>();
  for (const id of chains.keys()) {
    states.set(id, { chainId: id, indexedBlock: null, indexedBlockTime: null, headBlock: null, state: "unknown", waitingSince: null, checkedAt: 0 });
  }

  async function checkpoints(): Promise<Map<number, { block: bigint; time: bigint }>> {
    if (!schema) return new Map();
    const result = await db.execute(sql`select chain_id, latest_checkpoint from ${sql.identifier(schema)}."_ponder_checkpoint"`);
    const rows = rowsOf(result) as { chain_id: number | string; latest_checkpoint: string }[];
    // A checkpoint is digits: 10 of block timestamp, 16 of chain id, 16 of block number, then the event position.
    return new Map(
      rows.map((row) => [Number(row.chain_id), { time: BigInt(row.latest_checkpoint.slice(0, 10)), block: BigInt(row.latest_checkpoint.slice(26, 42)) }]),
    );
  }

  async function backfillDone(): Promise<boolean> {
    if (!schema) return false;
    const result = await db.execute(sql`select value from ${sql.identifier(schema)}."_ponder_meta" where key = 'app'`);
    const rows = rowsOf(result) as { value: { is_ready?: number } }[];
    return rows[0]?.value?.is_ready === 1;
  }

  async function check(): Promise<void> {
    const now = Date.now();
    const indexed = await checkpoints().catch((error: unknown) => {
      logger.warn({ err: error }, "could not read the indexer's checkpoint");
      return new Map<number, { block: bigint; time: bigint }>();
    });
    await Promise.all(
      [...chains.values()].map(async (chain) => {
        const head = await chain.headBlock().catch(() => null);
        const point = indexed.get(chain.id);
        const previous = states.get(chain.id)!;
        const indexedBlock = point?.block ?? previous.indexedBlock;
        let target = targets.get(chain.id);
        let state: IndexState = "unknown";
        if (head !== null && indexedBlock !== null) {
          if (indexedBlock >= head) {
            target = undefined;
            state = "current";
          } else {
            // A head seen `since` must be indexed within the bound; progress past it sets a new target.
            if (!target || indexedBlock >= target.block) target = { block: head, since: now };
            state = now - target.since > options.stallSeconds * 1000 ? "stalled" : "behind";
          }
        }
        if (target) targets.set(chain.id, target);
        else targets.delete(chain.id);
        const next: ChainFreshness = {
          chainId: chain.id,
          indexedBlock,
          indexedBlockTime: point?.time ?? previous.indexedBlockTime,
          headBlock: head,
          state,
          waitingSince: target?.since ?? null,
          checkedAt: now,
        };
        states.set(chain.id, next);
        if (state === "stalled" && previous.state !== "stalled") {
          logger.warn({ chainId: chain.id, indexedBlock: String(indexedBlock), headBlock: String(head) }, "index stalled: the head is not being indexed");
        }
        if (state === "current" && previous.state === "stalled") {
          logger.info({ chainId: chain.id, indexedBlock: String(indexedBlock), attempts: attempts.get(chain.id) ?? 0 }, "index recovered");
          attempts.delete(chain.id);
        }
        if (state === "stalled" && now - (lastRecovery.get(chain.id) ?? 0) > options.stallSeconds * 1000) {
          const attempt = (attempts.get(chain.id) ?? 0) + 1;
          attempts.set(chain.id, attempt);
          lastRecovery.set(chain.id, now);
          const action = await options.recover(chain, next, attempt).catch((error: unknown) => `recovery failed: ${String(error)}`);
          logger.warn({ chainId: chain.id, attempt, action }, "index stall recovery");
        }
      }),
    );
  }

  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const loop = async () => {
    if (stopped) return;
    await check().catch((error: unknown) => logger.error({ err: error }, "index watchdog check failed"));
    if (!stopped) timer = setTimeout(loop, CHECK_EVERY_MS);
  };
  timer = setTimeout(loop, 0);
  timer.unref?.();

  return {
    snapshot: () => [...states.values()],
    async readiness() {
      const reasons: string[] = [];
      if (!(await backfillDone().catch(() => false))) reasons.push("the indexer has not finished its backfill");
      for (const state of states.values()) {
        if (state.state === "stalled") reasons.push(`chain ${state.chainId}: index stalled at block ${state.indexedBlock} (head ${state.headBlock})`);
        if (state.state === "unknown") reasons.push(`chain ${state.chainId}: index position not known yet`);
      }
      return { ready: reasons.length === 0, reasons };
    },
    header() {
      return [...states.values()]
        .map((state) => {
          const parts = [`chain=${state.chainId}`];
          if (state.indexedBlock !== null) parts.push(`block=${state.indexedBlock}`);
          if (state.indexedBlockTime !== null) parts.push(`time=${new Date(Number(state.indexedBlockTime) * 1000).toISOString()}`);
          if (state.headBlock !== null) parts.push(`head=${state.headBlock}`);
          parts.push(`state=${state.state}`);
          return parts.join(" ");
        })
        .join(", ");
    },
    check,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      lastRecovery = new Map();
    },
  };
}
