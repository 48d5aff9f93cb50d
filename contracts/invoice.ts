/**
 * EIP-712 invoice typed data: the domain, the types, and viem helpers to build, sign and key an invoice
 * exactly as the BillingEscrow contract checks it. Wallets, the API and the tests all go through here.
 */
import {
  hashTypedData,
  type Account,
  type Address,
  type Hex,
  type LocalAccount,
  type PrivateKeyAccount,
  type TypedDataDomain,
  type WalletClient,
  zeroAddress,
  zeroHash,
} from "viem";

/** EIP-712 domain name and version of BillingEscrow (must match its constructor). */
export const BILLING_ESCROW_DOMAIN_NAME = "chainbill BillingEscrow";
export const BILLING_ESCROW_DOMAIN_VERSION = "1";

/** EIP-712 types of an invoice, in the order of the Solidity struct. */
export const invoiceTypes = {
  Invoice: [
    { name: "merchantId", type: "uint64" },
    { name: "invoiceId", type: "bytes32" },
    { name: "token", type: "address" },
    { name: "amount", type: "uint256" },
    { name: "payer", type: "address" },
    { name: "arbiter", type: "address" },
    { name: "expiresAt", type: "uint64" },
    { name: "holdDuration", type: "uint32" },
    { name: "fulfillBy", type: "uint64" },
    { name: "maxFeeBps", type: "uint16" },
    { name: "detailsHash", type: "bytes32" },
  ],
} as const;

/** Invoice terms as signed and as passed to every BillingEscrow function. Money in base units. */
export interface Invoice {
  merchantId: bigint;
  invoiceId: Hex;
  /** ERC-20 token; the zero address means native ETH. */
  token: Address;
  amount: bigint;
  /** Only this address may pay; zero address = anyone. */
  payer: Address;
  /** May settle disputes; zero address = no arbiter. */
  arbiter: Address;
  /** Unix seconds from which the invoice can no longer be paid. */
  expiresAt: bigint;
  /** Seconds the payment is held after it is made. */
  holdDuration: number;
  /** Unix seconds by which the merchant must mark it fulfilled; 0 = no deadline. */
  fulfillBy: bigint;
  /**
   * Highest protocol fee rate, in basis points, the merchant accepts on this payment: the payment reverts with
   * `FeeAboveMaximum` if the rate in force when it is made is higher. `MAX_FEE_BPS` (1 000) accepts any rate.
   */
  maxFeeBps: number;
  /** Commitment to off-chain details (line items, memo). */
  detailsHash: Hex;
}

/** The domain of one BillingEscrow deployment on one chain. */
export function billingEscrowDomain(chainId: number | bigint, verifyingContract: Address) {
  return {
    name: BILLING_ESCROW_DOMAIN_NAME,
    version: BILLING_ESCROW_DOMAIN_VERSION,
    chainId: BigInt(chainId),
    verifyingContract,
  } as const satisfies TypedDataDomain;
}

export type BillingEscrowDomain = ReturnType<typeof billingEscrowDomain>;

/** The highest protocol fee rate BillingEscrow's owner can ever set (`MAX_FEE_BPS`): 10 %. */
export const MAX_FEE_BPS = 1_000;

/**
 * Fills optional terms with their "none" values. `maxFeeBps` has no default and must be given: the merchant
 * decides which protocol fee it accepts (usually the rate in force, read from `config()`, or `MAX_FEE_BPS` to
 * accept any rate the owner may set before the payment). A default of 0 would make every invoice unpayable as
 * soon as a fee is set; a default of `MAX_FEE_BPS` would silently give up the protection.
 */
export function buildInvoice(
  terms: Pick<Invoice, "merchantId" | "invoiceId" | "amount" | "expiresAt" | "maxFeeBps"> & Partial<Invoice>,
): Invoice {
  return {
    token: zeroAddress,
    payer: zeroAddress,
    arbiter: zeroAddress,
    holdDuration: 0,
    fulfillBy: 0n,
    detailsHash: zeroHash,
    ...terms,
  };
}

/** The full typed-data payload a wallet signs (`eth_signTypedData_v4`). */
export function invoiceTypedData(domain: BillingEscrowDomain, invoice: Invoice) {
  return { domain, types: invoiceTypes, primaryType: "Invoice" as const, message: invoice };
}

/** The invoice's on-chain key: its EIP-712 digest (what `BillingEscrow.invoiceKey` returns). */
export function invoiceKey(domain: BillingEscrowDomain, invoice: Invoice): Hex {
  return hashTypedData(invoiceTypedData(domain, invoice));
}

/** Signs an invoice with a local account (a merchant signer key held by a service). */
export function signInvoice(signer: LocalAccount, domain: BillingEscrowDomain, invoice: Invoice): Promise<Hex> {
  return signer.signTypedData(invoiceTypedData(domain, invoice));
}

/** Signs an invoice with a private-key account and returns its key as well, hashing the typed data once. */
export async function signInvoiceAndKey(
  signer: PrivateKeyAccount,
  domain: BillingEscrowDomain,
  invoice: Invoice,
): Promise<{ key: Hex; signature: Hex }> {
  const key = invoiceKey(domain, invoice);
  return { key, signature: await signer.sign({ hash: key }) };
}

/** Signs an invoice through a wallet client (a browser wallet or a JSON-RPC account). */
export function signInvoiceWithWallet(
  wallet: WalletClient,
  account: Account | Address,
  domain: BillingEscrowDomain,
  invoice: Invoice,
): Promise<Hex> {
  return wallet.signTypedData({ account, ...invoiceTypedData(domain, invoice) });
}
