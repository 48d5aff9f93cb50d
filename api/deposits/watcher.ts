/**
 * The deposit watcher: what sits at EVM invoices' deposit addresses, read at every new block of each chain.
 *
 * One `eth_call` per chain and block reads every watched address at once (`BalanceReader`, run without being
 * deployed), so the cost does not grow with an RPC call per address. Watched: the invoices with a deposit address
 * that are not paid in the index, until `lookbackSeconds` after their expiry (late money is reported too), and
 * any invoice with money still waiting at its address (a second payment, until it is returned).
 *
 * The reading is the chain's state at the head, so a reorg that removes a transfer simply lowers the next
 * reading. It is stored per invoice (`evm_deposits`) and turns into the statuses `pending` / `underpaid` (see
 * api/invoices/view.ts) and the webhooks `invoice.payment_detected` and `invoice.underpaid`, each once per amount
 * seen (deterministic ids). The keeper sweeps what is enough (api/keeper/work.ts); the sweep is then indexed as the
 * invoice's payment like any other.
 */
import { and, eq, gt, inArray, isNotNull, or, sql } from "drizzle-orm";
import type { Logger } from "pino";
import { decodeAbiParameters, encodeDeployData, getAddress, type Address, type Hex } from "viem";
import { balanceReaderAbi, balanceReaderBytecode } from "../../contracts/abi";
import type { ChainRuntime } from "../chains";
import { chainNow } from "../clock";
import type { IndexedReader } from "../indexed";
import { formatAmount } from "../money";
import type { Store } from "../store";
import { evmDeposits, invoices } from "../store/schema";
import { eventId, recordEvent, type NewEvent } from "../webhooks/events";

type InvoiceRow = typeof invoices.$inferSelect;

/** Addresses read in one call; larger sets are split (a node caps an eth_call's gas). */
const READ_BATCH = 500;
/** Invoices watched per chain and tick, oldest expiry first. */
const WATCH_LIMIT = 5_000;

export interface DepositWatcherOptions {
  store: Store;
  indexed: IndexedReader;
  chains: Map<number, ChainRuntime>;
  logger: Logger;
  /** How often each chain's head is checked. */
  pollMs: number;
  /** Seconds after an invoice's expiry during which its address is still watched (late payments). */
  lookbackSeconds: number;
  /** Called after new events were stored (wakes the webhook worker). */
  onEvents?: () => void;
}

export interface DepositWatcher {
  /** One pass over every chain (tests call it directly). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/** Balances of `accounts` (each in its own token; the zero address is ETH) at `blockNumber`, in one eth_call each batch. */
export async function readBalances(chain: Pick<ChainRuntime, "client">, entries: { token: Address; account: Address }[], blockNumber?: bigint): Promise<bigint[]> {
  const balances: bigint[] = [];
  for (let start = 0; start < entries.length; start += READ_BATCH) {
    const batch = entries.slice(start, start + READ_BATCH);
    const data = encodeDeployData({
      abi: balanceReaderAbi,
      bytecode: balanceReaderBytecode as Hex,
      args: [batch.map((entry) => entry.token), batch.map((entry) => entry.account)],
    });
    const result = await chain.client.call({ data, ...(blockNumber !== undefined ? { blockNumber } : {}) });
    if (!result.data) throw new Error("the balance reader returned nothing");
    const [values] = decodeAbiParameters([{ type: "uint256[]" }], result.data);
    balances.push(...values);
  }
  return balances;
}

export function startDepositWatcher(options: DepositWatcherOptions): DepositWatcher {
  const { store, indexed, chains, logger } = options;
  const db = store.db;
  const lastBlock = new Map<number, bigint>();
  let stopped = false;
  let running: Promise<void> | undefined;

  async function watched(chain: ChainRuntime, now: bigint): Promise<{ rows: InvoiceRow[]; previous: Map<string, bigint> }> {
    const waiting = db
      .select({ id: evmDeposits.invoiceId })
      .from(evmDeposits)
      .where(and(eq(evmDeposits.chainId, chain.id), sql`${evmDeposits.balance} <> '0'`));
    const candidates = await db
      .select()
      .from(invoices)
      .where(
        and(
          eq(invoices.chainId, chain.id),
          isNotNull(invoices.depositAddress),
          or(gt(invoices.expiresAt, now - BigInt(options.lookbackSeconds)), inArray(invoices.id, waiting)),
        ),
      )
      .orderBy(invoices.expiresAt)
      .limit(WATCH_LIMIT);
    if (candidates.length === 0) return { rows: [], previous: new Map() };
    const [paid, readings] = await Promise.all([
      indexed.invoices(chain.id, candidates.map((row) => row.invoiceKey as Hex)),
      db.select().from(evmDeposits).where(inArray(evmDeposits.invoiceId, candidates.map((row) => row.id))),
    ]);
    const previous = new Map(readings.map((row) => [row.invoiceId, BigInt(row.balance)]));
    // A paid invoice is watched only while money still waits at its address (until it is returned).
    const rows = candidates.filter((row) => {
      const record = paid.get(row.invoiceKey.toLowerCase());
      const isPaid = record !== undefined && record.status !== "voided";
      return !isPaid || (previous.get(row.id) ?? 0n) > 0n;
    });
    return { rows, previous };
  }

  function eventsFor(row: InvoiceRow, before: bigint, balance: bigint, block: bigint, at: Date): [string, NewEvent][] {
    if (balance <= before) return [];
    const amount = BigInt(row.amount);
    const format = (value: bigint) => formatAmount(value, row.decimals);
    const due = balance >= amount ? 0n : amount - balance;
    const data = {
      object: "invoice",
      invoiceId: row.id,
      chainId: row.chainId,
      currency: row.currency,
      token: getAddress(row.token),
      invoiceAmount: format(amount),
      invoiceAmountBaseUnits: row.amount,
      customerId: row.customerId,
      metadata: row.metadata ?? {},
      depositAddress: getAddress(row.depositAddress!),
      waitingAmount: format(balance),
      waitingAmountBaseUnits: balance.toString(),
      dueAmount: format(due),
      dueAmountBaseUnits: due.toString(),
      observedBlock: block.toString(),
    };
    const base = { merchantId: row.merchantId, orderKey: row.id, occurredAt: at, chainId: row.chainId, blockNumber: block };
    const events: [string, NewEvent][] = [[eventId("evm-deposit", row.id, "detected", balance), { ...base, type: "invoice.payment_detected", data }]];
    if (due > 0n) events.push([eventId("evm-deposit", row.id, "underpaid", balance), { ...base, type: "invoice.underpaid", data }]);
    return events;
  }

  async function watchChain(chain: ChainRuntime): Promise<void> {
    if (!(await chain.depositsSupported())) return;
    const head = await chain.headBlock();
    if (lastBlock.get(chain.id) === head) return;
    const now = await chainNow(chain);
    const { rows, previous } = await watched(chain, now);
    if (rows.length === 0) {
      lastBlock.set(chain.id, head);
      return;
    }
    const balances = await readBalances(chain, rows.map((row) => ({ token: getAddress(row.token), account: getAddress(row.depositAddress!) })), head);
    const at = new Date(Number(now) * 1000);
    let created = 0;
    await db.transaction(async (tx) => {
      // One writer per chain at a time (several API replicas): the readings and events stay consistent.
      await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`evm-deposits:${chain.id}`}))`);
      for (const [index, row] of rows.entries()) {
        const balance = balances[index];
        const before = previous.get(row.id) ?? 0n;
        if (balance === before) continue;
        await tx
          .insert(evmDeposits)
          .values({ invoiceId: row.id, chainId: chain.id, balance: balance.toString(), block: head })
          .onConflictDoUpdate({ target: evmDeposits.invoiceId, set: { balance: balance.toString(), block: head, updatedAt: new Date() } });
        for (const [id, event] of eventsFor(row, before, balance, head, at)) {
          if (await recordEvent(tx, id, event)) created += 1;
        }
      }
    });
    lastBlock.set(chain.id, head);
    if (created > 0) options.onEvents?.();
  }

  async function tick(): Promise<void> {
    for (const chain of chains.values()) {
      try {
        await watchChain(chain);
      } catch (error) {
        logger.warn({ err: error, chainId: chain.id }, "deposit watcher: could not read deposit addresses (retrying)");
      }
    }
  }

  const loop = async () => {
    while (!stopped) {
      running = tick();
      await running;
      await new Promise((resolve) => setTimeout(resolve, options.pollMs));
    }
  };
  void loop();

  return {
    tick,
    async stop() {
      stopped = true;
      await running;
    },
  };
}
