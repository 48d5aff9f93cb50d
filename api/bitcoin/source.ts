/**
 * Where the Bitcoin watcher reads the chain: one interface, two implementations.
 *
 * - `createEsploraSource(baseUrl)`: an Esplora-compatible REST API (electrs, mempool.space, Blockstream's
 *   esplora), self-hosted or public;
 * - `createBitcoinCoreSource(url, auth)`: Bitcoin Core's JSON-RPC.
 *
 * Both read whole blocks **raw** (`/block/:hash/raw`, `getblock <hash> 0`) and parse them here, so amounts are
 * integer satoshis straight from the serialization (never Core's floating-point BTC values), and the cost of a
 * block is one request whatever the number of addresses watched. Requests time out, and timeouts, 429 and 5xx
 * answers are retried with backoff (429's Retry-After honoured) before a `SourceUnavailableError` — except
 * bitcoind's HTTP 500, which carries an RPC error (a refused transaction), not a passing failure.
 */
import { Transaction } from "@scure/btc-signer";
import { createHash } from "node:crypto";

export interface SourceTx {
  txid: string;
  inputs: { txid: string; index: number; sequence: number }[];
  outputs: { script: string; amount: bigint }[];
  /** Signals BIP125 replaceability (an input's sequence below 0xfffffffe). */
  rbf: boolean;
}

export interface SourceBlock {
  hash: string;
  previous: string;
  time: number;
  txs: SourceTx[];
}

export interface ChainSource {
  readonly name: string;
  tipHeight(): Promise<number>;
  blockHash(height: number): Promise<string>;
  block(hash: string): Promise<SourceBlock>;
  mempoolTxids(): Promise<string[]>;
  /** A transaction by id (mined or in the mempool), or undefined when the source does not know it. */
  transaction(txid: string): Promise<SourceTx | undefined>;
  /** Fee rate (sat/vB) to be mined within `targetBlocks`. */
  feeRate(targetBlocks: number): Promise<number>;
  broadcast(rawHex: string): Promise<string>;
}

export class SourceUnavailableError extends Error {
  override name = "SourceUnavailableError";
}

// ------------------------------------------------------------------------------------------------ parsing

const sha256d = (data: Uint8Array) => createHash("sha256").update(createHash("sha256").update(data).digest()).digest();
const display = (bytes: Uint8Array) => Buffer.from(bytes).reverse().toString("hex");

function compactSize(bytes: Uint8Array, offset: number): [value: number, next: number] {
  const first = bytes[offset];
  if (first < 0xfd) return [first, offset + 1];
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  if (first === 0xfd) return [view.getUint16(offset + 1, true), offset + 3];
  if (first === 0xfe) return [view.getUint32(offset + 1, true), offset + 5];
  const value = view.getBigUint64(offset + 1, true);
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error("compact size out of range");
  return [Number(value), offset + 9];
}

/** The length of the serialized transaction starting at `offset` (with or without witnesses). */
function transactionLength(bytes: Uint8Array, start: number): number {
  let offset = start + 4;
  const segwit = bytes[offset] === 0 && bytes[offset + 1] === 1;
  if (segwit) offset += 2;
  let inputs: number;
  [inputs, offset] = compactSize(bytes, offset);
  for (let index = 0; index < inputs; index += 1) {
    let scriptLength: number;
    [scriptLength, offset] = compactSize(bytes, offset + 36);
    offset += scriptLength + 4;
  }
  let outputs: number;
  [outputs, offset] = compactSize(bytes, offset);
  for (let index = 0; index < outputs; index += 1) {
    let scriptLength: number;
    [scriptLength, offset] = compactSize(bytes, offset + 8);
    offset += scriptLength;
  }
  if (segwit) {
    for (let index = 0; index < inputs; index += 1) {
      let items: number;
      [items, offset] = compactSize(bytes, offset);
      for (let item = 0; item < items; item += 1) {
        let itemLength: number;
        [itemLength, offset] = compactSize(bytes, offset);
        offset += itemLength;
      }
    }
  }
  offset += 4;
  if (offset > bytes.length) throw new Error("truncated transaction");
  return offset - start;
}

/** A raw transaction (hex or bytes) as the watcher sees it. */
export function parseTransaction(raw: Uint8Array | string): SourceTx {
  const bytes = typeof raw === "string" ? Buffer.from(raw, "hex") : raw;
  const tx = Transaction.fromRaw(bytes, { allowUnknownInputs: true, allowUnknownOutputs: true, disableScriptCheck: true, allowUnknown: true });
  const inputs = [];
  for (let index = 0; index < tx.inputsLength; index += 1) {
    const input = tx.getInput(index);
    inputs.push({ txid: Buffer.from(input.txid!).toString("hex"), index: input.index!, sequence: input.sequence ?? 0xffffffff });
  }
  const outputs = [];
  for (let index = 0; index < tx.outputsLength; index += 1) {
    const output = tx.getOutput(index);
    outputs.push({ script: Buffer.from(output.script!).toString("hex"), amount: output.amount! });
  }
  return { txid: tx.id, inputs, outputs, rbf: inputs.some((input) => input.sequence < 0xfffffffe) };
}

/** A raw block: header fields and every transaction, in order. */
export function parseBlock(raw: Uint8Array): SourceBlock {
  if (raw.length < 81) throw new Error("truncated block");
  const header = raw.subarray(0, 80);
  const view = new DataView(raw.buffer, raw.byteOffset);
  let [count, offset] = compactSize(raw, 80);
  const txs: SourceTx[] = [];
  for (; count > 0; count -= 1) {
    const length = transactionLength(raw, offset);
    txs.push(parseTransaction(raw.subarray(offset, offset + length)));
    offset += length;
  }
  if (offset !== raw.length) throw new Error("trailing bytes after the block's transactions");
  return { hash: display(sha256d(header)), previous: display(header.subarray(4, 36)), time: view.getUint32(68, true), txs };
}

// ------------------------------------------------------------------------------------------------ HTTP with retries

export interface SourceOptions {
  /** Per request (default 10 s). */
  timeoutMs?: number;
  /** Attempts per call, including the first (default 4). */
  attempts?: number;
  /** First backoff (doubles; default 250 ms). */
  backoffMs?: number;
}

const transient = (status: number) => status === 429 || status >= 500;

async function withRetries<T>(
  what: string,
  options: SourceOptions,
  call: (signal: AbortSignal) => Promise<Response>,
  read: (response: Response) => Promise<T>,
  retryable: (status: number) => boolean = transient,
): Promise<T> {
  const attempts = options.attempts ?? 4;
  let delay = options.backoffMs ?? 250;
  let last = "";
  for (let attempt = 1; attempt <= attempts; attempt += 1) {
    try {
      const response = await call(AbortSignal.timeout(options.timeoutMs ?? 10_000));
      if (retryable(response.status)) {
        last = `HTTP ${response.status}`;
        const retryAfter = Number(response.headers.get("retry-after"));
        await response.body?.cancel();
        if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, 30_000) : delay));
        delay *= 2;
        continue;
      }
      return await read(response);
    } catch (error) {
      if (error instanceof SourceUnavailableError || (error as Error).name === "NotFoundError") throw error;
      last = (error as Error).name === "TimeoutError" ? "timed out" : (error as Error).message;
      if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, delay));
      delay *= 2;
    }
  }
  throw new SourceUnavailableError(`${what}: ${last} after ${attempts} attempts`);
}

class NotFoundError extends Error {
  override name = "NotFoundError";
}

// ------------------------------------------------------------------------------------------------ Esplora

export function createEsploraSource(baseUrl: string, options: SourceOptions = {}): ChainSource {
  const base = baseUrl.replace(/\/+$/, "");
  const get = <T>(path: string, read: (response: Response) => Promise<T>) =>
    withRetries(`Esplora GET ${path}`, options, (signal) => fetch(`${base}${path}`, { signal }), async (response) => {
      if (response.status === 404) throw new NotFoundError(path);
      if (!response.ok) throw new SourceUnavailableError(`Esplora GET ${path}: HTTP ${response.status} ${(await response.text()).slice(0, 200)}`);
      return read(response);
    });
  const text = (response: Response) => response.text().then((body) => body.trim());
  return {
    name: `esplora ${base}`,
    tipHeight: () => get("/blocks/tip/height", text).then(Number),
    blockHash: (height) => get(`/block-height/${height}`, text),
    block: (hash) => get(`/block/${hash}/raw`, async (response) => parseBlock(new Uint8Array(await response.arrayBuffer()))),
    mempoolTxids: () => get("/mempool/txids", (response) => response.json() as Promise<string[]>),
    transaction: (txid) =>
      get(`/tx/${txid}/hex`, text)
        .then(parseTransaction)
        .catch((error: Error) => {
          if (error.name === "NotFoundError") return undefined;
          throw error;
        }),
    feeRate: (targetBlocks) =>
      get("/fee-estimates", (response) => response.json() as Promise<Record<string, number>>).then((estimates) => {
        const targets = Object.keys(estimates).map(Number).filter((target) => target <= targetBlocks).sort((a, b) => b - a);
        return Math.ceil(estimates[String(targets[0] ?? 1)] ?? 1);
      }),
    broadcast: (rawHex) =>
      withRetries("Esplora POST /tx", options, (signal) => fetch(`${base}/tx`, { method: "POST", body: rawHex, signal }), async (response) => {
        const body = (await response.text()).trim();
        if (!response.ok) throw new SourceUnavailableError(`the node refused the transaction: ${body.slice(0, 300)}`);
        return body;
      }),
  };
}

// ------------------------------------------------------------------------------------------------ Bitcoin Core

export function createBitcoinCoreSource(url: string, auth: { username: string; password: string } | undefined, options: SourceOptions = {}): ChainSource {
  let id = 0;
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (auth) headers.authorization = `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`;
  const rpc = <T>(method: string, params: unknown[]) =>
    withRetries(`bitcoind ${method}`, options, (signal) => fetch(url, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "1.0", id: ++id, method, params }), signal }), async (response) => {
      const body = (await response.json().catch(() => undefined)) as { result?: T; error?: { code: number; message: string } | null } | undefined;
      if (body?.error) {
        // -5: no such block/transaction (RPC_INVALID_ADDRESS_OR_KEY).
        if (body.error.code === -5) throw new NotFoundError(body.error.message);
        throw new SourceUnavailableError(`bitcoind ${method}: ${body.error.message} (code ${body.error.code})`);
      }
      if (!response.ok || body === undefined) throw new SourceUnavailableError(`bitcoind ${method}: HTTP ${response.status}`);
      return body.result as T;
    }, (status) => status === 429 || status === 502 || status === 503 || status === 504);
  return {
    name: `bitcoind ${new URL(url).host}`,
    tipHeight: () => rpc<number>("getblockcount", []),
    blockHash: (height) => rpc<string>("getblockhash", [height]),
    block: (hash) => rpc<string>("getblock", [hash, 0]).then((raw) => parseBlock(Buffer.from(raw, "hex"))),
    mempoolTxids: () => rpc<string[]>("getrawmempool", []),
    transaction: (txid) =>
      rpc<string>("getrawtransaction", [txid, false])
        .then(parseTransaction)
        .catch((error: Error) => {
          if (error.name === "NotFoundError") return undefined;
          throw error;
        }),
    // estimatesmartfee answers BTC per kvB; 1 BTC/kvB = 100,000 sat/vB. A fee rate, not an amount owed.
    feeRate: (targetBlocks) => rpc<{ feerate?: number }>("estimatesmartfee", [targetBlocks]).then((estimate) => Math.max(1, Math.ceil((estimate.feerate ?? 0.00001) * 100_000))),
    broadcast: (rawHex) => rpc<string>("sendrawtransaction", [rawHex]),
  };
}
