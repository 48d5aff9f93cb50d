/**
 * Fixtures for statement tests: ledger rows as the indexer writes them, a scope (one chain and token of a
 * merchant), invoices stored in the real API store, and an in-memory stand-in for the indexed reader's ledger
 * queries (keyset pages in `(timestamp, id)` order, as api/indexed.ts reads them), recording every call.
 */
import type { Address } from "viem";
import type { ApiDeps } from "../../../api/env";
import type { LedgerCursor, LedgerEntry, LedgerKindTotal, OnchainMerchant } from "../../../api/indexed";
import type { StatementScope } from "../../../api/statements/ledger";
import type { Store } from "../../../api/store";
import { invoices } from "../../../api/store/schema";
import type { TokenInfo } from "../../../api/tokens";
import { recordingLogger } from "./logger";

export const USDC: TokenInfo = { symbol: "USDC", address: "0x00000000000000000000000000000000000000aa", decimals: 6 };

export function scopeOf(chainId: number, merchantId: bigint, token: TokenInfo = USDC): StatementScope {
  return { chain: { id: chainId }, owner: { chainId, merchantId }, record: {}, token } as unknown as StatementScope;
}

export function ledgerRow(overrides: Partial<LedgerEntry> & { id: string }): LedgerEntry {
  return {
    chainId: 31337,
    merchantId: 1n,
    counterparty: "0x00000000000000000000000000000000000000cc",
    token: USDC.address,
    amount: 25_000_000n,
    kind: "payment",
    reference: "0x" + "ab".repeat(32),
    timestamp: 1_767_225_600n, // 2026-01-01T00:00:00Z
    blockNumber: 10n,
    transactionHash: "0x" + "11".repeat(32),
    logIndex: 0,
    ...overrides,
  } as LedgerEntry;
}

export interface LedgerCall {
  method: "ledgerPage" | "ledgerBalance" | "ledgerTotals";
  owner: OnchainMerchant;
  token: Address;
  from: bigint;
  to?: bigint;
  limit?: number;
  cursor?: LedgerCursor;
}

export function fakeLedger(rowsByToken: Map<string, LedgerEntry[]>, extra: { balance?: bigint; totals?: LedgerKindTotal[]; fail?: Error } = {}) {
  const calls: LedgerCall[] = [];
  const after = (row: LedgerEntry, cursor?: LedgerCursor) =>
    !cursor || row.timestamp > cursor.timestamp || (row.timestamp === cursor.timestamp && row.id > cursor.id);
  const indexed = {
    async ledgerPage(owner: OnchainMerchant, token: Address, from: bigint, to: bigint, limit: number, cursor?: LedgerCursor) {
      calls.push({ method: "ledgerPage", owner, token, from, to, limit, cursor });
      if (extra.fail) throw extra.fail;
      const rows = [...(rowsByToken.get(`${owner.chainId}:${token}`) ?? [])].sort((a, b) =>
        a.timestamp === b.timestamp ? (a.id < b.id ? -1 : 1) : a.timestamp < b.timestamp ? -1 : 1,
      );
      return rows.filter((row) => row.timestamp >= from && row.timestamp < to && after(row, cursor)).slice(0, limit);
    },
    async ledgerBalance(owner: OnchainMerchant, token: Address, before: bigint) {
      calls.push({ method: "ledgerBalance", owner, token, from: before });
      return extra.balance ?? 0n;
    },
    async ledgerTotals(owner: OnchainMerchant, token: Address, from: bigint, to: bigint) {
      calls.push({ method: "ledgerTotals", owner, token, from, to });
      return extra.totals ?? [];
    },
  };
  return { indexed, calls };
}

export function depsWith(store: Pick<Store, "db">, indexed: object) {
  const { logger, lines } = recordingLogger();
  const deps = { store, indexed, logger } as unknown as ApiDeps;
  return { deps, lines };
}

let invoiceCounter = 0;

/** Stores an invoice of `merchantId` on `chainId` under `invoiceKey`; returns its API id. */
export async function storeInvoice(store: Store, merchantId: string, chainId: number, invoiceKey: string): Promise<string> {
  invoiceCounter += 1;
  const id = `inv_${merchantId}_${invoiceCounter}`;
  await store.db.insert(invoices).values({
    id,
    merchantId,
    chainId,
    onchainMerchantId: 1n,
    invoiceRef: "0x" + "00".repeat(31) + invoiceCounter.toString(16).padStart(2, "0"),
    invoiceKey,
    escrowAddress: "0x00000000000000000000000000000000000000ee",
    currency: "USDC",
    token: USDC.address,
    decimals: 6,
    amount: "25.00",
    payer: "0x0000000000000000000000000000000000000000",
    arbiter: "0x0000000000000000000000000000000000000000",
    expiresAt: 1_900_000_000n,
    holdDuration: 0,
    fulfillBy: 0n,
    detailsHash: "0x" + "00".repeat(32),
    signature: "0x",
  });
  return id;
}
