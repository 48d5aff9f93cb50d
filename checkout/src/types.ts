/**
 * What the hosted checkout knows about an invoice: the customer's view, served as JSON by `GET /pay/{id}/view`
 * and streamed by `GET /pay/{id}/events`. Only what the customer needs to pay and to see the result; no merchant
 * ids, metadata, customer details, keys or internal states. Shared by the server (api/checkout) and the page.
 */
export type CheckoutStatus =
  | "open"
  | "pending"
  | "underpaid"
  | "paid"
  | "overpaid"
  | "released"
  | "refunded"
  | "partially_refunded"
  | "disputed"
  | "expired"
  | "void";

export interface CheckoutLineItem {
  description: string;
  quantity: number;
  unitAmount: string;
}

export interface CheckoutChain {
  /** EVM chain id, or null for Bitcoin. */
  id: number | null;
  /** "eip155:31337", "bip122:…". */
  network: string;
  name: string;
  /** Block explorer base URL (transactions at `${explorer}/tx/<hash>`), null when the chain has none (a local chain). */
  explorer: string | null;
}

export interface CheckoutPrice {
  fiatCurrency: string;
  fiatAmount: string | null;
  /** Price of one unit of the paid currency in `fiatCurrency`. */
  rate: string;
  source: string;
  observedAt: string;
  lockedUntil: string | null;
}

export interface CheckoutView {
  id: string;
  merchant: { name: string };
  description: string | null;
  lineItems: CheckoutLineItem[];
  amount: string;
  amountBaseUnits: string;
  currency: string;
  decimals: number;
  chain: CheckoutChain;
  status: CheckoutStatus;
  expiresAt: string;
  /** The chain's clock when the view was read (ISO): the expiry countdown runs from it, not the device's clock. */
  now: string;
  price: CheckoutPrice | null;
  /** Wallet payment on an EVM chain: the API's payment instructions (terms, signature, transactions). */
  evm: {
    chainId: number;
    contract: string;
    invoiceKey: string;
    invoice: Record<string, string>;
    signature: string;
    typedData: unknown;
    transactions: { description: string; to: string; data: string; value: string; uri: string }[];
    uri: string;
    depositAddress: string | null;
    depositUri: string | null;
  } | null;
  /** Plain transfer: the invoice's own address, what arrived there and what is still missing. */
  transfer: {
    address: string;
    /** EIP-681 (EVM) or BIP21 (Bitcoin) link of the transfer: what the QR code holds. */
    uri: string;
    receivedAmount: string;
    dueAmount: string;
  } | null;
  /** The payment once the chain shows it. */
  paid: {
    transaction: string | null;
    explorerUrl: string | null;
    at: string | null;
    confirmations: number | null;
    confirmationsRequired: number;
  } | null;
  refundedAmount: string;
  successUrl: string | null;
  cancelUrl: string | null;
  /** How fresh the chain data is. */
  indexed: { block: number | null; at: string | null };
}

/** Statuses after which nothing more is expected from the customer. */
export const FINAL_FOR_CUSTOMER: ReadonlySet<CheckoutStatus> = new Set(["paid", "overpaid", "released", "refunded", "partially_refunded", "disputed", "expired", "void"]);
