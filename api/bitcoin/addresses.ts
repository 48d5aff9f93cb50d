/**
 * Receive addresses of a merchant's account key: child `0/index` of the account, as a BIP84 native segwit
 * (P2WPKH, bech32) or BIP86 taproot (P2TR key path, bech32m) address on the merchant's network, and BIP21
 * payment URIs. Amounts are integer satoshis (bigint); the URI's BTC amount is written from them exactly.
 */
import { bech32, bech32m } from "@scure/base";
import { p2tr, p2wpkh, NETWORK, TEST_NETWORK } from "@scure/btc-signer";
import { compressed, deriveChildren, hash160, taprootOutputKeys } from "./derive";
import type { AccountKey, BitcoinNetwork } from "./keys";

/** bech32 prefixes per network (regtest's is `bcrt`). */
const NETWORKS: Record<BitcoinNetwork, typeof NETWORK> = {
  mainnet: NETWORK,
  testnet: TEST_NETWORK,
  signet: TEST_NETWORK,
  regtest: { ...TEST_NETWORK, bech32: "bcrt" },
};

export function networkParams(network: BitcoinNetwork): typeof NETWORK {
  return NETWORKS[network];
}

export interface ReceiveAddress {
  index: number;
  address: string;
  /** The output script paying it (hex), which a watcher matches in transactions. */
  script: string;
}

const MAX_INDEX = 0x7fffffff;

/** The receive address at `index` (non-hardened child 0/index of the account key). */
export function receiveAddress(key: AccountKey, index: number): ReceiveAddress {
  if (!Number.isInteger(index) || index < 0 || index > MAX_INDEX) throw new RangeError(`address index must be an integer in [0, ${MAX_INDEX}]`);
  const child = key.account.deriveChild(0).deriveChild(index);
  const publicKey = child.publicKey!;
  const network = NETWORKS[key.network];
  const payment = key.script === "p2tr" ? p2tr(publicKey.subarray(1), undefined, network) : p2wpkh(publicKey, network);
  return { index, address: payment.address!, script: Buffer.from(payment.script).toString("hex") };
}

/**
 * Many consecutive receive addresses (`from … from + count − 1`), the same as `receiveAddress` gives one by one:
 * derived as a batch (./derive), several times faster than deriving each through @scure/bip32 and btc-signer.
 * An invalid BIP32 child (odds ~2⁻¹²⁷) throws naming its index, where @scure/bip32 would silently hand out the
 * next index's key under this index.
 */
export function receiveAddresses(key: AccountKey, from: number, count: number): ReceiveAddress[] {
  if (!Number.isInteger(count) || count < 0) throw new RangeError("the address count must be a non-negative integer");
  if (!Number.isInteger(from) || from < 0 || from + Math.max(count, 1) - 1 > MAX_INDEX) throw new RangeError(`address indexes must be integers in [0, ${MAX_INDEX}]`);
  const children = deriveChildren(key.account.deriveChild(0), from, count);
  const prefix = NETWORKS[key.network].bech32;
  if (key.script === "p2tr") {
    const outputKeys = taprootOutputKeys(children, (k) => `the taproot output key of receive address ${from + k}`);
    return outputKeys.map((outputKey, k) => segwitAddress(prefix, 1, outputKey, from + k));
  }
  return children.map((child, k) => segwitAddress(prefix, 0, hash160(compressed(child)), from + k));
}

/** A witness v0 (bech32) or v1 (bech32m) address and its output script: OP_0 / OP_1, then a push of the program. */
function segwitAddress(prefix: string, version: 0 | 1, program: Buffer, index: number): ReceiveAddress {
  const words = [version, ...bech32.toWords(program)];
  const address = version === 0 ? bech32.encode(prefix, words) : bech32m.encode(prefix, words);
  const script = `${version === 0 ? "00" : "51"}${program.length.toString(16)}${program.toString("hex")}`;
  return { index, address, script };
}

/** `sats` as a BTC decimal without trailing zeros (BIP21 `amount`), exactly. */
export function satsToBtc(sats: bigint): string {
  if (sats < 0n) throw new RangeError("a negative amount");
  const whole = sats / 100_000_000n;
  const fraction = (sats % 100_000_000n).toString().padStart(8, "0").replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : whole.toString();
}

/** A BIP21 URI: `bitcoin:<address>?amount=<BTC>&label=…&message=…` (parameters percent-encoded). */
export function bip21Uri(address: string, sats: bigint, options: { label?: string; message?: string } = {}): string {
  const parameters = [`amount=${satsToBtc(sats)}`];
  if (options.label) parameters.push(`label=${encodeURIComponent(options.label)}`);
  if (options.message) parameters.push(`message=${encodeURIComponent(options.message)}`);
  return `bitcoin:${address}?${parameters.join("&")}`;
}
