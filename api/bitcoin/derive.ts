/**
 * Batch BIP32 public derivation (children `i` of an extended public key) and BIP341 taproot output keys, for
 * deriving many receive addresses at once, on @noble/curves' secp256k1 (audited): its field `Fp` (arithmetic and
 * batch inversion) and its points (decoding and validation, encoding, the table of multiples of G, the rare sums
 * of two points with the same x).
 *
 * Why: @scure/bip32 and @scure/btc-signer pay a full scalar multiplication and a field inversion for every key
 * (600–1,600 addresses/s on a small server). A public child is `parent + IL·G`: here `IL·G` is a sum of at most
 * 22 entries of a table of precomputed affine multiples of G (one entry per 12-bit digit of IL), and the affine
 * additions of a batch run in rounds that share one field inversion each (Montgomery's trick, `Fp.invertBatch`):
 * ~6 field multiplications per addition. noble 1.2 has no such addition; summing with its projective `add` (a
 * complete formula of ~40 field operations) and `normalizeZ` instead made P2TR addresses ~45% slower, under the
 * 5,000/s target (bench/btc.md), so the chord formula given its inverse is the one piece of curve arithmetic here.
 * A taproot output key is the same computation again (`P + t·G`). Everything here is public (an xpub's children
 * are public), so the arithmetic need not be constant-time.
 */
import { createHash, createHmac } from "node:crypto";
import { secp256k1 } from "@noble/curves/secp256k1";
import { bytesToNumberBE, numberToBytesBE } from "@noble/curves/abstract/utils";
import type { AffinePoint, ProjPointType } from "@noble/curves/abstract/weierstrass";
import type { HDKey } from "@scure/bip32";

/** An affine secp256k1 point (the point at infinity is never stored: a sum that reaches it is `null`). */
export type Point = AffinePoint<bigint>;

const { ProjectivePoint, CURVE } = secp256k1;
const Fp = CURVE.Fp;

/** SEC1 compressed encoding (33 bytes), as in BIP32's serP. */
export function compressed(point: Point): Buffer {
  return Buffer.from(ProjectivePoint.fromAffine(point).toRawBytes(true));
}

// ------------------------------------------------------------------------------------------------ batched sums

/**
 * a + b for a.x ≠ b.x, given 1/(b.x − a.x): the affine chord formula, reduced once per coordinate (`Fp.create`)
 * rather than after every field operation (sums ~10% faster).
 */
function addWithInverse(a: Point, b: Point, inverse: bigint): Point {
  const slope = Fp.create((b.y - a.y) * inverse);
  const x = Fp.create(slope * slope - a.x - b.x);
  return { x, y: Fp.create(slope * (a.x - x) - a.y) };
}

/** a + b for a.x = b.x (2a, or infinity when b = −a): rare, so the library's complete addition and its inversion. */
function addSameX(a: Point, b: Point): Point | null {
  const sum = ProjectivePoint.fromAffine(a).add(ProjectivePoint.fromAffine(b));
  return sum.equals(ProjectivePoint.ZERO) ? null : sum.toAffine();
}

/** One round of pairwise additions in every list (one inversion for all of them); infinities are dropped. */
function addRound(lists: Point[][]): Point[][] {
  const denominators: bigint[] = [];
  for (const list of lists) for (let k = 0; k + 1 < list.length; k += 2) if (list[k].x !== list[k + 1].x) denominators.push(Fp.sub(list[k + 1].x, list[k].x));
  const inverses = Fp.invertBatch(denominators);
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

// ------------------------------------------------------------------------------------------------ multiples of G

/**
 * A scalar's table digits are 12 bits: 22 rows of 4,095 points (~90k points, ~13 MB of heap, ~1 s to build once)
 * make k·G a sum of ≤ 22 points. With bytes (32 rows of 255) it took 32 and addresses were ~25% slower.
 */
const DIGIT_BITS = 12n;
const DIGIT_MASK = (1n << DIGIT_BITS) - 1n;
const ROWS = Math.ceil(256 / Number(DIGIT_BITS));
const ROW_LENGTH = Number(DIGIT_MASK); // digits 1..4095 (a digit 0 adds nothing)
let table: Point[][] | undefined;

/** `table[i][d − 1] = d·2^(12i)·G` for d in 1..4095: digit i of a scalar (from the right) selects one entry. */
function baseTable(): Point[][] {
  if (table) return table;
  const rows: ProjPointType<bigint>[][] = [];
  for (let i = 0, base = ProjectivePoint.BASE; i < ROWS; i += 1) {
    const row = [base];
    for (let d = 2; d <= ROW_LENGTH; d += 1) row.push(row[d - 2].add(base));
    rows.push(row);
    base = row[ROW_LENGTH - 1].add(base); // 4,096·base, the next row's
  }
  // Built in projective coordinates (no inversion per point), made affine with one inversion for the whole table.
  const flat = ProjectivePoint.normalizeZ(rows.flat()).map((point) => point.toAffine());
  return (table = rows.map((_, i) => flat.slice(i * ROW_LENGTH, (i + 1) * ROW_LENGTH)));
}

/** The table points whose sum is k·G (none when k = 0). */
function baseTerms(scalar: bigint): Point[] {
  const rows = baseTable();
  const terms: Point[] = [];
  for (let i = 0, rest = scalar; rest > 0n; i += 1, rest >>= DIGIT_BITS) {
    const digit = Number(rest & DIGIT_MASK);
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
    const tweak = bytesToNumberBE(tweaks[k]);
    if (tweak >= CURVE.n) throw new RangeError(`${name(k)} is invalid (its tweak is not below the curve order): skip this index`);
    return [point, ...baseTerms(tweak)];
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
  const parentPoint = ProjectivePoint.fromHex(parent.publicKey).toAffine();
  return addTweaks(tweaks.map(() => parentPoint), tweaks, (k) => `BIP32 child ${from + k}`);
}

const TAP_TWEAK = createHash("sha256").update("TapTweak").digest();
const tapTweakPrefix = createHash("sha256").update(TAP_TWEAK).update(TAP_TWEAK); // the tagged hash's fixed first block

/** BIP340's x-only encoding: the 32-byte big-endian x-coordinate. */
function xOnly(point: Point): Buffer {
  return Buffer.from(numberToBytesBE(point.x, 32));
}

/** BIP86 output keys (x-only, 32 bytes): each internal key P, even-y lifted, plus TapTweak(x(P))·G. */
export function taprootOutputKeys(internalKeys: Point[], name: (k: number) => string): Buffer[] {
  const lifted = internalKeys.map((point) => (point.y & 1n ? { x: point.x, y: Fp.neg(point.y) } : point));
  const tweaks = lifted.map((point) => tapTweakPrefix.copy().update(xOnly(point)).digest());
  return addTweaks(lifted, tweaks, name).map(xOnly);
}

/** RIPEMD160(SHA256(bytes)), the P2WPKH program. */
export function hash160(bytes: Uint8Array): Buffer {
  return createHash("ripemd160").update(createHash("sha256").update(bytes).digest()).digest();
}
