/**
 * Batch BIP32 public derivation (children `i` of an extended public key) and BIP341 taproot output keys, for
 * deriving many receive addresses at once.
 *
 * Why: @scure/bip32 and @scure/btc-signer pay a full scalar multiplication and a field inversion for every key
 * (600–1,600 addresses/s on a small server). A public child is `parent + IL·G`: here `IL·G` is a sum of at most
 * 22 entries of a table of precomputed affine multiples of G (one entry per 12-bit digit of IL), and the affine
 * additions of a batch run in rounds that share one field inversion each (Montgomery's trick), so a key costs a few
 * hundred BigInt field multiplications. A taproot output key is the same computation again (`P + t·G`).
 * Everything here is public (an xpub's children are public), so the arithmetic need not be constant-time.
 */
import { createHash, createHmac } from "node:crypto";
import type { HDKey } from "@scure/bip32";

/** An affine secp256k1 point (the point at infinity is never stored: a sum that reaches it is `null`). */
export interface Point {
  x: bigint;
  y: bigint;
}

const P = 2n ** 256n - 2n ** 32n - 977n;
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const N_BYTES = bytes32(N);
const G: Point = {
  x: 0x79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798n,
  y: 0x483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8n,
};

// ------------------------------------------------------------------------------------------------ field

function mod(value: bigint): bigint {
  const rest = value % P;
  return rest < 0n ? rest + P : rest;
}

/** 1/value mod P by the extended Euclidean algorithm (~5× faster than a BigInt Fermat power). */
function invert(value: bigint): bigint {
  let [remainder, nextRemainder] = [P, mod(value)];
  let [coefficient, nextCoefficient] = [0n, 1n];
  while (nextRemainder !== 0n) {
    const quotient = remainder / nextRemainder;
    [remainder, nextRemainder] = [nextRemainder, remainder - quotient * nextRemainder];
    [coefficient, nextCoefficient] = [nextCoefficient, coefficient - quotient * nextCoefficient];
  }
  return mod(coefficient);
}

/** The inverses of nonzero field elements with a single inversion (Montgomery's trick: 3 multiplications each). */
function invertAll(values: bigint[]): bigint[] {
  const prefixes = new Array<bigint>(values.length);
  let product = 1n;
  for (let k = 0; k < values.length; k += 1) {
    prefixes[k] = product;
    product = mod(product * values[k]);
  }
  let inverse = invert(product);
  const inverses = new Array<bigint>(values.length);
  for (let k = values.length - 1; k >= 0; k -= 1) {
    inverses[k] = mod(inverse * prefixes[k]);
    inverse = mod(inverse * values[k]);
  }
  return inverses;
}

function power(base: bigint, exponent: bigint): bigint {
  let result = 1n;
  for (let square = mod(base); exponent > 0n; exponent >>= 1n, square = mod(square * square)) if (exponent & 1n) result = mod(result * square);
  return result;
}

// ------------------------------------------------------------------------------------------------ points

/** a + b for a.x ≠ b.x, given 1/(b.x − a.x). */
function addWithInverse(a: Point, b: Point, inverse: bigint): Point {
  const slope = mod((b.y - a.y) * inverse);
  const x = mod(slope * slope - a.x - b.x);
  return { x, y: mod(slope * (a.x - x) - a.y) };
}

function double(a: Point): Point {
  const slope = mod(3n * mod(a.x * a.x) * invert(2n * a.y));
  const x = mod(slope * slope - 2n * a.x);
  return { x, y: mod(slope * (a.x - x) - a.y) };
}

/** a + b for a.x = b.x: 2a, or the point at infinity when b = −a (secp256k1 has no point with y = 0). */
function addSameX(a: Point, b: Point): Point | null {
  return a.y === b.y ? double(a) : null;
}

/** One round of pairwise additions in every list (one inversion for all of them); infinities are dropped. */
function addRound(lists: Point[][]): Point[][] {
  const denominators: bigint[] = [];
  for (const list of lists) for (let k = 0; k + 1 < list.length; k += 2) if (list[k].x !== list[k + 1].x) denominators.push(list[k + 1].x - list[k].x);
  const inverses = invertAll(denominators);
  let next = 0;
  return lists.map((list) => {
    const sums: Point[] = [];
    for (let k = 0; k + 1 < list.length; k += 2) {
      const [a, b] = [list[k], list[k + 1]];
      const sum = a.x !== b.x ? addWithInverse(a, b, inverses[next++]) : addSameX(a, b);
      if (sum) sums.push(sum);
    }
    if (list.length % 2 === 1) sums.push(list[list.length - 1]);
    return sums;
  });
}

/** The sum of each list (null: the point at infinity), halving every list per round. */
function sumEach(lists: Point[][]): (Point | null)[] {
  let current = lists;
  while (current.some((list) => list.length > 1)) current = addRound(current);
  return current.map((list) => list[0] ?? null);
}

/** The point with x-coordinate `x` and the given y parity (x is known to be on the curve). */
function lift(x: bigint, odd: boolean): Point {
  const y = power(mod(mod(x * x) * x + 7n), (P + 1n) / 4n); // P ≡ 3 (mod 4): a square root by one power
  return { x, y: (y & 1n) === (odd ? 1n : 0n) ? y : P - y };
}

function bytes32(value: bigint): Buffer {
  return Buffer.from(value.toString(16).padStart(64, "0"), "hex");
}

/** SEC1 compressed encoding (33 bytes), as in BIP32's serP. */
export function compressed(point: Point): Buffer {
  return Buffer.concat([Buffer.of(point.y & 1n ? 3 : 2), bytes32(point.x)]);
}

export function fromCompressed(bytes: Uint8Array): Point {
  return lift(BigInt(`0x${Buffer.from(bytes.subarray(1)).toString("hex")}`), bytes[0] === 3);
}

// ------------------------------------------------------------------------------------------------ multiples of G

/**
 * A scalar's table digits are 3 hex characters (12 bits): 22 rows of 4,095 points (~90k points, ~12 MB, ~0.5 s to
 * build once) make k·G a sum of ≤ 22 points. With bytes (32 rows of 255) it took 32 and addresses were ~25% slower.
 */
const DIGIT_HEX = 3;
const ROWS = Math.ceil(64 / DIGIT_HEX);
let table: Point[][] | undefined;

/** `table[i][d − 1] = d·2^(12i)·G` for d in 1..4095: digit i of a scalar (from the right) selects one entry. */
function baseTable(): Point[][] {
  if (table) return table;
  const bases = [G];
  for (let i = 1; i < ROWS; i += 1) {
    let base = bases[i - 1];
    for (let bit = 0; bit < 4 * DIGIT_HEX; bit += 1) base = double(base);
    bases.push(base);
  }
  const rows = bases.map((base) => [base, double(base)]);
  // Row by row would cost an inversion per point: entry d of all rows at once shares one.
  for (let d = 3; d < 16 ** DIGIT_HEX; d += 1) {
    const inverses = invertAll(rows.map((row, i) => bases[i].x - row[d - 2].x));
    rows.forEach((row, i) => row.push(addWithInverse(row[d - 2], bases[i], inverses[i])));
  }
  return (table = rows);
}

/** The table points whose sum is k·G, for a 32-byte big-endian scalar k (none when k = 0). */
function baseTerms(scalar: Uint8Array): Point[] {
  const rows = baseTable();
  const hex = Buffer.from(scalar).toString("hex");
  const terms: Point[] = [];
  for (let i = 0; i < ROWS; i += 1) {
    const digit = parseInt(hex.slice(Math.max(0, 64 - DIGIT_HEX * (i + 1)), 64 - DIGIT_HEX * i), 16);
    if (digit !== 0) terms.push(rows[i][digit - 1]);
  }
  return terms;
}

/** Sums sharing each round's inversion: enough to make it cheap, few enough that intermediate points die young (GC). */
const CHUNK = 64;

/**
 * `points[k] + tweaks[k]·G` for each k (tweaks: 32-byte big-endian scalars). A tweak ≥ n or a sum at infinity is
 * an invalid key (BIP32, BIP341): the error names that entry, `name(k)`.
 */
export function addTweaks(points: Point[], tweaks: Uint8Array[], name: (k: number) => string): Point[] {
  const lists = points.map((point, k) => {
    if (Buffer.compare(tweaks[k], N_BYTES) >= 0) throw new RangeError(`${name(k)} is invalid (its tweak is not below the curve order): skip this index`);
    return [point, ...baseTerms(tweaks[k])];
  });
  const sums: (Point | null)[] = [];
  for (let start = 0; start < lists.length; start += CHUNK) sums.push(...sumEach(lists.slice(start, start + CHUNK)));
  return sums.map((sum, k) => {
    if (!sum) throw new RangeError(`${name(k)} is invalid (the point at infinity): skip this index`);
    return sum;
  });
}

// ------------------------------------------------------------------------------------------------ BIP32, BIP341

/** The public keys of children `from … from + count − 1` (non-hardened) of `parent`. */
export function deriveChildren(parent: HDKey, from: number, count: number): Point[] {
  if (!parent.publicKey || !parent.chainCode) throw new Error("the parent key has no public key or chain code");
  if (parent.depth >= 255) throw new Error("HDKey: depth exceeds the serializable value 255");
  const data = Buffer.concat([parent.publicKey, Buffer.alloc(4)]); // serP(parent) || ser32(i)
  const tweaks = Array.from({ length: count }, (_, k) => {
    data.writeUInt32BE(from + k, 33);
    return createHmac("sha512", parent.chainCode!).update(data).digest().subarray(0, 32); // IL
  });
  const parentPoint = fromCompressed(parent.publicKey);
  return addTweaks(tweaks.map(() => parentPoint), tweaks, (k) => `BIP32 child ${from + k}`);
}

const TAP_TWEAK = createHash("sha256").update("TapTweak").digest();
const tapTweakPrefix = createHash("sha256").update(TAP_TWEAK).update(TAP_TWEAK); // the tagged hash's fixed first block

/** BIP86 output keys (x-only, 32 bytes): each internal key P, even-y lifted, plus TapTweak(x(P))·G. */
export function taprootOutputKeys(internalKeys: Point[], name: (k: number) => string): Buffer[] {
  const lifted = internalKeys.map((point) => (point.y & 1n ? { x: point.x, y: P - point.y } : point));
  const tweaks = lifted.map((point) => tapTweakPrefix.copy().update(bytes32(point.x)).digest());
  return addTweaks(lifted, tweaks, name).map((point) => bytes32(point.x));
}

/** RIPEMD160(SHA256(bytes)), the P2WPKH program. */
export function hash160(bytes: Uint8Array): Buffer {
  return createHash("ripemd160").update(createHash("sha256").update(bytes).digest()).digest();
}
