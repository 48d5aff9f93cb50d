/**
 * A merchant's Bitcoin account key: an extended public key (xpub / zpub on mainnet; tpub / vpub on testnet,
 * signet and regtest) or an output descriptor (`wpkh(...)` or `tr(...)`, with a key origin and `/0/*`), parsed
 * into one normalised form: the account's public key, its network, its script (BIP84 native segwit or BIP86
 * taproot) and the canonical descriptor with its BIP380 checksum.
 *
 * Never a private key: an xprv / zprv / tprv / vprv, a WIF key or a descriptor holding one is refused with an
 * error that never repeats the key (nor is it logged or stored). Errors are `BitcoinKeyError`s with a code and
 * a message that says what to do.
 */
import { HDKey } from "@scure/bip32";
import { createBase58check } from "@scure/base";
import { createHash } from "node:crypto";

export type BitcoinNetwork = "mainnet" | "testnet" | "signet" | "regtest";
export type ScriptType = "p2wpkh" | "p2tr";

export type BitcoinKeyErrorCode =
  | "private-key"
  | "bad-checksum"
  | "network-mismatch"
  | "unsupported-script"
  | "not-an-account-key"
  | "bad-descriptor";

export class BitcoinKeyError extends Error {
  override name = "BitcoinKeyError";
  constructor(
    readonly code: BitcoinKeyErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export interface AccountKey {
  network: BitcoinNetwork;
  script: ScriptType;
  /** The account-level public key (its children 0/i are the receive addresses). */
  account: HDKey;
  /** Master key fingerprint and path of the account, when a descriptor named them. */
  origin: { fingerprint: string; path: string } | null;
  /** The canonical descriptor of the receive branch, `wpkh([origin]xpub/0/*)#checksum`. */
  descriptor: string;
}

const base58check = createBase58check((data: Uint8Array) => new Uint8Array(createHash("sha256").update(data).digest()));

/** SLIP-132 version bytes: which prefix is which network, script and secrecy. */
const VERSIONS: Record<number, { prefix: string; test: boolean; private: boolean; script: ScriptType | "any" | "p2sh-p2wpkh" }> = {
  0x0488b21e: { prefix: "xpub", test: false, private: false, script: "any" },
  0x04b24746: { prefix: "zpub", test: false, private: false, script: "p2wpkh" },
  0x049d7cb2: { prefix: "ypub", test: false, private: false, script: "p2sh-p2wpkh" },
  0x043587cf: { prefix: "tpub", test: true, private: false, script: "any" },
  0x045f1cf6: { prefix: "vpub", test: true, private: false, script: "p2wpkh" },
  0x044a5262: { prefix: "upub", test: true, private: false, script: "p2sh-p2wpkh" },
  0x0488ade4: { prefix: "xprv", test: false, private: true, script: "any" },
  0x04b2430c: { prefix: "zprv", test: false, private: true, script: "p2wpkh" },
  0x049d7878: { prefix: "yprv", test: false, private: true, script: "p2sh-p2wpkh" },
  0x04358394: { prefix: "tprv", test: true, private: true, script: "any" },
  0x045f18bc: { prefix: "vprv", test: true, private: true, script: "p2wpkh" },
  0x044a4e28: { prefix: "uprv", test: true, private: true, script: "p2sh-p2wpkh" },
};

const XPUB = 0x0488b21e;
const TPUB = 0x043587cf;

const PRIVATE_KEY_REFUSAL =
  "This is a private key: chainbill never takes one (it could spend the merchant's coins). It was not stored or logged. Export the account's public key instead (xpub / zpub, or tpub / vpub on test networks; in most wallets: “show account public key” or “export xpub”), or an output descriptor without private keys.";

const isTestNetwork = (network: BitcoinNetwork) => network !== "mainnet";

// ------------------------------------------------------------------------------------------------ BIP380 checksum

const INPUT_CHARSET = "0123456789()[],'/*abcdefgh@:$%{}IJKLMNOPQRSTUVWXYZ&+-.;<=>?!^_|~ijklmnopqrstuvwxyzABCDEFGH`#\"\\ ";
const CHECKSUM_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
const GENERATOR = [0xf5dee51989n, 0xa9fdca3312n, 0x1bab10e32dn, 0x3706b1677an, 0x644d626ffdn];

function polymod(checksum: bigint, value: bigint): bigint {
  const top = checksum >> 35n;
  let next = ((checksum & 0x7ffffffffn) << 5n) ^ value;
  for (let bit = 0; bit < 5; bit += 1) if ((top >> BigInt(bit)) & 1n) next ^= GENERATOR[bit];
  return next;
}

/** The 8-character BIP380 checksum of a descriptor (without its `#…`), or undefined for a character outside the set. */
export function descriptorChecksum(descriptor: string): string | undefined {
  let checksum = 1n;
  let groups = 0n;
  let count = 0;
  for (const character of descriptor) {
    const position = INPUT_CHARSET.indexOf(character);
    if (position === -1) return undefined;
    checksum = polymod(checksum, BigInt(position & 31));
    groups = groups * 3n + BigInt(position >> 5);
    count += 1;
    if (count === 3) {
      checksum = polymod(checksum, groups);
      groups = 0n;
      count = 0;
    }
  }
  if (count > 0) checksum = polymod(checksum, groups);
  for (let index = 0; index < 8; index += 1) checksum = polymod(checksum, 0n);
  checksum ^= 1n;
  let text = "";
  for (let index = 0; index < 8; index += 1) text += CHECKSUM_CHARSET[Number((checksum >> (5n * BigInt(7 - index))) & 31n)];
  return text;
}

// ------------------------------------------------------------------------------------------------ extended keys

function looksLikeWif(text: string): boolean {
  if (!/^[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}$/.test(text)) return false;
  try {
    const payload = base58check.decode(text);
    return (payload[0] === 0x80 || payload[0] === 0xef) && (payload.length === 33 || payload.length === 34);
  } catch {
    return false;
  }
}

/** An extended public key of `network`, re-encoded with the plain xpub/tpub version bytes. */
function parseExtendedKey(text: string, network: BitcoinNetwork): { key: HDKey; script: ScriptType | "any" } {
  if (looksLikeWif(text)) throw new BitcoinKeyError("private-key", PRIVATE_KEY_REFUSAL);
  let payload: Uint8Array;
  try {
    payload = base58check.decode(text);
  } catch {
    const privateLooking = /^[xyztuv]prv/.test(text);
    if (privateLooking) throw new BitcoinKeyError("private-key", PRIVATE_KEY_REFUSAL);
    throw new BitcoinKeyError(
      "bad-checksum",
      "The extended public key's checksum does not match: a character was mistyped or lost when copying. Copy it again from the wallet (it is 111 characters and starts with xpub, zpub, tpub or vpub).",
    );
  }
  if (payload.length !== 78) {
    throw new BitcoinKeyError("not-an-account-key", "This is not an extended public key (xpub / zpub / tpub / vpub, 78 bytes once decoded).");
  }
  const version = ((payload[0] << 24) | (payload[1] << 16) | (payload[2] << 8) | payload[3]) >>> 0;
  const known = VERSIONS[version];
  if (!known) throw new BitcoinKeyError("not-an-account-key", "This is not a Bitcoin extended public key: its version bytes are unknown (expected xpub, zpub, tpub or vpub).");
  if (known.private) throw new BitcoinKeyError("private-key", PRIVATE_KEY_REFUSAL);
  if (known.test !== isTestNetwork(network)) {
    throw new BitcoinKeyError(
      "network-mismatch",
      `A ${known.prefix} is a ${known.test ? "test-network" : "mainnet"} key, and this merchant's Bitcoin network is ${network}: use a ${isTestNetwork(network) ? "tpub or vpub" : "xpub or zpub"} (or change the network).`,
    );
  }
  if (known.script === "p2sh-p2wpkh") {
    throw new BitcoinKeyError(
      "unsupported-script",
      `A ${known.prefix} is for wrapped segwit (P2SH-P2WPKH, BIP49), which chainbill does not generate: export the BIP84 (${known.test ? "vpub" : "zpub"}) or BIP86 (taproot) account key instead.`,
    );
  }
  // @scure/bip32 reads only the plain versions: re-encode SLIP-132 prefixes.
  const plain = new Uint8Array(payload);
  const target = known.test ? TPUB : XPUB;
  plain.set([target >>> 24, (target >>> 16) & 0xff, (target >>> 8) & 0xff, target & 0xff], 0);
  let key: HDKey;
  try {
    key = HDKey.fromExtendedKey(base58check.encode(plain), { private: 0, public: target });
  } catch (error) {
    throw new BitcoinKeyError("not-an-account-key", `This extended public key does not hold a valid public key (${(error as Error).message}).`);
  }
  return { key, script: known.script };
}

// ------------------------------------------------------------------------------------------------ descriptors

const DESCRIPTOR = /^(wpkh|tr)\((?:\[([0-9a-fA-F]{8})((?:\/\d+['h]?)*)\])?([1-9A-HJ-NP-Za-km-z]{100,120})((?:\/\d+['h]?)*?)\/(?:0|<0;1>)\/\*\)$/;

function parseDescriptor(text: string, network: BitcoinNetwork): AccountKey {
  const [body, checksum, ...rest] = text.split("#");
  if (rest.length > 0) throw new BitcoinKeyError("bad-descriptor", "A descriptor holds at most one `#` (before its 8-character checksum).");
  if (checksum !== undefined) {
    const expected = descriptorChecksum(body);
    if (expected === undefined) throw new BitcoinKeyError("bad-descriptor", "The descriptor contains a character descriptors never use.");
    if (checksum !== expected) {
      throw new BitcoinKeyError("bad-checksum", "The descriptor's checksum (after `#`) does not match: it was changed or mistyped. Copy it again from the wallet.");
    }
  }
  if (/[xyztuv]prv|\b[5KLc9][1-9A-HJ-NP-Za-km-z]{50,51}\b/.test(body)) {
    throw new BitcoinKeyError("private-key", PRIVATE_KEY_REFUSAL);
  }
  const match = DESCRIPTOR.exec(body);
  if (!match) {
    throw new BitcoinKeyError(
      "bad-descriptor",
      "Only single-key descriptors of a receive branch are accepted: `wpkh([fingerprint/84h/0h/0h]xpub…/0/*)` or `tr([fingerprint/86h/0h/0h]xpub…/0/*)` (the checksum after `#` is optional; `/<0;1>/*` is read as its receive branch).",
    );
  }
  const [, kind, fingerprint, originPath, extended, extraPath] = match;
  if (extraPath) {
    throw new BitcoinKeyError("bad-descriptor", "The key must be the account key itself, followed directly by `/0/*` (derive the account key first).");
  }
  const { key } = parseExtendedKey(extended, network);
  const script: ScriptType = kind === "tr" ? "p2tr" : "p2wpkh";
  const origin = fingerprint ? { fingerprint: fingerprint.toLowerCase(), path: (originPath ?? "").replace(/'/g, "h") } : null;
  return { network, script, account: key, origin, descriptor: canonicalDescriptor(script, key, origin) };
}

function canonicalDescriptor(script: ScriptType, key: HDKey, origin: AccountKey["origin"]): string {
  const body = `${script === "p2tr" ? "tr" : "wpkh"}(${origin ? `[${origin.fingerprint}${origin.path}]` : ""}${key.publicExtendedKey}/0/*)`;
  return `${body}#${descriptorChecksum(body)}`;
}

/**
 * Parses what a merchant registers: an extended public key (the script from its prefix, or `script` for an
 * xpub / tpub, BIP84 by default) or a descriptor (the script from its function).
 */
export function parseAccountKey(input: string, network: BitcoinNetwork, options: { script?: ScriptType } = {}): AccountKey {
  const text = input.trim();
  if (text.length === 0 || text.length > 1_000) throw new BitcoinKeyError("not-an-account-key", "Give an extended public key (xpub / zpub / tpub / vpub) or an output descriptor.");
  if (text.includes("(")) {
    const parsed = parseDescriptor(text, network);
    if (options.script && options.script !== parsed.script) {
      throw new BitcoinKeyError("unsupported-script", `The descriptor is ${parsed.script === "p2tr" ? "taproot (tr)" : "native segwit (wpkh)"}, not ${options.script}.`);
    }
    return parsed;
  }
  const { key, script: implied } = parseExtendedKey(text, network);
  if (implied !== "any" && options.script && options.script !== implied) {
    throw new BitcoinKeyError("unsupported-script", `A ${text.slice(0, 4)} is for native segwit (BIP84); for taproot, register the BIP86 account's xpub / tpub with script p2tr.`);
  }
  const script: ScriptType = implied === "any" ? (options.script ?? "p2wpkh") : implied;
  return { network, script, account: key, origin: null, descriptor: canonicalDescriptor(script, key, null) };
}
