/**
 * Pays an invoice from a wallet with nothing but the API's instructions (`invoice.payment.evm`): checks the
 * wallet is on the invoice's chain (asking it to switch), then pays native ETH with `pay` and value, or a token
 * with an EIP-2612 permit signature (`payWithPermit`, one transaction) or with `approve` then `pay`. Each
 * transaction is simulated first, so a payment the escrow would refuse fails before the wallet is asked, with the
 * contract's error name; then the receipt is awaited and a revert throws.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  domainSeparator,
  erc20Abi,
  parseSignature,
  zeroAddress,
  type Abi,
  type Account,
  type Address,
  type Hex,
  type Chain,
  type Client,
  type Transport,
  type TypedDataDomain,
} from "viem";
import { getBlock, getChainId, readContract, signTypedData, simulateContract, switchChain, waitForTransactionReceipt, writeContract } from "viem/actions";
import { billingEscrowPaymentAbi } from "./abi.ts";
import type { components } from "./generated/api-schema.ts";
import { invoiceFromJson, type Invoice } from "./invoice.ts";

/**
 * The API's payment instructions of an EVM invoice (`invoice.payment.evm`): chain, escrow, the signed terms
 * (integers as decimal strings), the merchant's signature, the transactions and EIP-681 links, the deposit address.
 */
export type PaymentInstructions = components["schemas"]["EvmPayment"];

export type PaymentMethod = "native" | "approve" | "permit";

export interface PaymentStep {
  kind: "switch-chain" | "approve" | "permit-signature" | "pay";
  /** Set once the step's transaction is sent (approve, pay); absent when the step starts (the wallet is asked). */
  hash?: Hex;
}

/** A viem client that can sign and send: a wallet client, or a bare client with an account. */
export type WalletLike = Client<Transport, Chain | undefined, Account | undefined>;
/** A viem client that can read the chain: a public client, or any client with a transport. */
export type ReaderLike = Client<Transport, Chain | undefined>;

export interface PayInvoiceOptions {
  /**
   * A viem wallet client with an account (a browser wallet's json-rpc account, or a local one) and a transport.
   * Any viem client will do (`createWalletClient`, or a bare `createClient` to keep a browser bundle small):
   * payInvoice calls viem's tree-shakable actions on it.
   */
  wallet: WalletLike;
  /** A public client on the invoice's chain: reads, simulations and receipts (any viem client, as above). */
  publicClient: ReaderLike;
  instructions: PaymentInstructions;
  /**
   * `auto` (default): the token allowance when it already covers the amount, else a permit when the token
   * supports EIP-2612, else approve then pay. `approve` / `permit` force one way. Native ETH ignores it.
   */
  method?: "auto" | "approve" | "permit";
  /** Told about each step: once when it starts (no hash), and for transactions again with the hash once sent. */
  onStep?: (step: PaymentStep) => void;
}

export interface PayInvoiceResult {
  /** The transaction that paid (pay or payWithPermit). */
  hash: Hex;
  method: PaymentMethod;
}

/** The wallet is on another chain than the invoice, and could not be switched. */
export class WrongChainError extends Error {
  override name = "WrongChainError";
  constructor(
    readonly expectedChainId: number,
    readonly walletChainId: number,
    options?: { cause?: unknown },
  ) {
    super(
      `The wallet is on chain ${walletChainId} but this invoice is paid on chain ${expectedChainId}; ` +
        `switch the wallet to chain ${expectedChainId} and try again.`,
      options,
    );
  }
}

/** A payment the escrow (or the token) refused, or a wallet that cannot pay; `reason` is the contract's error name when known. */
export class PaymentFailedError extends Error {
  override name = "PaymentFailedError";
  constructor(
    message: string,
    readonly reason?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const PERMIT_TYPES = {
  Permit: [
    { name: "owner", type: "address" },
    { name: "spender", type: "address" },
    { name: "value", type: "uint256" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint256" },
  ],
} as const;

const PERMIT_ABI = [
  { type: "function", name: "nonces", stateMutability: "view", inputs: [{ name: "owner", type: "address" }], outputs: [{ type: "uint256" }] },
  { type: "function", name: "DOMAIN_SEPARATOR", stateMutability: "view", inputs: [], outputs: [{ type: "bytes32" }] },
  { type: "function", name: "version", stateMutability: "view", inputs: [], outputs: [{ type: "string" }] },
  {
    type: "function",
    name: "eip712Domain",
    stateMutability: "view",
    inputs: [],
    outputs: [
      { name: "fields", type: "bytes1" },
      { name: "name", type: "string" },
      { name: "version", type: "string" },
      { name: "chainId", type: "uint256" },
      { name: "verifyingContract", type: "address" },
      { name: "salt", type: "bytes32" },
      { name: "extensions", type: "uint256[]" },
    ],
  },
] as const;

/** Longest validity of a permit signature (it never outlives the invoice either). */
const PERMIT_LIFETIME_SECONDS = 30n * 60n;

export async function payInvoice(options: PayInvoiceOptions): Promise<PayInvoiceResult> {
  const { wallet, publicClient, instructions, onStep } = options;
  const account = wallet.account;
  if (!account) throw new PaymentFailedError("The wallet client has no account: create it with `account` (or connect the wallet first).");
  const invoice = invoiceFromJson(instructions.invoice);
  const escrow = instructions.contract as Address;

  await ensureChain(wallet, publicClient, instructions.chainId, onStep);
  if (invoice.payer !== zeroAddress && invoice.payer.toLowerCase() !== account.address.toLowerCase()) {
    throw new PaymentFailedError(`Only ${invoice.payer} may pay this invoice; the wallet is ${account.address}.`, "WrongPayer");
  }
  const signature = instructions.signature as Hex;
  const context: Context = { wallet, publicClient, account, escrow, onStep };

  if (invoice.token === zeroAddress) {
    const hash = await send(context, "pay", { address: escrow, abi: billingEscrowPaymentAbi, functionName: "pay", args: [invoice, signature], value: invoice.amount });
    return { hash, method: "native" };
  }

  const method = options.method ?? "auto";
  if (method === "permit") {
    const domain = await permitDomain(publicClient, invoice.token, instructions.chainId, account.address);
    if (!domain) throw new PaymentFailedError(`The token ${invoice.token} does not support EIP-2612 permits; pay with method "approve".`, "PermitUnsupported");
    return { hash: await payWithPermit(context, invoice, signature, domain), method: "permit" };
  }
  const allowance = await readContract(publicClient, { address: invoice.token, abi: erc20Abi, functionName: "allowance", args: [account.address, escrow] });
  if (method === "auto" && allowance < invoice.amount) {
    const domain = await permitDomain(publicClient, invoice.token, instructions.chainId, account.address);
    if (domain) return { hash: await payWithPermit(context, invoice, signature, domain), method: "permit" };
  }
  if (allowance < invoice.amount) await approve(context, invoice.token, invoice.amount, allowance);
  const hash = await send(context, "pay", { address: escrow, abi: billingEscrowPaymentAbi, functionName: "pay", args: [invoice, signature] });
  return { hash, method: "approve" };
}

interface Context {
  wallet: WalletLike;
  publicClient: ReaderLike;
  account: Account;
  escrow: Address;
  onStep?: (step: PaymentStep) => void;
}

/** Makes sure the wallet (switching it if needed) and the public client are on `chainId`. */
async function ensureChain(wallet: WalletLike, publicClient: ReaderLike, chainId: number, onStep?: (step: PaymentStep) => void): Promise<void> {
  const walletChainId = await getChainId(wallet);
  if (walletChainId !== chainId) {
    onStep?.({ kind: "switch-chain" });
    try {
      await switchChain(wallet, { id: chainId });
    } catch (error) {
      throw new WrongChainError(chainId, walletChainId, { cause: error });
    }
    const switched = await getChainId(wallet);
    if (switched !== chainId) throw new WrongChainError(chainId, switched);
  }
  const readerChainId = await getChainId(publicClient);
  if (readerChainId !== chainId) {
    throw new PaymentFailedError(`The public client reads chain ${readerChainId} but this invoice is paid on chain ${chainId}: give payInvoice a public client of chain ${chainId}.`, "WrongChain");
  }
}

/** Simulates, sends and awaits one contract call; throws `PaymentFailedError` with the contract's error name. */
async function send(
  context: Context,
  kind: "approve" | "pay",
  call: { address: Address; abi: Abi; functionName: string; args: readonly unknown[]; value?: bigint },
): Promise<Hex> {
  const { wallet, publicClient, account, onStep } = context;
  const what = kind === "approve" ? "the token approval" : "the payment";
  try {
    await simulateContract(publicClient, { ...call, account } as Parameters<typeof simulateContract>[1]);
  } catch (error) {
    throw failure(error, `${what} would fail`);
  }
  onStep?.({ kind });
  let hash: Hex;
  try {
    hash = await writeContract(wallet, { ...call, account, chain: null } as Parameters<typeof writeContract>[1]);
  } catch (error) {
    throw failure(error, `${what} was not sent`);
  }
  onStep?.({ kind, hash });
  const receipt = await waitForTransactionReceipt(publicClient, { hash });
  if (receipt.status !== "success") throw new PaymentFailedError(`${capitalise(what)} reverted (transaction ${hash}).`, "Reverted");
  return hash;
}

async function approve(context: Context, token: Address, amount: bigint, allowance: bigint): Promise<void> {
  const call = { address: token, abi: erc20Abi as Abi, functionName: "approve", args: [context.escrow, amount] as const };
  if (allowance > 0n) {
    // Some tokens (USDT) refuse to change a non-zero allowance to another non-zero one: reset it first.
    const refuses = await simulateContract(context.publicClient, { ...call, account: context.account } as Parameters<typeof simulateContract>[1]).then(
      () => false,
      () => true,
    );
    if (refuses) await send(context, "approve", { ...call, args: [context.escrow, 0n] });
  }
  await send(context, "approve", call);
}

async function payWithPermit(context: Context, invoice: Invoice, signature: Hex, domain: TypedDataDomain): Promise<Hex> {
  const { wallet, publicClient, account, escrow, onStep } = context;
  const [nonce, block] = await Promise.all([
    readContract(publicClient, { address: invoice.token, abi: PERMIT_ABI, functionName: "nonces", args: [account.address] }),
    getBlock(publicClient),
  ]);
  // The chain's clock, not the computer's: the permit must hold when the transaction is mined.
  let deadline = block.timestamp + PERMIT_LIFETIME_SECONDS;
  if (invoice.expiresAt > 0n && invoice.expiresAt < deadline) deadline = invoice.expiresAt;
  onStep?.({ kind: "permit-signature" });
  let permit: Hex;
  try {
    permit = await signTypedData(wallet, {
      account,
      domain,
      types: PERMIT_TYPES,
      primaryType: "Permit",
      message: { owner: account.address, spender: escrow, value: invoice.amount, nonce, deadline },
    });
  } catch (error) {
    throw failure(error, "the permit was not signed");
  }
  const { r, s, v, yParity } = parseSignature(permit);
  const recovery = Number(v ?? BigInt(yParity + 27));
  return send(context, "pay", {
    address: escrow,
    abi: billingEscrowPaymentAbi,
    functionName: "payWithPermit",
    args: [invoice, signature, deadline, recovery, r, s],
  });
}

/**
 * The token's EIP-712 domain for permits, or undefined when it has no EIP-2612 permit. The domain is taken from
 * `eip712Domain()` (EIP-5267) or built from `name()`/`version()`, and accepted only when it hashes to the token's
 * own `DOMAIN_SEPARATOR()`: a signature over a wrong domain would only waste the customer's time.
 */
export async function permitDomain(publicClient: ReaderLike, token: Address, chainId: number, owner: Address): Promise<TypedDataDomain | undefined> {
  const read = <T>(promise: Promise<T>) => promise.then((value) => value, () => undefined);
  const [nonce, separator, eip712, name, version] = await Promise.all([
    read(readContract(publicClient, { address: token, abi: PERMIT_ABI, functionName: "nonces", args: [owner] })),
    read(readContract(publicClient, { address: token, abi: PERMIT_ABI, functionName: "DOMAIN_SEPARATOR" })),
    read(readContract(publicClient, { address: token, abi: PERMIT_ABI, functionName: "eip712Domain" })),
    read(readContract(publicClient, { address: token, abi: erc20Abi, functionName: "name" })),
    read(readContract(publicClient, { address: token, abi: PERMIT_ABI, functionName: "version" })),
  ]);
  if (nonce === undefined || separator === undefined) return undefined;
  const candidates: TypedDataDomain[] = [];
  if (eip712) {
    const [fields, domainName, domainVersion, domainChainId, verifyingContract, salt] = eip712;
    const bits = Number.parseInt(fields.slice(2), 16);
    candidates.push({
      ...(bits & 1 ? { name: domainName } : {}),
      ...(bits & 2 ? { version: domainVersion } : {}),
      ...(bits & 4 ? { chainId: domainChainId } : {}),
      ...(bits & 8 ? { verifyingContract } : {}),
      ...(bits & 16 ? { salt } : {}),
    });
  }
  if (name !== undefined) {
    for (const candidateVersion of version !== undefined ? [version] : ["1", "2"]) {
      candidates.push({ name, version: candidateVersion, chainId: BigInt(chainId), verifyingContract: token });
    }
  }
  return candidates.find((domain) => domainSeparator({ domain }).toLowerCase() === separator.toLowerCase());
}

/** A clear `PaymentFailedError` from a viem error, naming the contract's custom error when there is one. */
function failure(error: unknown, what: string): Error {
  if (error instanceof PaymentFailedError || error instanceof WrongChainError) return error;
  if (error instanceof BaseError) {
    const reverted = error.walk((cause) => cause instanceof ContractFunctionRevertedError) as ContractFunctionRevertedError | null;
    const errorName = reverted?.data?.errorName ?? reverted?.reason;
    if (errorName) {
      const args = reverted?.data?.args?.length ? `(${reverted.data.args.map(String).join(", ")})` : "";
      return new PaymentFailedError(`${capitalise(what)}: ${errorName}${args}.`, errorName, { cause: error });
    }
    return new PaymentFailedError(`${capitalise(what)}: ${error.shortMessage}`, undefined, { cause: error });
  }
  return new PaymentFailedError(`${capitalise(what)}: ${error instanceof Error ? error.message : String(error)}`, undefined, { cause: error });
}

function capitalise(text: string): string {
  return text[0].toUpperCase() + text.slice(1);
}
