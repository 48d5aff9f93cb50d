/**
 * How current the indexed data is, per chain, and the watchdog that notices and recovers a stalled index.
 *
 * Every second the watchdog reads Ponder's checkpoint (the latest indexed block and its time, per chain) and
 * each chain's head. The index is `behind` while the head is ahead of it, and `stalled` when it has been behind
 * without indexing a single new block for `INDEX_STALL_SECONDS` (a burst of 200 blocks is behind for a while, but
 * keeps progressing). While a chain is stalled, or behind by more than `INDEX_MAX_LAG_BLOCKS`, `/ready` answers
 * 503, and every `/v1` answer says where the index is in its `Chainbill-Indexed` header.
 *
 * Recovery, each step logged: on a local node, one empty block (wakes an indexer waiting for a head); after
 * `INDEX_RESTART_SECONDS` stalled, the process exits with code 75 (Ponder's "retryable" exit, after its clean
 * shutdown) so the supervisor starts it again — a fresh indexer resubscribes and catches up, the only remedy
 * that recovers a silently dead subscription.
 *
 * After a restart Ponder reverts the rows of the unfinalized tail to its "safe" checkpoint and re-indexes them,
 * while the latest checkpoint still names the block reached before: until the latest checkpoint moves, the safe
 * one is the honest position.
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
  /** When (ms) the index last indexed a new block or was level with the head. */
  progressAt: number;
  checkedAt: number;
}

export interface Freshness {
  /** Resolves once the indexer's state at this process's start is read (await it before indexing resumes). */
  initialized: Promise<void>;
  /** The last check, per chain. */
  snapshot(): ChainFreshness[];
  /** Whether the backfill is done and every chain's index is close to its head, with the reasons when not. */
  readiness(): Promise<{ ready: boolean; reasons: string[] }>;
  /** The `Chainbill-Indexed` header value. */
  header(): string;
  /** The latest indexed block's timestamp per chain, read now (not from the last check). */
  indexedTimes(): Promise<Map<number, bigint>>;
  /** Checks now (the loop does it every second). */
  check(): Promise<void>;
  stop(): void;
}

/** A recovery step for a stalled chain; returns what it did, for the log. */
export type StallRecovery = (chain: ChainRuntime, state: ChainFreshness, stalledForMs: number) => Promise<string | undefined>;

export interface FreshnessOptions {
  db: IndexedDb;
  schema: string | undefined;
  chains: Map<number, ChainRuntime>;
  stallSeconds: number;
  maxLagBlocks: number;
  logger: Logger;
  recover: StallRecovery;
}

interface Checkpoint {
  block: bigint;
  time: bigint;
}

const CHECK_EVERY_MS = 1_000;

/** Rows of a raw query, whichever driver ran it (node-postgres and PGlite both answer `{ rows }`). */
function rowsOf(result: unknown): unknown[] {
  const rows = (result as { rows?: unknown[] }).rows;
  return Array.isArray(rows) ? rows : Array.isArray(result) ? result : [];
}

/** A checkpoint is digits: 10 of block timestamp, 16 of chain id, 16 of block number, then the event position. */
function decode(checkpoint: string): Checkpoint {
  return { time: BigInt(checkpoint.slice(0, 10)), block: BigInt(checkpoint.slice(26, 42)) };
}

/** The database schema Ponder writes to (its checkpoint and meta tables live there). */
export function ponderSchema(env: NodeJS.ProcessEnv = process.env, argv: string[] = process.argv): string | undefined {
  if (env.DATABASE_SCHEMA) return env.DATABASE_SCHEMA;
  const index = argv.indexOf("--schema");
  return index >= 0 ? argv[index + 1] : undefined;
}

export function createFreshness(options: FreshnessOptions): Freshness {
  const { db, schema, chains, logger } = options;
  const states = new Map<number, ChainFreshness>();
  /** The latest checkpoint per chain when this process started: until it moves, the safe checkpoint is the position. */
  const startingLatest = new Map<number, string>();
  const moved = new Set<number>();
  const lastStep = new Map<number, number>();
  for (const id of chains.keys()) {
    states.set(id, { chainId: id, indexedBlock: null, indexedBlockTime: null, headBlock: null, state: "unknown", progressAt: Date.now(), checkedAt: 0 });
  }

  async function readCheckpoints() {
    if (!schema) return [];
    const result = await db.execute(sql`select chain_id, latest_checkpoint, safe_checkpoint from ${sql.identifier(schema)}."_ponder_checkpoint"`);
    return (rowsOf(result) as { chain_id: number | string; latest_checkpoint: string; safe_checkpoint: string }[]).map((row) => ({
      chainId: Number(row.chain_id),
      latest: row.latest_checkpoint,
      safe: row.safe_checkpoint,
    }));
  }

  /**
   * What the indexer had when this process started (the API is loaded after Ponder's crash recovery and before
   * its indexing resumes): a chain with a checkpoint then is recovering, and its safe checkpoint is the honest
   * position until the latest one moves; a chain without one starts fresh.
   */
  const started = readCheckpoints()
    .then((rows) => {
      for (const row of rows) startingLatest.set(row.chainId, row.latest);
    })
    .catch(() => undefined);

  async function positions(): Promise<Map<number, Checkpoint>> {
    await started;
    const found = new Map<number, Checkpoint>();
    for (const row of await readCheckpoints()) {
      const recovering = startingLatest.has(row.chainId) && !moved.has(row.chainId);
      if (recovering && row.latest !== startingLatest.get(row.chainId)) moved.add(row.chainId);
      found.set(row.chainId, decode(recovering && !moved.has(row.chainId) ? row.safe : row.latest));
    }
    return found;
  }

  async function backfillDone(): Promise<boolean> {
    if (!schema) return false;
    const result = await db.execute(sql`select value from ${sql.identifier(schema)}."_ponder_meta" where key = 'app'`);
    const rows = rowsOf(result) as { value: { is_ready?: number } }[];
    return rows[0]?.value?.is_ready === 1;
  }

  async function check(): Promise<void> {
    const now = Date.now();
    const indexed = await positions().catch((error: unknown) => {
      logger.warn({ err: error }, "could not read the indexer's checkpoint");
      return new Map<number, Checkpoint>();
    });
    await Promise.all(
      [...chains.values()].map(async (chain) => {
        const readHead = await chain.headBlock().catch(() => null);
        const point = indexed.get(chain.id);
        const previous = states.get(chain.id)!;
        const indexedBlock = point?.block ?? previous.indexedBlock;
        // The head is cached for a moment while the checkpoint is read fresh: a block the indexer has stored
        // exists, so the head reported is never below it.
        const head = readHead !== null && indexedBlock !== null && indexedBlock > readHead ? indexedBlock : readHead;
        let progressAt = previous.progressAt;
        if (indexedBlock !== null && (previous.indexedBlock === null || indexedBlock > previous.indexedBlock)) progressAt = now;
        let state: IndexState = "unknown";
        if (head !== null && indexedBlock !== null) {
          if (indexedBlock >= head) {
            state = "current";
            progressAt = now;
          } else {
            state = now - progressAt > options.stallSeconds * 1000 ? "stalled" : "behind";
          }
        }
        const next: ChainFreshness = {
          chainId: chain.id,
          indexedBlock,
          indexedBlockTime: point?.time ?? previous.indexedBlockTime,
          headBlock: head,
          state,
          progressAt,
          checkedAt: now,
        };
        states.set(chain.id, next);
        if (state === "stalled" && previous.state !== "stalled") {
          logger.warn(
            { chainId: chain.id, indexedBlock: String(indexedBlock), headBlock: String(head), stalledSeconds: Math.round((now - progressAt) / 1000) },
            "index stalled: the head is not being indexed",
          );
        }
        if (state === "current" && previous.state === "stalled") {
          logger.info({ chainId: chain.id, indexedBlock: String(indexedBlock) }, "index recovered");
          lastStep.delete(chain.id);
        }
        // One recovery step at most every stall period, each logged.
        if (state === "stalled" && now - (lastStep.get(chain.id) ?? 0) >= options.stallSeconds * 1000) {
          lastStep.set(chain.id, now);
          const action = await options.recover(chain, next, now - progressAt).catch((error: unknown) => `recovery failed: ${String(error)}`);
          if (action) logger.warn({ chainId: chain.id, action }, "index stall recovery");
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
    initialized: started,
    snapshot: () => [...states.values()],
    async readiness() {
      const reasons: string[] = [];
      if (!(await backfillDone().catch(() => false))) reasons.push("the indexer has not finished its backfill");
      for (const state of states.values()) {
        if (state.state === "stalled") reasons.push(`chain ${state.chainId}: index stalled at block ${state.indexedBlock} (head ${state.headBlock})`);
        else if (state.state === "unknown") reasons.push(`chain ${state.chainId}: index position not known yet`);
        else if (state.headBlock !== null && state.indexedBlock !== null && state.headBlock - state.indexedBlock > BigInt(options.maxLagBlocks)) {
          reasons.push(`chain ${state.chainId}: index behind by ${state.headBlock - state.indexedBlock} blocks (indexed ${state.indexedBlock}, head ${state.headBlock})`);
        }
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
    async indexedTimes() {
      // The latest checkpoint, even while recovering: a statement can only contain what is indexed anyway.
      return new Map((await readCheckpoints()).map((row) => [row.chainId, decode(row.latest).time]));
    },
    check,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
