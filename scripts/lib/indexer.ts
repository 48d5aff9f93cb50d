/**
 * Which database schema the indexer uses, and when local indexed data is thrown away.
 *
 * Ponder refuses a schema written by a different build of the indexer ("previously used by a different Ponder
 * app"), and indexed rows of a local chain mean nothing once that chain is restarted (a fresh Hardhat node
 * deploys the same addresses at the same blocks, so only block hashes tell the chains apart). The schema name
 * is therefore derived from both: the indexer's sources and deployments, and the hash of each chain's
 * deployment block. Same code + same chain → same schema, and Ponder resumes where it stopped; anything else
 * → a new schema, indexed from the deployment blocks. On PGlite the directory holds nothing else worth
 * keeping, so it is emptied when the schema changes.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import type { PublicClient } from "viem";
import type { Deployment } from "../../contracts/addresses";
import { readJson, ROOT, writeJson } from "./stack-files";


/** Files whose content changes what Ponder indexes (its build id covers the same ground). */
function indexerSources(): string[] {
  const handlers = readdirSync(path.join(ROOT, "indexer", "src"))
    .filter((name) => name.endsWith(".ts"))
    .map((name) => path.join("indexer", "src", name));
  return ["indexer/ponder.config.ts", "indexer/ponder.schema.ts", "contracts/chains.ts", "contracts/abi.ts", ...handlers.sort()];
}

export interface IndexedChain {
  id: number;
  client: PublicClient;
  deployment: Deployment;
}

/** `cb_<10 hex>`: a fingerprint of the indexer's sources, the Ponder version, and each chain's identity. */
export async function indexerSchemaName(chains: IndexedChain[]): Promise<string> {
  const hash = createHash("sha256");
  hash.update(JSON.parse(readFileSync(path.join(ROOT, "node_modules", "ponder", "package.json"), "utf8")).version);
  for (const file of indexerSources()) hash.update(file).update(readFileSync(path.join(ROOT, file)));
  for (const chain of chains) {
    const escrow = chain.deployment.contracts.BillingEscrow;
    const block = await chain.client.getBlock({ blockNumber: BigInt(escrow.blockNumber) });
    hash.update(JSON.stringify({ id: chain.id, contracts: chain.deployment.contracts, deploymentBlock: block.hash }));
  }
  return `cb_${hash.digest("hex").slice(0, 10)}`;
}

/**
 * Records the schema in `<dataDir>/indexer.json`; when it differs from the last run and the indexer is on
 * PGlite, empties the PGlite directory first. Returns what happened, for the progress output.
 */
export function prepareIndexerData(options: { dataDir: string; pgliteDir: string; schema: string; postgres: boolean }): "new" | "resumed" | "reset" {
  const stateFile = path.join(options.dataDir, "indexer.json");
  const previous = readJson<{ schema?: string }>(stateFile)?.schema;
  const hasData = options.postgres || existsSync(options.pgliteDir);
  let outcome: "new" | "resumed" | "reset" = previous === options.schema && hasData ? "resumed" : "new";
  if (previous !== options.schema && !options.postgres && existsSync(options.pgliteDir)) {
    rmSync(options.pgliteDir, { recursive: true, force: true });
    outcome = "reset";
  }
  writeJson(stateFile, { schema: options.schema, updatedAt: new Date().toISOString() });
  return outcome;
}

/** The API's `/status`: the latest indexed block per chain. */
export async function indexedBlocks(apiUrl: string): Promise<Map<number, bigint>> {
  const response = await fetch(`${apiUrl}/status`);
  if (!response.ok) throw new Error(`GET /status answered ${response.status}`);
  const status = (await response.json()) as { chains: { chainId: number; indexedBlock: number | null }[] };
  return new Map(status.chains.map((chain) => [chain.chainId, BigInt(chain.indexedBlock ?? -1)]));
}

/**
 * Waits until the indexer has caught up with every chain: Ponder is ready (backfill done) and has indexed a
 * block that was mined after this call began. The API answers before that, and after a restart Ponder rolls
 * back to the last finalized block and re-indexes while `/status` still shows the block it had reached, so
 * neither the API being up nor `/status` alone means the indexed data is current. Ponder follows new blocks:
 * local chains get one empty block (a single evm_mine, which Ponder follows safely; re-sent every few seconds
 * while it lags); other chains produce their own.
 */
export async function waitUntilIndexed(
  apiUrl: string,
  chains: { id: number; client: PublicClient; local: boolean }[],
  timeoutMs = 120_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
  while (!(await fetch(`${apiUrl}/ready`).then((response) => response.ok, () => false))) {
    if (Date.now() > deadline) throw new Error("Timed out waiting for the indexer to be ready (GET /ready)");
    await sleep(200);
  }
  const targets = new Map<number, bigint>();
  for (const chain of chains) targets.set(chain.id, (await chain.client.getBlockNumber({ cacheTime: 0 })) + 1n);
  let nudgedAt = 0;
  for (;;) {
    const indexed = await indexedBlocks(apiUrl).catch(() => new Map<number, bigint>());
    const behind = chains.filter((chain) => (indexed.get(chain.id) ?? -1n) < targets.get(chain.id)!);
    if (behind.length === 0) return;
    if (Date.now() > deadline) {
      const state = behind.map((chain) => `chain ${chain.id}: indexed ${indexed.get(chain.id) ?? "nothing"}, waiting for ${targets.get(chain.id)}`);
      throw new Error(`Timed out waiting for the indexer to catch up (${state.join(", ")})`);
    }
    if (Date.now() - nudgedAt > 5_000) {
      nudgedAt = Date.now();
      for (const chain of behind.filter((candidate) => candidate.local)) {
        await chain.client.request({ method: "evm_mine" as never, params: [] as never });
      }
    }
    await sleep(100);
  }
}
