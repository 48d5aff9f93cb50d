/**
 * Merchants' operator keys and the one path every service-sent transaction takes.
 *
 * The operator key is the merchant's signer: it signs invoices, consents to its own registration, and sends
 * refunds, fulfilments, voids, plan changes and cancels. Keys are encrypted at rest with AES-256-GCM under
 * `OPERATOR_KEY_SECRET` and decrypted only to sign.
 *
 * `operator.call` runs in the operator's queue (one transaction at a time per operator and chain, up to its
 * receipt, so two requests never race on state or nonces): simulate → a revert becomes the problem the caller
 * mapped for that custom error (409/422), or 409 `chain-rejected` naming the error → gas estimate and a balance
 * check (503 `operator-needs-gas` with the address, balance and what is needed) → send → wait for the receipt.
 * Node and RPC failures become 503 `chain-unavailable`; the raw error text goes to the log with the request id,
 * never into a response.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import {
  BaseError,
  ContractFunctionRevertedError,
  createWalletClient,
  encodeFunctionData,
  formatEther,
  http,
  InsufficientFundsError,
  type Abi,
  type Address,
  type Hex,
  type PrivateKeyAccount,
  type TransactionReceipt,
  type WalletClient,
} from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { Logger } from "pino";
import type { ChainRuntime } from "./chains";
import type { MerchantRecord } from "./env";
import { problem, ProblemError } from "./problems";

// ------------------------------------------------------------------------------------------------ keys

export function newOperatorKey(secret: Buffer): { address: Hex; encrypted: string } {
  const key = generatePrivateKey();
  return { address: privateKeyToAccount(key).address, encrypted: encryptKey(key, secret) };
}

export function encryptKey(privateKey: Hex, secret: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", secret, iv);
  const ciphertext = Buffer.concat([cipher.update(privateKey.slice(2), "hex"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString("hex");
}

export function decryptKey(encrypted: string, secret: Buffer): Hex {
  const raw = Buffer.from(encrypted, "hex");
  const decipher = createDecipheriv("aes-256-gcm", secret, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return `0x${Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("hex")}`;
}

/** Whether `secret` opens `encrypted` (AES-GCM authenticates: a wrong secret fails, it never decrypts to garbage). */
export function secretOpens(encrypted: string, secret: Buffer): boolean {
  try {
    decryptKey(encrypted, secret);
    return true;
  } catch {
    return false;
  }
}

// ------------------------------------------------------------------------------------------------ calls

/** Maps a custom error of the called contract (its decoded arguments) to the problem the client sees. */
export type RevertMapping = Record<string, (args: readonly unknown[]) => ProblemError>;

export interface OperatorCall {
  chain: ChainRuntime;
  merchant: MerchantRecord;
  to: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
  /** For messages: what is being done, e.g. "refund invoice inv_…". */
  action: string;
  errors?: RevertMapping;
  requestId?: string;
}

export interface Operator {
  /** The merchant's operator as a viem local account. */
  account(merchant: MerchantRecord): PrivateKeyAccount;
  /** Simulates, checks gas, sends and waits for the receipt, one call at a time per operator and chain. */
  call(request: OperatorCall): Promise<TransactionReceipt>;
}

function shortText(error: unknown): string {
  if (error instanceof BaseError) return error.shortMessage;
  return error instanceof Error ? error.message : String(error);
}

export function createOperator(options: { secret: Buffer; logger: Logger }): Operator {
  const accounts = new Map<string, PrivateKeyAccount>();
  const wallets = new Map<string, WalletClient>();
  const queues = new Map<string, Promise<unknown>>();

  function account(merchant: MerchantRecord): PrivateKeyAccount {
    let found = accounts.get(merchant.id);
    if (!found) {
      found = privateKeyToAccount(decryptKey(merchant.signerKeyEncrypted, options.secret));
      accounts.set(merchant.id, found);
    }
    return found;
  }

  function walletOf(chain: ChainRuntime, signer: PrivateKeyAccount): WalletClient {
    const key = `${chain.id}:${signer.address}`;
    let wallet = wallets.get(key);
    if (!wallet) {
      wallet = createWalletClient({ account: signer, transport: http(chain.client.transport.url as string | undefined, { retryCount: 0 }) });
      wallets.set(key, wallet);
    }
    return wallet;
  }

  /** Runs `task` after every earlier task of the same operator on the same chain. */
  async function inQueue<T>(chainId: number, operator: Address, task: () => Promise<T>): Promise<T> {
    const key = `${chainId}:${operator.toLowerCase()}`;
    const previous = queues.get(key) ?? Promise.resolve();
    const run = previous.catch(() => undefined).then(task);
    queues.set(key, run);
    try {
      return await run;
    } finally {
      if (queues.get(key) === run) queues.delete(key);
    }
  }

  function unavailable(request: OperatorCall, error: unknown): ProblemError {
    options.logger.error({ requestId: request.requestId, chainId: request.chain.id, action: request.action, err: error }, "operator call failed");
    return problem.chainUnavailable(request.chain.id);
  }

  function rejected(request: OperatorCall, revert: ContractFunctionRevertedError): ProblemError {
    const name = revert.data?.errorName;
    const mapped = name ? request.errors?.[name] : undefined;
    if (mapped) return mapped(revert.data?.args ?? []);
    return problem.chainRejected(request.action, name ?? revert.reason ?? "an unnamed revert");
  }

  async function needsGas(request: OperatorCall, signer: PrivateKeyAccount, gas: bigint): Promise<ProblemError | undefined> {
    const { client } = request.chain;
    const [fees, balance] = await Promise.all([
      client.estimateFeesPerGas().catch(async () => ({ maxFeePerGas: await client.getGasPrice() })),
      client.getBalance({ address: signer.address }),
    ]);
    const needed = gas * (fees.maxFeePerGas ?? 0n);
    if (balance >= needed) return undefined;
    return problem.operatorNeedsGas({ operator: signer.address, chainId: request.chain.id, balanceWei: balance, neededWei: needed });
  }

  async function call(request: OperatorCall): Promise<TransactionReceipt> {
    const signer = account(request.merchant);
    const { client } = request.chain;
    const data = encodeFunctionData({ abi: request.abi, functionName: request.functionName, args: request.args } as Parameters<typeof encodeFunctionData>[0]);
    return inQueue(request.chain.id, signer.address, async () => {
      // The simulation runs in the operator's turn, after every earlier transaction of it was mined.
      try {
        await client.simulateContract({
          account: signer,
          address: request.to,
          abi: request.abi,
          functionName: request.functionName,
          args: request.args,
        } as Parameters<typeof client.simulateContract>[0]);
      } catch (error) {
        const revert = error instanceof BaseError ? error.walk((cause) => cause instanceof ContractFunctionRevertedError) : null;
        if (revert instanceof ContractFunctionRevertedError) throw rejected(request, revert);
        throw unavailable(request, error);
      }
      let gas: bigint;
      try {
        gas = await client.estimateGas({ account: signer, to: request.to, data });
        const shortage = await needsGas(request, signer, gas);
        if (shortage) throw shortage;
      } catch (error) {
        if (error instanceof ProblemError) throw error;
        throw unavailable(request, error);
      }
      let hash: Hex;
      try {
        hash = await walletOf(request.chain, signer).sendTransaction({ account: signer, to: request.to, data, gas, chain: null });
      } catch (error) {
        if (error instanceof BaseError && error.walk((cause) => cause instanceof InsufficientFundsError)) {
          const balance = await client.getBalance({ address: signer.address }).catch(() => 0n);
          throw problem.operatorNeedsGas({ operator: signer.address, chainId: request.chain.id, balanceWei: balance, neededWei: undefined });
        }
        throw unavailable(request, error);
      }
      const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 100 }).catch((error: unknown) => {
        throw unavailable(request, error);
      });
      if (receipt.status !== "success") {
        options.logger.warn({ requestId: request.requestId, hash, action: request.action }, "operator transaction reverted after a successful simulation");
        throw problem.chainRejected(request.action, `a revert when mined (transaction ${hash})`);
      }
      return receipt;
    });
  }

  return { account, call };
}

/** Wei as ETH for messages. */
export function ethText(wei: bigint): string {
  return `${formatEther(wei)} ETH`;
}
