/**
 * How a payer pays an invoice on an EVM chain: the signed terms, the EIP-712 typed data (JSON-safe), and the
 * transactions to send, in order, from the paying wallet, plus an EIP-681 URI for wallets that scan QR codes.
 */
import { encodeFunctionData, erc20Abi, getAddress, zeroAddress, type Address, type Hex } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { billingEscrowDomain, invoiceFromJson, invoiceToJson, invoiceTypes, type Invoice, type InvoiceJson } from "../../contracts/invoice";
import type { invoices } from "../store/schema";

type InvoiceRow = typeof invoices.$inferSelect;

/** The signed terms with integers as decimal strings (uint64/uint256 do not fit a JSON number). */
export type InvoiceTermsJson = InvoiceJson;
export { invoiceFromJson as termsFromJson, invoiceToJson as termsJson };

export interface PaymentTransaction {
  description: string;
  to: Address;
  data: Hex;
  /** Wei to send with the transaction, as a decimal string. */
  value: string;
  /** EIP-681 link of this transaction, for a wallet that scans or opens links. */
  uri: string;
}

export interface EvmPaymentInstructions {
  chainId: number;
  contract: Address;
  invoiceKey: Hex;
  invoice: InvoiceTermsJson;
  typedData: {
    domain: { name: string; version: string; chainId: number; verifyingContract: Address };
    types: Record<string, { name: string; type: string }[]>;
    primaryType: "Invoice";
    message: InvoiceTermsJson;
  };
  signature: Hex;
  transactions: PaymentTransaction[];
  uri: string;
  /**
   * The invoice's own address (CREATE2 by the escrow): send exactly the amount there with a plain transfer, from
   * any wallet or exchange; the service sweeps it into the escrow. Null on a deployment without deposit addresses.
   */
  depositAddress: Address | null;
  /** EIP-681 link of that plain transfer (ERC-20 `transfer` or an ETH value transfer), for a QR code. */
  depositUri: string | null;
}

/** The signed terms of a stored invoice. */
export function termsOf(row: InvoiceRow): Invoice {
  return {
    merchantId: row.onchainMerchantId,
    invoiceId: row.invoiceRef as Hex,
    token: row.token as Address,
    amount: BigInt(row.amount),
    payer: row.payer as Address,
    arbiter: row.arbiter as Address,
    expiresAt: row.expiresAt,
    holdDuration: row.holdDuration,
    fulfillBy: row.fulfillBy,
    maxFeeBps: row.maxFeeBps,
    detailsHash: row.detailsHash as Hex,
  };
}



const EIP712_DOMAIN_TYPE = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
] as const;

/**
 * EIP-681 links, one per transaction, for QR codes and deep links. A token invoice needs two transactions, so
 * a customer scans both links in order (a single link can only be the approval, which pays nothing).
 *
 * - ERC-20 approval: `ethereum:<token>@<chainId>/approve?address=<escrow>&uint256=<amount>`, the standard form.
 * - Payment (`pay` takes a tuple, which EIP-681's function syntax cannot express): `ethereum:<escrow>@<chainId>
 *   ?value=<wei>&data=<calldata>`. `value` is standard; `data` is the de-facto parameter wallets that accept raw
 *   calldata understand. A wallet that ignores `data` would send plain ETH (or nothing) to the escrow, which
 *   has no `receive` function: that transaction reverts and no money moves, so the link is safe either way.
 */
function approveUri(chainId: number, token: Address, escrow: Address, amount: bigint): string {
  return `ethereum:${token}@${chainId}/approve?address=${escrow}&uint256=${amount.toString()}`;
}

function callUri(chainId: number, to: Address, value: bigint, data: Hex): string {
  return `ethereum:${to}@${chainId}?value=${value.toString()}&data=${data}`;
}

/**
 * A plain transfer to the deposit address: `ethereum:<token>@<chainId>/transfer?address=<deposit>&uint256=<amount>`
 * for an ERC-20 (EIP-681's own example), `ethereum:<deposit>@<chainId>?value=<wei>` for ETH. Amounts in base
 * units, as EIP-681 requires.
 */
export function depositTransferUri(chainId: number, token: Address, deposit: Address, amount: bigint): string {
  if (token === zeroAddress) return `ethereum:${deposit}@${chainId}?value=${amount.toString()}`;
  return `ethereum:${token}@${chainId}/transfer?address=${deposit}&uint256=${amount.toString()}`;
}

export function paymentInstructions(row: InvoiceRow, amountText: string, currency: string): EvmPaymentInstructions {
  const terms = termsOf(row);
  const escrow = row.escrowAddress as Address;
  const signature = row.signature as Hex;
  const json = invoiceToJson(terms);
  const deposit = row.depositAddress ? getAddress(row.depositAddress) : null;
  const domain = billingEscrowDomain(row.chainId, escrow);
  const payData = encodeFunctionData({ abi: billingEscrowAbi, functionName: "pay", args: [terms, signature] });
  const transactions: PaymentTransaction[] = [];
  const isNative = terms.token === zeroAddress;
  if (!isNative) {
    transactions.push({
      description: `Step 1 of 2: approve the escrow to take ${amountText} ${currency} (skip this if the paying wallet's allowance for the escrow already covers it).`,
      to: terms.token,
      data: encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [escrow, terms.amount] }),
      value: "0",
      uri: approveUri(row.chainId, terms.token, escrow, terms.amount),
    });
  }
  const payValue = isNative ? terms.amount : 0n;
  transactions.push({
    description: isNative
      ? `Pay ${amountText} ${currency} into the escrow.`
      : `Step 2 of 2: pay the invoice: the escrow takes ${amountText} ${currency} from the paying wallet.`,
    to: escrow,
    data: payData,
    value: payValue.toString(),
    uri: callUri(row.chainId, escrow, payValue, payData),
  });
  return {
    chainId: row.chainId,
    contract: escrow,
    invoiceKey: row.invoiceKey as Hex,
    invoice: json,
    typedData: {
      domain: { name: domain.name, version: domain.version, chainId: row.chainId, verifyingContract: escrow },
      types: { EIP712Domain: EIP712_DOMAIN_TYPE.map((field) => ({ ...field })), Invoice: invoiceTypes.Invoice.map((field) => ({ ...field })) },
      primaryType: "Invoice",
      message: json,
    },
    signature,
    transactions,
    uri: transactions[0].uri,
    depositAddress: deposit,
    depositUri: deposit ? depositTransferUri(row.chainId, getAddress(terms.token), deposit, terms.amount) : null,
  };
}
