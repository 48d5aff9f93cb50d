import { expect } from "chai";
import { HDKey } from "@scure/bip32";
import { mnemonicToSeedSync } from "@scure/bip39";
import { NETWORK, TEST_NETWORK, p2tr, p2wpkh } from "@scure/btc-signer";
import { secp256k1 } from "@noble/curves/secp256k1";
import { receiveAddresses, type ReceiveAddress } from "../../api/bitcoin/addresses";
import { addTweaks, compressed } from "../../api/bitcoin/derive";
import { parseAccountKey, type AccountKey, type BitcoinNetwork, type ScriptType } from "../../api/bitcoin/keys";

/**
 * The batch derivation of receive addresses (api/bitcoin/derive.ts: a table of multiples of G, batched affine
 * additions) against the plain path it replaces — @scure/bip32's deriveChild and @scure/btc-signer's p2wpkh / p2tr —
 * address by address and script by script, for both script types on mainnet and regtest; the published BIP84 and
 * BIP86 vectors; and the edge cases of the point arithmetic (doubling, infinity, a tweak ≥ n).
 */
const MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
const seed = mnemonicToSeedSync(MNEMONIC);
const roots = { mainnet: HDKey.fromMasterSeed(seed), test: HDKey.fromMasterSeed(seed, { private: 0x04358394, public: 0x043587cf }) }; // xprv/xpub, tprv/tpub
const MAX_INDEX = 2 ** 31 - 1;

/** The account key of `path` as a merchant registers it (its xpub / tpub). */
function account(path: string, network: BitcoinNetwork, script: ScriptType): AccountKey {
  const root = network === "mainnet" ? roots.mainnet : roots.test;
  return parseAccountKey(root.derive(path).publicExtendedKey, network, { script });
}

/** The old implementation: one @scure/bip32 derivation and one btc-signer payment per address. */
function reference(key: AccountKey, index: number): ReceiveAddress {
  const network = key.network === "mainnet" ? NETWORK : { ...TEST_NETWORK, bech32: "bcrt" };
  const publicKey = key.account.deriveChild(0).deriveChild(index).publicKey!;
  const payment = key.script === "p2tr" ? p2tr(publicKey.subarray(1), undefined, network) : p2wpkh(publicKey, network);
  return { index, address: payment.address!, script: Buffer.from(payment.script).toString("hex") };
}

function expectSameAsReference(key: AccountKey, from: number, count: number): void {
  const batch = receiveAddresses(key, from, count);
  expect(batch).to.have.length(count);
  batch.forEach((entry, k) => expect(entry, `index ${from + k}`).to.deep.equal(reference(key, from + k)));
}

const scalar = (value: bigint) => Buffer.from(value.toString(16).padStart(64, "0"), "hex");
const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const G = secp256k1.ProjectivePoint.BASE.toAffine();

describe("unit: api/bitcoin batch derivation", () => {
  it("gives the published BIP84 and BIP86 receive addresses", () => {
    const zpub = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";
    const bip84 = receiveAddresses(parseAccountKey(zpub, "mainnet"), 0, 2);
    expect(bip84.map((entry) => entry.address)).to.deep.equal(["bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"]);
    expect(bip84[0].script).to.equal("0014c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2");
    const xpub = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ";
    const bip86 = receiveAddresses(parseAccountKey(xpub, "mainnet", { script: "p2tr" }), 0, 2);
    expect(bip86.map((entry) => entry.address)).to.deep.equal([
      "bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr",
      "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh",
    ]);
    expect(bip86[0].script).to.equal("5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c");
  });

  for (const [path, network, script] of [
    ["m/84'/0'/0'", "mainnet", "p2wpkh"],
    ["m/86'/0'/0'", "mainnet", "p2tr"],
    ["m/84'/1'/0'", "regtest", "p2wpkh"],
    ["m/86'/1'/0'", "regtest", "p2tr"],
  ] as const) {
    it(`${script} on ${network}: every address and script equals @scure/bip32 + btc-signer's (0…199, 1,000,000, up to 2^31 − 1)`, () => {
      const key = account(path, network, script);
      expectSameAsReference(key, 0, 200);
      expectSameAsReference(key, 1_000_000, 1);
      expectSameAsReference(key, MAX_INDEX - 2, 3);
      expect(receiveAddresses(key, 0, 1)[0].address.startsWith(network === "mainnet" ? "bc1" : "bcrt1")).to.equal(true);
    });
  }

  it("refuses indexes outside the non-hardened range and a negative or fractional count; a count of 0 gives none", () => {
    const key = account("m/84'/0'/0'", "mainnet", "p2wpkh");
    expect(() => receiveAddresses(key, MAX_INDEX, 2)).to.throw(RangeError);
    expect(() => receiveAddresses(key, -1, 1)).to.throw(RangeError);
    expect(() => receiveAddresses(key, 0, -1)).to.throw(RangeError);
    expect(() => receiveAddresses(key, 0, 1.5)).to.throw(RangeError);
    expect(receiveAddresses(key, 5, 0)).to.deep.equal([]);
  });

  it("point arithmetic: P + 0·G = P, G + 1·G doubles, G + (n − 1)·G is the point at infinity, a tweak ≥ n is refused", () => {
    const name = () => "BIP32 child 7";
    expect(compressed(addTweaks([G], [scalar(0n)], name)[0])).to.deep.equal(compressed(G));
    // 2G, a well-known point
    expect(compressed(addTweaks([G], [scalar(1n)], name)[0]).toString("hex")).to.equal("02c6047f9441ed7d6d3045406e95c07cd85c778e4b8cef3ca7abac09b95c709ee5");
    expect(() => addTweaks([G], [scalar(N - 1n)], name)).to.throw(RangeError, "BIP32 child 7 is invalid (the point at infinity): skip this index");
    expect(() => addTweaks([G], [scalar(N)], name)).to.throw(RangeError, "BIP32 child 7 is invalid (its tweak is not below the curve order): skip this index");
    // A batch mixing ordinary sums and the exceptional ones keeps each result in its place.
    const [threeG, same] = addTweaks([G, G], [scalar(2n), scalar(0n)], name);
    expect(compressed(threeG).toString("hex")).to.equal("02f9308a019258c31049344f85f89d5229b531c845836f99b08601f113bce036f9");
    expect(same).to.deep.equal(G);
  });
});
