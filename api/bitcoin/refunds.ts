/**
 * Refunds of BTC invoices. The money is in the merchant's wallet, so chainbill cannot send it back itself: it
 * builds an unsigned PSBT (api/bitcoin/refund.ts) spending the invoice's confirmed outputs to the customer's
 * refund address, records it, and the watcher recognises the signed transaction when it appears (by its txid,
 * or any transaction spending the same outputs to the same address, e.g. after a fee bump).
 */
import { eq } from "drizzle-orm";
import { newId } from "../auth";
import type { ApiDeps, MerchantRecord } from "../env";
import type { Remember, RememberedResponse } from "../idempotency";
import { AMOUNT_ERROR_MESSAGES, parseAmount } from "../money";
import { problem, ProblemError } from "../problems";
import type { StoreDb } from "../store";
import { btcInvoices, btcRefunds, btcWallets } from "../store/schema";
import { btcRecords, BTC_DECIMALS, viewBtcInvoices, type BtcInvoiceRow } from "./invoices";
import type { BitcoinNetwork } from "./keys";
import { buildRefundPsbt, RefundError, type RefundInput } from "./refund";
import { validateAddress } from "./refund-address";
import { walletKey } from "./wallets";

const FEE_TARGET_BLOCKS = 6;

export async function setRefundAddress(db: StoreDb, network: BitcoinNetwork, row: BtcInvoiceRow, address: string): Promise<BtcInvoiceRow> {
  const checked = validateAddress(address, network);
  if (checked.error) throw problem.validation([{ field: "address", message: checked.error }]);
  const [updated] = await db.update(btcInvoices).set({ refundAddress: address }).where(eq(btcInvoices.id, row.id)).returning();
  return updated;
}

export interface RefundRequest {
  address?: string;
  amount?: string;
  feeRate?: number;
}

export async function refundBtcInvoice(deps: ApiDeps, merchant: MerchantRecord, row: BtcInvoiceRow, body: RefundRequest, remember: Remember | undefined): Promise<RememberedResponse> {
  const network = row.network as BitcoinNetwork;
  const destination = body.address ?? row.refundAddress;
  if (!destination) {
    throw problem.conflict("refund-address-missing", "This invoice has no refund address: send `address`, or set it with PUT /v1/invoices/{id}/refund-address.");
  }
  const checked = validateAddress(destination, network);
  if (checked.error) throw problem.validation([{ field: body.address !== undefined ? "address" : "refundAddress", message: checked.error }]);
  let amountSats: bigint | undefined;
  if (body.amount !== undefined) {
    const parsed = parseAmount(body.amount, BTC_DECIMALS);
    if (!parsed.ok) throw problem.validation([{ field: "amount", message: AMOUNT_ERROR_MESSAGES[parsed.error](BTC_DECIMALS) }]);
    amountSats = parsed.value;
  }

  const records = (await btcRecords(deps.store.db, [row.id])).get(row.id)!;
  const spent = new Set(records.refunds.filter((refund) => refund.seenTxid !== null).flatMap((refund) => refund.inputs));
  const inputs: RefundInput[] = records.payments
    .filter((payment) => payment.removedAt === null && payment.blockHeight !== null && !spent.has(`${payment.txid}:${payment.vout}`))
    .map((payment) => ({ txid: payment.txid, vout: payment.vout, amountSats: payment.amountSats, script: row.script, addressIndex: row.addressIndex }));
  if (inputs.length === 0) {
    const unconfirmed = records.payments.some((payment) => payment.removedAt === null && payment.blockHeight === null);
    throw problem.conflict(
      unconfirmed ? "invoice-not-paid" : "invoice-not-refundable",
      unconfirmed
        ? "What this invoice received is not confirmed yet: a refund can spend it once it is mined. Retry after the next block."
        : "Nothing this invoice received is left to refund (nothing arrived, or earlier refunds spent it).",
    );
  }

  const [wallet] = await deps.store.db.select().from(btcWallets).where(eq(btcWallets.id, row.walletId));
  let feeRate = body.feeRate;
  if (feeRate === undefined) {
    const source = deps.bitcoin?.source;
    if (!source) throw new ProblemError("bitcoin-source-unavailable", "No Bitcoin chain source is running in this process: pass `feeRate` (sat/vB).");
    // Quiet networks estimate below 1 sat/vB, which nodes do not relay.
    feeRate = await source.feeRate(FEE_TARGET_BLOCKS).then((rate) => Math.max(1, rate)).catch(() => {
      throw new ProblemError("bitcoin-source-unavailable", `The chain source (${source.name}) did not answer a fee estimate: retry, or pass \`feeRate\` (sat/vB).`);
    });
  }
  let plan;
  try {
    plan = buildRefundPsbt(walletKey(wallet), inputs, destination, { feeRate, amountSats, changeIndex: row.addressIndex });
  } catch (error) {
    if (!(error instanceof RefundError)) throw error;
    const field = error.code === "bad-address" || error.code === "wrong-network" ? "address" : error.code === "bad-fee-rate" ? "feeRate" : "amount";
    if (field === "amount" && error.code !== "amount-too-small" && error.code !== "insufficient-funds" && error.code !== "bad-amount") throw error;
    throw problem.validation([{ field, message: error.message }]);
  }

  return deps.store.db.transaction(async (tx) => {
    if (body.address !== undefined && row.refundAddress === null) await tx.update(btcInvoices).set({ refundAddress: body.address }).where(eq(btcInvoices.id, row.id));
    const id = newId("btcr");
    await tx.insert(btcRefunds).values({
      id,
      invoiceId: row.id,
      merchantId: merchant.id,
      destination,
      destinationScript: checked.script!,
      amountSats: plan.amountSats,
      feeSats: plan.feeSats,
      txid: plan.txid,
      inputs: plan.inputs.map((input) => `${input.txid}:${input.vout}`),
      psbt: plan.psbt,
    });
    const [current] = await tx.select().from(btcInvoices).where(eq(btcInvoices.id, row.id));
    const view = (await viewBtcInvoices(tx as unknown as StoreDb, merchant, [current])).get(row.id)!;
    const response = {
      status: 201,
      body: JSON.stringify({
        refundId: id,
        psbt: plan.psbt,
        txid: plan.txid,
        destination,
        amountSats: plan.amountSats.toString(),
        feeSats: plan.feeSats.toString(),
        feeRate,
        vsize: plan.vsize,
        changeSats: plan.changeSats.toString(),
        changeAddress: plan.changeAddress,
        invoice: view,
      }),
    };
    await remember?.(tx, response);
    deps.bitcoin?.watcher.refresh();
    return response;
  });
}
