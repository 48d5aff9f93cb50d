/**
 * EIP-712 typed data of BillingEscrow: the domain, the invoice types and viem helpers to build, sign and key an
 * invoice exactly as the contract checks it, and the signer-consent types and helpers that registerMerchant and
 * setMerchantSigner require. Wallets, the API and the tests all go through here.
 */
import {
  concat,
  getContractAddress,
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

/** Invoice terms in JSON, integers as decimal strings (as the API returns them in `payment.evm.invoice`). */
export interface InvoiceJson {
  merchantId: string;
  invoiceId: Hex;
  token: Address;
  amount: string;
  payer: Address;
  arbiter: Address;
  expiresAt: string;
  holdDuration: number;
  fulfillBy: string;
  maxFeeBps: number;
  detailsHash: Hex;
}

/** Terms as JSON (integers as strings), e.g. for an API response. */
export function invoiceToJson(invoice: Invoice): InvoiceJson {
  return {
    merchantId: invoice.merchantId.toString(),
    invoiceId: invoice.invoiceId,
    token: invoice.token,
    amount: invoice.amount.toString(),
    payer: invoice.payer,
    arbiter: invoice.arbiter,
    expiresAt: invoice.expiresAt.toString(),
    holdDuration: invoice.holdDuration,
    fulfillBy: invoice.fulfillBy.toString(),
    maxFeeBps: invoice.maxFeeBps,
    detailsHash: invoice.detailsHash,
  };
}

/** The same JSON as the API's OpenAPI types describe it: addresses and hashes as plain strings. */
export type InvoiceJsonInput = { [K in keyof InvoiceJson]: InvoiceJson[K] extends number ? number : string };

/** Terms from their JSON form (`payment.evm.invoice` of the API), ready for any BillingEscrow function. */
export function invoiceFromJson(json: InvoiceJsonInput): Invoice {
  return {
    merchantId: BigInt(json.merchantId),
    invoiceId: json.invoiceId as Hex,
    token: json.token as Address,
    amount: BigInt(json.amount),
    payer: json.payer as Address,
    arbiter: json.arbiter as Address,
    expiresAt: BigInt(json.expiresAt),
    holdDuration: json.holdDuration,
    fulfillBy: BigInt(json.fulfillBy),
    maxFeeBps: json.maxFeeBps,
    detailsHash: json.detailsHash as Hex,
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

// ------------------------------------------------------------------------------------------------ deposit addresses

/**
 * The DepositForwarder implementation a BillingEscrow deploys in its constructor (its first contract creation,
 * contract nonce 1): every deposit address is an EIP-1167 clone of it.
 */
export function depositImplementation(escrow: Address): Address {
  return getContractAddress({ from: escrow, nonce: 1n });
}

/**
 * An invoice's deposit address, computed off-chain exactly as `BillingEscrow.depositAddress`: CREATE2 by the
 * escrow of an EIP-1167 minimal clone of its DepositForwarder, salt = the invoice's EIP-712 key (which binds the
 * terms, the chain and the escrow). Nothing needs to be deployed before a customer sends money there.
 */
export function depositAddress(escrow: Address, key: Hex): Address {
  const implementation = depositImplementation(escrow);
  // OpenZeppelin Clones' creation code: the 10-byte EIP-1167 constructor, then the 45-byte proxy runtime.
  const bytecode = concat(["0x3d602d80600a3d3981f3363d3d373d3d3d363d73", implementation, "0x5af43d82803e903d91602b57fd5bf3"]);
  return getContractAddress({ opcode: "CREATE2", from: escrow, salt: key, bytecode });
}

/** The deposit address of `invoice` on the escrow named by `domain`. */
export function invoiceDepositAddress(domain: BillingEscrowDomain, invoice: Invoice): Address {
  return depositAddress(domain.verifyingContract, invoiceKey(domain, invoice));
}

// ------------------------------------------------------------------------------------------------ signer consent
//
// A merchant record names a signer only with that signer's consent: registerMerchant and setMerchantSigner take
// the signer's EIP-712 `SignerConsent` in the BillingEscrow domain above (so bound to one chain and deployment).
// The owner (the account that sends the transaction) asks the signer key to sign it; the API holding an operator
// key signs with `signSignerConsent` and hands the owner a ready `registerMerchant` transaction.

/** `merchantId` of the consent to a new registration (the id is not known before the transaction is mined). */
export const NEW_MERCHANT_ID = 0n;

/** EIP-712 types of a signer's consent, in the order of `SIGNER_CONSENT_TYPEHASH`. */
export const signerConsentTypes = {
  SignerConsent: [
    { name: "merchantId", type: "uint64" },
    { name: "owner", type: "address" },
    { name: "payout", type: "address" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

/** A signer's consent to sign for one merchant record. */
export interface SignerConsent {
  /** `NEW_MERCHANT_ID` (0) for registerMerchant; the record's id for setMerchantSigner. */
  merchantId: bigint;
  /** The record's owner: the account that will send registerMerchant / setMerchantSigner. */
  owner: Address;
  /** The record's payout: the new one for registerMerchant, the current one for setMerchantSigner. */
  payout: Address;
  /** The signer's current `BillingEscrow.nonces(signer)`; each accepted consent uses one. */
  nonce: bigint;
  /** Unix seconds; the consent is valid up to and including this second. */
  deadline: bigint;
}

/** The full typed-data payload a signer signs to consent (`eth_signTypedData_v4`). */
export function signerConsentTypedData(domain: BillingEscrowDomain, consent: SignerConsent) {
  return { domain, types: signerConsentTypes, primaryType: "SignerConsent" as const, message: consent };
}

/** The consent's EIP-712 digest, the hash the signer signs (an ERC-1271 contract signer is asked about it). */
export function signerConsentDigest(domain: BillingEscrowDomain, consent: SignerConsent): Hex {
  return hashTypedData(signerConsentTypedData(domain, consent));
}

/** Signs a consent with a local account (e.g. a merchant's operator key held by the API). */
export function signSignerConsent(
  signer: LocalAccount,
  domain: BillingEscrowDomain,
  consent: SignerConsent,
): Promise<Hex> {
  return signer.signTypedData(signerConsentTypedData(domain, consent));
}

/** Signs a consent through a wallet client (a browser wallet or a JSON-RPC account). */
export function signSignerConsentWithWallet(
  wallet: WalletClient,
  account: Account | Address,
  domain: BillingEscrowDomain,
  consent: SignerConsent,
): Promise<Hex> {
  return wallet.signTypedData({ account, ...signerConsentTypedData(domain, consent) });
}

/**
 * Signs `signer`'s consent to a new merchant owned by `owner` and paying `payout`, and returns the arguments of
 * `registerMerchant(payout, signer, deadline, signerSignature)`, to be sent by `owner`. `nonce` is
 * `BillingEscrow.nonces(signer.address)` read just before.
 */
export async function signMerchantRegistration(
  signer: LocalAccount,
  domain: BillingEscrowDomain,
  terms: { owner: Address; payout: Address; nonce: bigint; deadline: bigint },
): Promise<{ consent: SignerConsent; args: readonly [payout: Address, signer: Address, deadline: bigint, signature: Hex] }> {
  const consent: SignerConsent = { merchantId: NEW_MERCHANT_ID, ...terms };
  const signature = await signSignerConsent(signer, domain, consent);
  return { consent, args: [terms.payout, signer.address, terms.deadline, signature] as const };
}

/**
 * Signs `signer`'s consent to become the signer of merchant `merchantId` (owned by `owner`, paying `payout`, its
 * current payout), and returns the arguments of `setMerchantSigner(merchantId, signer, deadline, signerSignature)`,
 * to be sent by `owner`.
 */
export async function signMerchantSignerChange(
  signer: LocalAccount,
  domain: BillingEscrowDomain,
  terms: { merchantId: bigint; owner: Address; payout: Address; nonce: bigint; deadline: bigint },
): Promise<{
  consent: SignerConsent;
  args: readonly [merchantId: bigint, signer: Address, deadline: bigint, signature: Hex];
}> {
  const consent: SignerConsent = { ...terms };
  const signature = await signSignerConsent(signer, domain, consent);
  return { consent, args: [terms.merchantId, signer.address, terms.deadline, signature] as const };
}
