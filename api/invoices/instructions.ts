/**
 * How a payer pays an invoice on an EVM chain: the signed terms, the EIP-712 typed data (JSON-safe), and the
 * transactions to send, in order, from the paying wallet, plus an EIP-681 URI for wallets that scan QR codes.
 */
import { encodeFunctionData, erc20Abi, zeroAddress, type Address, type Hex } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { billingEscrowDomain, invoiceTypes, type Invoice } from "../../contracts/invoice";
import type { invoices } from "../store/schema";

type InvoiceRow = typeof invoices.$inferSelect;

/** The signed terms with integers as decimal strings (uint64/uint256 do not fit a JSON number). */
export interface InvoiceTermsJson {
  merchantId: string;
  invoiceId: Hex;
  token: Address;
  amount: string;
  payer: Address;
  arbiter: Address;
  expiresAt: string;
  holdDuration: number;
  fulfillBy: string;
  detailsHash: Hex;
}

export interface PaymentTransaction {
  description: string;
  to: Address;
  data: Hex;
  /** Wei to send with the transaction, as a decimal string. */
  value: string;
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
    detailsHash: row.detailsHash as Hex,
  };
}

export function termsJson(terms: Invoice): InvoiceTermsJson {
  return {
    merchantId: terms.merchantId.toString(),
    invoiceId: terms.invoiceId,
    token: terms.token,
    amount: terms.amount.toString(),
    payer: terms.payer,
    arbiter: terms.arbiter,
    expiresAt: terms.expiresAt.toString(),
    holdDuration: terms.holdDuration,
    fulfillBy: terms.fulfillBy.toString(),
    detailsHash: terms.detailsHash,
  };
}

const EIP712_DOMAIN_TYPE = [
  { name: "name", type: "string" },
  { name: "version", type: "string" },
  { name: "chainId", type: "uint256" },
  { name: "verifyingContract", type: "address" },
] as const;

/**
 * EIP-681 URI of the first transaction, for QR codes and deep links.
 *
 * - ERC-20: `ethereum:<token>@<chainId>/approve?address=<escrow>&uint256=<amount>`, the standard form of the
 *   approval. The `pay` call that follows takes a tuple argument, which EIP-681 cannot express, so a wallet
 *   that scanned the URI still needs the second transaction from `transactions`.
 * - ETH: `ethereum:<escrow>@<chainId>?value=<amount in wei>&data=<pay calldata>`. `value` is standard; `data`
 *   is not in EIP-681 but is the de-facto parameter that wallets accepting raw calldata understand. A wallet
 *   that ignores `data` would send plain ETH to the escrow, which has no `receive` function, so that
 *   transaction reverts and no money moves: the URI is safe either way.
 */
function paymentUri(chainId: number, escrow: Address, terms: Invoice, payData: Hex): string {
  if (terms.token === zeroAddress) {
    return `ethereum:${escrow}@${chainId}?value=${terms.amount.toString()}&data=${payData}`;
  }
  return `ethereum:${terms.token}@${chainId}/approve?address=${escrow}&uint256=${terms.amount.toString()}`;
}

export function paymentInstructions(row: InvoiceRow, amountText: string, currency: string): EvmPaymentInstructions {
  const terms = termsOf(row);
  const escrow = row.escrowAddress as Address;
  const signature = row.signature as Hex;
  const json = termsJson(terms);
  const domain = billingEscrowDomain(row.chainId, escrow);
  const payData = encodeFunctionData({ abi: billingEscrowAbi, functionName: "pay", args: [terms, signature] });
  const transactions: PaymentTransaction[] = [];
  const isNative = terms.token === zeroAddress;
  if (!isNative) {
    transactions.push({
      description: `Approve the escrow to take ${amountText} ${currency} (skip this if the paying wallet's allowance for the escrow already covers it).`,
      to: terms.token,
      data: encodeFunctionData({ abi: erc20Abi, functionName: "approve", args: [escrow, terms.amount] }),
      value: "0",
    });
  }
  transactions.push({
    description: isNative
      ? `Pay ${amountText} ${currency} into the escrow.`
      : `Pay the invoice: the escrow takes ${amountText} ${currency} from the paying wallet.`,
    to: escrow,
    data: payData,
    value: isNative ? terms.amount.toString() : "0",
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
    uri: paymentUri(row.chainId, escrow, terms, payData),
  };
}
