/**
 * The customer's view of an invoice for the hosted checkout (checkout/src/types.ts): read by id alone (the id is
 * the capability, as in a Stripe Checkout URL), projected from the same invoice view the merchant's API answers,
 * so the checkout never shows a state the chain has not shown. Merchant ids, metadata, customer details and
 * keys stay out.
 */
import { eq } from "drizzle-orm";
import * as viemChains from "viem/chains";
import type { CheckoutChain, CheckoutPrice, CheckoutView } from "../../checkout/src/types";
import { loadBtcInvoiceById, viewBtcInvoices } from "../bitcoin/invoices";
import { chainNow } from "../clock";
import type { ApiDeps } from "../env";
import { viewInvoice } from "../invoices/view";
import type { InvoiceView } from "../invoices/schemas";
import { formatAmount } from "../money";
import { problem } from "../problems";
import { invoices, merchants, type CheckoutFields, type InvoicePrice } from "../store/schema";

const MAX_ID_LENGTH = 64;
const ID_PATTERN = /^inv_[A-Za-z0-9_-]{8,48}$/;

const KNOWN_CHAINS = (Object.values(viemChains) as unknown[]).filter((value): value is viemChains.Chain => typeof value === "object" && value !== null && "id" in value && "name" in value);

/** Name and explorer of an EVM chain (viem's chain list); a local chain has no explorer. */
export function evmChainInfo(chainId: number): CheckoutChain {
  const known = KNOWN_CHAINS.find((chain) => chain.id === chainId);
  const local = chainId === 31337 || chainId === 31338 || chainId === 1337;
  return {
    id: chainId,
    network: `eip155:${chainId}`,
    name: local ? `Local chain ${chainId}` : (known?.name ?? `Chain ${chainId}`),
    explorer: local ? null : (known?.blockExplorers?.default.url ?? null),
  };
}

const BITCOIN_EXPLORERS: Record<string, { name: string; explorer: string | null }> = {
  "bip122:000000000019d6689c085ae165831e93": { name: "Bitcoin", explorer: "https://mempool.space" },
  "bip122:000000000933ea01ad0ee984209779ba": { name: "Bitcoin testnet", explorer: "https://mempool.space/testnet" },
  "bip122:00000008819873e925422c1ff0f99f7c": { name: "Bitcoin signet", explorer: "https://mempool.space/signet" },
};

function bitcoinChainInfo(network: string): CheckoutChain {
  const known = BITCOIN_EXPLORERS[network];
  return { id: null, network, name: known?.name ?? "Bitcoin regtest", explorer: known?.explorer ?? null };
}

function priceView(price: InvoicePrice | null | undefined): CheckoutPrice | null {
  if (!price) return null;
  return {
    fiatCurrency: price.fiatCurrency,
    fiatAmount: price.fiatAmount ?? null,
    rate: price.rate,
    source: price.source,
    observedAt: new Date(price.observedAt * 1000).toISOString(),
    lockedUntil: price.lockedUntil ? new Date(price.lockedUntil * 1000).toISOString() : null,
  };
}

/** Only http(s) URLs leave the server as return links (a stored value is never trusted to be one). */
function safeUrl(url: string | undefined): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.toString() : null;
  } catch {
    return null;
  }
}

/** Projects the merchant's invoice view to what the customer sees. */
export function checkoutView(
  view: InvoiceView,
  extra: { merchantName: string; price: InvoicePrice | null | undefined; checkout: CheckoutFields | null | undefined; now: bigint; indexed: { block: number | null; at: string | null } },
): CheckoutView {
  const evm = view.payment.evm ?? null;
  const btc = view.payment.btc ?? null;
  const chain = evm ? evmChainInfo(evm.chainId) : bitcoinChainInfo(view.network);
  const paidTransaction = view.paidTransaction ?? view.bitcoin?.payments.find((output) => output.status !== "removed")?.txid ?? null;
  const paidStatuses = new Set(["paid", "overpaid", "released", "refunded", "partially_refunded", "disputed"]);
  let transfer: CheckoutView["transfer"] = null;
  if (evm?.depositAddress && evm.depositUri) {
    transfer = {
      address: evm.depositAddress,
      uri: evm.depositUri,
      receivedAmount: view.deposit?.waitingAmount ?? "0",
      dueAmount: view.deposit?.dueAmount ?? "0",
    };
  } else if (btc) {
    const decimals = view.decimals;
    transfer = {
      address: btc.address,
      uri: btc.uri,
      receivedAmount: formatAmount(BigInt(view.bitcoin?.receivedSats ?? "0"), decimals),
      dueAmount: formatAmount(BigInt(view.bitcoin?.dueSats ?? "0"), decimals),
    };
  }
  const explorerUrl = (hash: string | null) => {
    if (!hash || !chain.explorer) return null;
    return `${chain.explorer.replace(/\/$/, "")}/tx/${hash}`;
  };
  return {
    id: view.id,
    merchant: { name: extra.merchantName },
    description: view.description,
    lineItems: view.lineItems,
    amount: view.amount,
    amountBaseUnits: view.amountBaseUnits,
    currency: view.currency,
    decimals: view.decimals,
    chain,
    status: view.status as CheckoutView["status"],
    expiresAt: view.expiresAt,
    now: new Date(Number(extra.now) * 1000).toISOString(),
    price: priceView(extra.price),
    evm: evm
      ? {
          chainId: evm.chainId,
          contract: evm.contract,
          invoiceKey: evm.invoiceKey,
          invoice: evm.invoice as unknown as Record<string, string>,
          signature: evm.signature,
          typedData: evm.typedData,
          transactions: evm.transactions,
          uri: evm.uri,
          depositAddress: evm.depositAddress,
          depositUri: evm.depositUri,
        }
      : null,
    transfer,
    paid: paidStatuses.has(view.status)
      ? {
          transaction: paidTransaction,
          explorerUrl: explorerUrl(paidTransaction),
          at: view.paidAt,
          confirmations: view.confirmations,
          confirmationsRequired: view.confirmationsRequired,
        }
      : null,
    refundedAmount: view.refundedAmount,
    successUrl: safeUrl(extra.checkout?.successUrl),
    cancelUrl: safeUrl(extra.checkout?.cancelUrl),
    indexed: extra.indexed,
  };
}

/** The customer's view of invoice `id` (EVM or BTC), or a 404 problem. */
export async function loadCheckoutView(deps: ApiDeps, id: string): Promise<CheckoutView> {
  if (id.length > MAX_ID_LENGTH || !ID_PATTERN.test(id)) throw problem.notFound(`Invoice ${id.slice(0, MAX_ID_LENGTH)}`);
  const db = deps.store.db;
  const [row] = await db.select().from(invoices).where(eq(invoices.id, id)).limit(1);
  if (row) {
    const [merchant] = await db.select({ name: merchants.name, confirmationPolicy: merchants.confirmationPolicy }).from(merchants).where(eq(merchants.id, row.merchantId)).limit(1);
    const view = await viewInvoice(deps, row, merchant);
    const freshness = deps.freshness.snapshot().find((chain) => chain.chainId === row.chainId);
    const now = await chainNow(deps.chains.get(row.chainId));
    return checkoutView(view, {
      merchantName: merchant?.name ?? "",
      price: row.price,
      checkout: row.checkout,
      now,
      indexed: {
        block: freshness?.indexedBlock === null || freshness?.indexedBlock === undefined ? null : Number(freshness.indexedBlock),
        at: freshness?.indexedBlockTime ? new Date(Number(freshness.indexedBlockTime) * 1000).toISOString() : null,
      },
    });
  }
  const btc = await loadBtcInvoiceById(db, id);
  if (!btc) throw problem.notFound(`Invoice ${id}`);
  const [merchant] = await db.select({ name: merchants.name }).from(merchants).where(eq(merchants.id, btc.merchantId)).limit(1);
  const view = (await viewBtcInvoices(db, { name: merchant?.name ?? "" }, [btc])).get(id)!;
  return checkoutView(view, {
    merchantName: merchant?.name ?? "",
    price: btc.price,
    checkout: btc.checkout,
    now: BigInt(Math.floor(Date.now() / 1000)),
    indexed: { block: view.bitcoin?.indexedHeight ?? null, at: null },
  });
}
