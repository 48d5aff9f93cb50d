/**
 * Refunds of Bitcoin invoices as unsigned PSBTs (BIP174).
 *
 * A Bitcoin payment goes straight to the merchant's wallet: there is no escrow chainbill could release, and
 * chainbill never holds a private key. So a refund is a proposal: an unsigned transaction spending the invoice's
 * received outputs to the customer's refund address, packaged as a PSBT carrying what a signing wallet
 * (Sparrow, Electrum, Bitcoin Core, a hardware wallet) needs to recognise and sign its own inputs — the previous
 * outputs (`witnessUtxo`) and the key derivations (`bip32Derivation`, or `tapInternalKey` + `tapBip32Derivation`
 * for taproot). The merchant signs and broadcasts it.
 *
 * The fee is computed from the size the transaction will have once signed, so the fee rate asked for is met.
 * Amounts are integer satoshis (bigint) throughout. Errors are `RefundError`s with a code and a message that
 * says what to do; they never carry a stack trace from a parser to the caller.
 */
import { Address, OutScript, p2tr, p2wpkh, Transaction } from "@scure/btc-signer";
import { base64 } from "@scure/base";
import type { HDKey } from "@scure/bip32";
import type { AccountKey, BitcoinNetwork } from "./keys";
import { networkParams } from "./addresses";

export interface RefundInput {
  txid: string;
  vout: number;
  amountSats: bigint;
  /** The scriptPubKey of the received output, hex. */
  script: string;
  /** The receive index: the output pays the account's address 0/addressIndex. */
  addressIndex: number;
}

export interface RefundPlan {
  /** The unsigned PSBT, base64 (what wallets import). */
  psbt: string;
  /** Txid of the unsigned transaction: final, as signatures of segwit and taproot inputs do not change it. */
  txid: string;
  /** Paid to the destination. */
  amountSats: bigint;
  feeSats: bigint;
  /** Virtual size of the signed transaction as estimated for the fee (an upper bound: it assumes the longest signatures). */
  vsize: number;
  changeSats: bigint;
  changeAddress: string | null;
  inputs: { txid: string; vout: number }[];
}

export interface RefundOptions {
  /** sat/vB, at least 1 (taken to the sat/kvB, as Bitcoin Core does). */
  feeRate: number;
  /** Default: everything received minus the fee. */
  amountSats?: bigint;
  /** For a partial refund: the change goes to the account's change address 1/changeIndex. */
  changeIndex?: number;
}

export type RefundErrorCode =
  | "bad-address"
  | "wrong-network"
  | "amount-too-small"
  | "insufficient-funds"
  | "no-inputs"
  | "bad-input"
  | "bad-amount"
  | "bad-fee-rate"
  | "change-index-required";

export class RefundError extends Error {
  override name = "RefundError";
  constructor(
    readonly code: RefundErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** BIP125: a sequence below 0xfffffffe signals replaceability, so a stuck refund can be fee-bumped. */
const RBF_SEQUENCE = 0xfffffffd;
const HARDENED = 0x80000000;
const MAX_INDEX = 0x7fffffff;
/** Above this a sat/kvB figure (or a typo) was probably given as sat/vB. */
const MAX_FEE_RATE = 10_000;
const RECEIVE_BRANCH = 0;
const CHANGE_BRANCH = 1;

// ------------------------------------------------------------------------------------------------ keys and paths

interface Derived {
  publicKey: Uint8Array;
  script: Uint8Array;
  address: string;
  /** The PSBT derivation fields for this key (on an input or an output: BIP174/BIP371 use the same names). */
  derivation: DerivationFields;
}

type KeyOrigin = { fingerprint: number; path: number[] };
type DerivationFields =
  | { bip32Derivation: [Uint8Array, KeyOrigin][] }
  | { tapInternalKey: Uint8Array; tapBip32Derivation: [Uint8Array, { hashes: Uint8Array[]; der: KeyOrigin }][] };

function parsePath(path: string): number[] {
  return path
    .split("/")
    .filter((step) => step !== "")
    .map((step) => {
      const match = /^(\d+)(h?)$/.exec(step)!; // keys.ts normalised the origin to digits and `h`
      return Number(match[1]) + (match[2] ? HARDENED : 0);
    });
}

/**
 * Where `branch/index` sits for the wallet that signs. With a key origin, it is the full path from the master
 * key named by the origin's fingerprint. Without one (a bare xpub / zpub / tpub / vpub) chainbill knows neither
 * the master fingerprint nor the account's path; what it can say truthfully is the account key's own
 * fingerprint and the path relative to it (m/branch/index). A signer holding the account's private key matches
 * that, and wallets that look their keys up by public key still recognise them; one that matches only master
 * fingerprints does not, which is why a descriptor with its origin is the recommended registration.
 */
function keyOrigin(key: AccountKey, branch: number, index: number): KeyOrigin {
  if (key.origin) return { fingerprint: Number.parseInt(key.origin.fingerprint, 16), path: [...parsePath(key.origin.path), branch, index] };
  return { fingerprint: key.account.fingerprint, path: [branch, index] };
}

function derive(key: AccountKey, branch: number, index: number): Derived {
  const child: HDKey = key.account.deriveChild(branch).deriveChild(index);
  const publicKey = child.publicKey!;
  const network = networkParams(key.network);
  const origin = keyOrigin(key, branch, index);
  if (key.script === "p2tr") {
    // BIP86: the output key is the x-only child key tweaked with no script tree; wallets sign from the internal key.
    const internalKey = publicKey.subarray(1);
    const payment = p2tr(internalKey, undefined, network);
    return {
      publicKey,
      script: payment.script,
      address: payment.address!,
      derivation: { tapInternalKey: internalKey, tapBip32Derivation: [[internalKey, { hashes: [], der: origin }]] },
    };
  }
  const payment = p2wpkh(publicKey, network);
  return { publicKey, script: payment.script, address: payment.address!, derivation: { bip32Derivation: [[publicKey, origin]] } };
}

function checkIndex(index: number, what: string): void {
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw new RefundError("bad-input", `${what} must be an integer in [0, ${MAX_INDEX}].`);
}

/** The account's change address 1/index (where the rest of a partial refund returns). */
export function changeAddress(key: AccountKey, index: number): { address: string; script: string } {
  checkIndex(index, "The change index");
  const derived = derive(key, CHANGE_BRANCH, index);
  return { address: derived.address, script: toHex(derived.script) };
}

const toHex = (bytes: Uint8Array) => Buffer.from(bytes).toString("hex");

// ------------------------------------------------------------------------------------------------ destination

interface Destination {
  script: Uint8Array;
  /** Bitcoin Core's dust limit for this output type (at its default 3 sat/vB dust relay fee). */
  dust: bigint;
}

const NETWORK_NAMES: Record<BitcoinNetwork, string> = {
  mainnet: "a mainnet",
  testnet: "a testnet / signet",
  signet: "a testnet / signet",
  regtest: "a regtest",
};

const ADDRESS_HINTS: Record<BitcoinNetwork, string> = {
  mainnet: "bc1…, 1… or 3…",
  testnet: "tb1…, m…, n… or 2…",
  signet: "tb1…, m…, n… or 2…",
  regtest: "bcrt1…, m…, n… or 2…",
};

/** The decoded address on `network`, or undefined when it is not one of that network's addresses. */
function decodeAddress(address: string, network: BitcoinNetwork): ReturnType<ReturnType<typeof Address>["decode"]> | undefined {
  try {
    return Address(networkParams(network)).decode(address);
  } catch {
    return undefined;
  }
}

function dustLimit(type: string): bigint {
  if (type === "wpkh") return 294n;
  if (type === "wsh" || type === "tr") return 330n;
  return 546n; // P2PKH (546) and P2SH (540): the larger of the two, simply
}

export function parseDestination(input: string, network: BitcoinNetwork): Destination {
  const address = typeof input === "string" ? input.trim() : "";
  const decoded = decodeAddress(address, network);
  if (!decoded) {
    // Which network is it from? Testnet and signet share their addresses; regtest shares only the base58 ones.
    const other = (["mainnet", "testnet", "regtest"] as const).find((candidate) => candidate !== network && decodeAddress(address, candidate));
    if (other) {
      throw new RefundError(
        "wrong-network",
        `The refund address is ${NETWORK_NAMES[other]} address, and this merchant's Bitcoin network is ${network}: coins sent there would be lost. Ask the customer for ${NETWORK_NAMES[network]} address (${ADDRESS_HINTS[network]}).`,
      );
    }
    throw new RefundError(
      "bad-address",
      `The refund address is not a valid Bitcoin address (a character mistyped, a wrong checksum, or not an address at all). Ask the customer for ${NETWORK_NAMES[network]} address (${ADDRESS_HINTS[network]}), without a bitcoin: prefix.`,
    );
  }
  if (decoded.type === "p2a") throw new RefundError("bad-address", "The refund address is a pay-to-anchor output, which anyone can spend: ask the customer for their own address.");
  return { script: OutScript.encode(decoded), dust: dustLimit(decoded.type) };
}

// ------------------------------------------------------------------------------------------------ inputs

interface SpendableInput extends RefundInput {
  derived: Derived;
}

function checkInputs(key: AccountKey, inputs: RefundInput[]): SpendableInput[] {
  if (!Array.isArray(inputs) || inputs.length === 0) throw new RefundError("no-inputs", "The invoice has no received outputs to refund.");
  const seen = new Set<string>();
  return inputs.map((input) => {
    if (!/^[0-9a-fA-F]{64}$/.test(input.txid)) throw new RefundError("bad-input", "An input's txid must be 64 hex digits.");
    if (!Number.isInteger(input.vout) || input.vout < 0 || input.vout > 0xffffffff) throw new RefundError("bad-input", "An input's vout must be an output index.");
    if (typeof input.amountSats !== "bigint" || input.amountSats <= 0n) throw new RefundError("bad-input", "An input's amount must be a positive number of sats (bigint).");
    checkIndex(input.addressIndex, "An input's address index");
    const outpoint = `${input.txid.toLowerCase()}:${input.vout}`;
    if (seen.has(outpoint)) throw new RefundError("bad-input", `The output ${outpoint} is listed twice.`);
    seen.add(outpoint);
    // The wallet can only sign what its key pays: an output of another address would make an unsignable PSBT.
    const derived = derive(key, RECEIVE_BRANCH, input.addressIndex);
    if (toHex(derived.script) !== input.script.toLowerCase()) {
      throw new RefundError("bad-input", `The output ${outpoint} does not pay the account's receive address 0/${input.addressIndex}.`);
    }
    return { ...input, txid: input.txid.toLowerCase(), derived };
  });
}

// ------------------------------------------------------------------------------------------------ size and fee

/** Size of a CompactSize (varint) count. */
const compactSize = (n: number) => (n < 0xfd ? 1 : n <= 0xffff ? 3 : 5);

/**
 * Weight of a signed input. Outpoint 36 + empty scriptSig 1 + sequence 4 bytes, times 4; then the witness:
 * P2WPKH: item count 1 + (1 + 72) signature (a DER signature with a high R is 71 bytes, plus the sighash byte)
 * + (1 + 33) public key = 108 — wallets grinding a low R make 107, so the estimate never falls short;
 * P2TR key path: item count 1 + (1 + 64) Schnorr signature (SIGHASH_DEFAULT adds no byte) = 66.
 */
function inputWeight(script: AccountKey["script"]): number {
  return 41 * 4 + (script === "p2tr" ? 66 : 108);
}

/** Weight of an output: amount 8 + script length + script, all non-witness. */
const outputWeight = (scriptLength: number) => (8 + compactSize(scriptLength) + scriptLength) * 4;

/** Virtual size of the signed transaction: version 4 + counts + lock time 4 bytes, the segwit marker and flag (2 WU). */
function estimateVsize(script: AccountKey["script"], inputCount: number, outputScriptLengths: number[]): number {
  const weight =
    (4 + compactSize(inputCount) + compactSize(outputScriptLengths.length) + 4) * 4 +
    2 +
    inputCount * inputWeight(script) +
    outputScriptLengths.reduce((sum, length) => sum + outputWeight(length), 0);
  return Math.ceil(weight / 4);
}

/** The fee rate in sat/kvB (integer), so the fee is computed without floating point. */
function feeRatePerKvB(feeRate: number): bigint {
  if (typeof feeRate !== "number" || !Number.isFinite(feeRate) || feeRate < 1 || feeRate > MAX_FEE_RATE) {
    throw new RefundError("bad-fee-rate", `The fee rate must be between 1 and ${MAX_FEE_RATE} sat/vB.`);
  }
  return BigInt(Math.round(feeRate * 1000));
}

/** ceil(vsize × rate): rounding up so the fee never falls below the rate asked for. */
const feeFor = (vsize: number, perKvB: bigint) => (BigInt(vsize) * perKvB + 999n) / 1000n;

// ------------------------------------------------------------------------------------------------ the plan

interface Amounts {
  amount: bigint;
  fee: bigint;
  vsize: number;
  change: bigint;
}

/**
 * How much goes where. A full refund pays everything but the fee. A partial one returns the rest to the
 * merchant's change address, unless that change would be dust: then it goes to the fee instead (an output
 * worth less than it costs to spend is not worth creating, and nodes would not relay it).
 */
function splitAmounts(key: AccountKey, inputs: SpendableInput[], destination: Destination, changeScriptLength: number, options: RefundOptions): Amounts {
  const perKvB = feeRatePerKvB(options.feeRate);
  const total = inputs.reduce((sum, input) => sum + input.amountSats, 0n);
  const withoutChange = estimateVsize(key.script, inputs.length, [destination.script.length]);
  const feeWithoutChange = feeFor(withoutChange, perKvB);

  if (options.amountSats === undefined) {
    const amount = total - feeWithoutChange;
    if (amount < destination.dust) {
      throw new RefundError(
        "amount-too-small",
        `The invoice received ${total} sats; after the ${feeWithoutChange}-sat fee at ${options.feeRate} sat/vB the refund would be ${amount} sats, below the ${destination.dust}-sat dust limit nodes relay. Use a lower fee rate, or settle this refund another way.`,
      );
    }
    return { amount, fee: feeWithoutChange, vsize: withoutChange, change: 0n };
  }

  const amount = options.amountSats;
  if (typeof amount !== "bigint" || amount <= 0n) throw new RefundError("bad-amount", "The refund amount must be a positive number of sats (bigint).");
  if (amount < destination.dust) {
    throw new RefundError("amount-too-small", `A refund of ${amount} sats is below the ${destination.dust}-sat dust limit for this address type: nodes would not relay it.`);
  }
  if (amount + feeWithoutChange > total) {
    throw new RefundError(
      "insufficient-funds",
      `The invoice received ${total} sats: not enough for a ${amount}-sat refund plus the ${feeWithoutChange}-sat fee at ${options.feeRate} sat/vB. At most ${total - feeWithoutChange > 0n ? total - feeWithoutChange : 0n} sats can be refunded at this fee rate.`,
    );
  }
  const withChange = estimateVsize(key.script, inputs.length, [destination.script.length, changeScriptLength]);
  const feeWithChange = feeFor(withChange, perKvB);
  const change = total - amount - feeWithChange;
  const changeDust = key.script === "p2tr" ? 330n : 294n;
  if (change < changeDust) return { amount, fee: total - amount, vsize: withoutChange, change: 0n };
  if (options.changeIndex === undefined) {
    throw new RefundError(
      "change-index-required",
      `This partial refund leaves ${change} sats of change: give changeIndex, an unused index of the account's change branch (1/i), so it returns to the merchant's wallet.`,
    );
  }
  return { amount, fee: feeWithChange, vsize: withChange, change };
}

/**
 * Builds the unsigned refund PSBT: the invoice's received outputs (`inputs`) to `destination`, at
 * `options.feeRate` sat/vB; a partial refund (`amountSats`) sends its change to 1/`changeIndex`.
 */
export function buildRefundPsbt(key: AccountKey, inputs: RefundInput[], destination: string, options: RefundOptions): RefundPlan {
  const target = parseDestination(destination, key.network);
  const spendable = checkInputs(key, inputs);
  if (options.changeIndex !== undefined) checkIndex(options.changeIndex, "The change index");
  // The change script's length is all the fee needs; its index may legitimately be absent (full refunds).
  const changeScriptLength = key.script === "p2tr" ? 34 : 22;
  const { amount, fee, vsize, change } = splitAmounts(key, spendable, target, changeScriptLength, options);

  const tx = new Transaction({ version: 2, lockTime: 0 });
  for (const input of spendable) {
    tx.addInput({
      txid: input.txid,
      index: input.vout,
      sequence: RBF_SEQUENCE,
      witnessUtxo: { script: input.derived.script, amount: input.amountSats },
      ...input.derived.derivation,
    });
  }
  tx.addOutput({ script: target.script, amount });
  let changeTo: string | null = null;
  if (change > 0n) {
    // The derivation info on the change output lets the wallet show it as its own rather than as a payment away.
    const derived = derive(key, CHANGE_BRANCH, options.changeIndex!);
    tx.addOutput({ script: derived.script, amount: change, ...derived.derivation });
    changeTo = derived.address;
  }

  return {
    psbt: base64.encode(tx.toPSBT()),
    txid: tx.id,
    amountSats: amount,
    feeSats: fee,
    vsize,
    changeSats: change,
    changeAddress: changeTo,
    inputs: spendable.map((input) => ({ txid: input.txid, vout: input.vout })),
  };
}
