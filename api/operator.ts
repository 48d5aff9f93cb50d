/**
 * Merchants' operator keys: the signer key the service holds to sign invoices and send refunds, fulfilments,
 * voids and plan transactions. Encrypted at rest with AES-256-GCM; decrypted only to sign.
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { createWalletClient, http, type Hex, type PrivateKeyAccount, type TransactionReceipt } from "viem";
import { generatePrivateKey, privateKeyToAccount } from "viem/accounts";
import type { ChainRuntime } from "./chains";
import type { MerchantRecord } from "./env";
import { problem, ProblemError } from "./problems";

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

const accounts = new WeakMap<MerchantRecord, PrivateKeyAccount>();

/** The merchant's signer as a viem local account. */
export function operatorAccount(merchant: MerchantRecord, secret: Buffer): PrivateKeyAccount {
  let account = accounts.get(merchant);
  if (!account) {
    account = privateKeyToAccount(decryptKey(merchant.signerKeyEncrypted, secret));
    accounts.set(merchant, account);
  }
  return account;
}

const queues = new Map<string, Promise<unknown>>();

/**
 * Runs `task` after every earlier task of the same operator on the same chain, so two requests never pick the
 * same nonce. Every transaction the service sends goes through here (via `sendAsOperator`).
 */
async function withOperatorQueue<T>(chainId: number, operator: Hex, task: () => Promise<T>): Promise<T> {
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

/** Sends a contract call with the merchant's operator key (one at a time per operator) and waits for it to be mined. */
export async function sendAsOperator(
  chain: ChainRuntime,
  account: PrivateKeyAccount,
  request: { to: Hex; data: Hex; value?: bigint },
  /** Runs in the operator's turn just before sending (e.g. a simulation that turns a revert into a 409). */
  prepare?: () => Promise<void>,
): Promise<TransactionReceipt> {
  const wallet = createWalletClient({ account, transport: http(chain.client.transport.url as string | undefined) });
  let hash: Hex;
  try {
    hash = await withOperatorQueue(chain.id, account.address, async () => {
      await prepare?.();
      const gas = await chain.client.estimateGas({ account, ...request });
      return wallet.sendTransaction({ ...request, gas, chain: null });
    });
  } catch (error) {
    if (error instanceof ProblemError) throw error;
    const reason = error instanceof Error ? (error as { shortMessage?: string }).shortMessage ?? error.message : String(error);
    throw problem.chainFailure(
      `${reason}. The operator account ${account.address} sends this transaction: it needs ETH for gas on chain ${chain.id}.`,
    );
  }
  const receipt = await chain.client.waitForTransactionReceipt({ hash, pollingInterval: 100 });
  if (receipt.status !== "success") throw problem.chainFailure(`Transaction ${hash} reverted.`);
  return receipt;
}
