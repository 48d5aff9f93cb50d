/**
 * A merchant's Bitcoin account and the addresses handed out from it.
 *
 * The account is an account-level public key (xpub/zpub/tpub/vpub or a `wpkh()`/`tr()` descriptor), checked by
 * api/bitcoin/keys.ts and stored as its canonical public descriptor: a private key is refused before anything
 * is stored or logged. Each invoice gets the next receive address `0/i`, keeping within the gap limit (never
 * more than `gapLimit` addresses in a row with nothing received, so a wallet restoring the key finds every
 * payment); an expired invoice's address goes to a new invoice only if nothing ever arrived on it, and only
 * `addressReuseAfterSeconds` after it expired (a customer paying a little late still reaches the right invoice).
 */
import { and, asc, desc, eq, isNull, sql } from "drizzle-orm";
import { newId } from "../auth";
import type { BitcoinConfig } from "../config";
import { problem } from "../problems";
import type { StoreDb } from "../store";
import { btcAddresses, btcInvoices, btcWallets } from "../store/schema";
import { receiveAddress, type ReceiveAddress } from "./addresses";
import { BitcoinKeyError, parseAccountKey, type AccountKey, type BitcoinNetwork, type ScriptType } from "./keys";

export type WalletRow = typeof btcWallets.$inferSelect;
type Tx = Parameters<Parameters<StoreDb["transaction"]>[0]>[0];

/** CAIP-2 chain ids of the Bitcoin networks (`bip122:` and the genesis block hash's first 32 hex digits). */
export const CAIP2: Record<BitcoinNetwork, string> = {
  mainnet: "bip122:000000000019d6689c085ae165831e93",
  testnet: "bip122:000000000933ea01ad0ee984209779ba",
  signet: "bip122:00000008819873e925422c1ff0f99f7c",
  regtest: "bip122:0f9188f13cb7b2c71f2a335e3a4fc328",
};

export const CONFIRMATION_CHOICES = [0, 1, 2, 6] as const;
export const DEFAULT_GAP_LIMIT = 20;

/** The account key a stored wallet stands for (its descriptor was checked when registered). */
export function walletKey(wallet: WalletRow): AccountKey {
  return parseAccountKey(wallet.descriptor, wallet.network as BitcoinNetwork);
}

export async function activeWallet(db: Pick<StoreDb, "select">, merchantId: string): Promise<WalletRow | undefined> {
  const [row] = await db
    .select()
    .from(btcWallets)
    .where(and(eq(btcWallets.merchantId, merchantId), isNull(btcWallets.retiredAt)))
    .limit(1);
  return row;
}

export interface WalletInput {
  key: string;
  script?: ScriptType;
  gapLimit?: number;
  confirmations?: number;
}

/**
 * Registers (or replaces) the merchant's account. The same key again only updates the settings; another key
 * retires the old account, whose addresses stay watched for the invoices already given them.
 */
export async function registerWallet(db: StoreDb, config: BitcoinConfig, merchantId: string, input: WalletInput): Promise<WalletRow> {
  let key: AccountKey;
  try {
    key = parseAccountKey(input.key, config.network, input.script ? { script: input.script } : {});
  } catch (error) {
    if (error instanceof BitcoinKeyError) throw problem.validation([{ field: "key", message: error.message }]);
    throw error;
  }
  return db.transaction(async (tx) => {
    await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`btc-wallet:${merchantId}`}))`);
    // An address must name one invoice of one merchant: an account another merchant registered is refused.
    const [taken] = await tx
      .select({ id: btcWallets.id })
      .from(btcWallets)
      .where(and(eq(btcWallets.descriptor, key.descriptor), sql`${btcWallets.merchantId} <> ${merchantId}`))
      .limit(1);
    if (taken) {
      throw problem.validation([{ field: "key", message: "is registered by another merchant: each Bitcoin account can belong to one merchant, so that every address identifies one invoice. Use another account of your wallet" }]);
    }
    const current = await activeWallet(tx, merchantId);
    const settings = {
      gapLimit: input.gapLimit ?? current?.gapLimit ?? DEFAULT_GAP_LIMIT,
      confirmations: input.confirmations ?? current?.confirmations ?? 1,
    };
    if (current && current.descriptor === key.descriptor) {
      const [updated] = await tx.update(btcWallets).set(settings).where(eq(btcWallets.id, current.id)).returning();
      return updated;
    }
    if (current) await tx.update(btcWallets).set({ retiredAt: new Date() }).where(eq(btcWallets.id, current.id));
    const [created] = await tx
      .insert(btcWallets)
      .values({ id: newId("btcw"), merchantId, network: key.network, script: key.script, descriptor: key.descriptor, ...settings })
      .returning();
    return created;
  });
}

/**
 * The address for a new invoice of `wallet`, recorded as given to `invoiceId`: an expired, never-paid one if
 * any, else the next index within the gap limit (else a 409 saying what to do).
 */
export async function allocateAddress(tx: Tx, wallet: WalletRow, invoiceId: string, nowSeconds: bigint, reuseAfterSeconds: number): Promise<ReceiveAddress> {
  await tx.execute(sql`SELECT pg_advisory_xact_lock(hashtext(${`btc-wallet:${wallet.merchantId}`}))`);
  const [reusable] = await tx
    .select({ index: btcAddresses.index, address: btcAddresses.address, script: btcAddresses.script })
    .from(btcAddresses)
    .innerJoin(btcInvoices, eq(btcInvoices.id, btcAddresses.invoiceId))
    .where(
      and(
        eq(btcAddresses.walletId, wallet.id),
        isNull(btcAddresses.receivedAt),
        sql`${btcInvoices.expiresAt} + ${reuseAfterSeconds} <= ${nowSeconds}`,
        // Nothing may have arrived even in a payment later replaced: the watcher sets received_at on first sight.
        sql`NOT EXISTS (SELECT 1 FROM chainbill_api.btc_payments p WHERE p.invoice_id = ${btcInvoices.id})`,
      ),
    )
    .orderBy(asc(btcAddresses.index))
    .limit(1);
  if (reusable) {
    await tx.update(btcAddresses).set({ invoiceId }).where(and(eq(btcAddresses.walletId, wallet.id), eq(btcAddresses.index, reusable.index)));
    return reusable;
  }
  const [last] = await tx.select({ index: btcAddresses.index }).from(btcAddresses).where(eq(btcAddresses.walletId, wallet.id)).orderBy(desc(btcAddresses.index)).limit(1);
  const [lastReceived] = await tx
    .select({ index: btcAddresses.index })
    .from(btcAddresses)
    .where(and(eq(btcAddresses.walletId, wallet.id), sql`${btcAddresses.receivedAt} IS NOT NULL`))
    .orderBy(desc(btcAddresses.index))
    .limit(1);
  const next = last ? last.index + 1 : 0;
  const lastUsed = lastReceived ? lastReceived.index : -1;
  if (next > lastUsed + wallet.gapLimit) {
    throw problem.conflict(
      "bitcoin-gap-limit",
      `${wallet.gapLimit} addresses in a row are waiting for a payment: a wallet restoring your key stops looking after ${wallet.gapLimit} unused addresses, so a further one could hide a payment from it. ` +
        `Wait until an open invoice is paid or an expired one's address can be reused, or raise the gap limit (PUT /v1/merchants/me/bitcoin {"gapLimit": …}) and in your wallet too.`,
      { gapLimit: wallet.gapLimit },
    );
  }
  const address = receiveAddress(walletKey(wallet), next);
  await tx.insert(btcAddresses).values({ walletId: wallet.id, index: next, address: address.address, script: address.script, invoiceId });
  return address;
}
