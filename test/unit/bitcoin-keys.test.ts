import { expect } from "chai";
import { createHash } from "node:crypto";
import { createBase58check } from "@scure/base";
import { HDKey } from "@scure/bip32";
import { mnemonicToSeedSync } from "@scure/bip39";
import { bip21Uri, receiveAddress, receiveAddresses, satsToBtc } from "../../api/bitcoin/addresses";
import { BitcoinKeyError, descriptorChecksum, parseAccountKey, type BitcoinKeyErrorCode } from "../../api/bitcoin/keys";

/**
 * Bitcoin account keys and receive addresses against the published vectors: BIP84 (native segwit, from the
 * account zpub) and BIP86 (taproot, from the account xpub), the BIP380 descriptor checksum, test networks, and
 * every refusal — private keys (never repeated in the error), bad checksums, network mismatches.
 */
const MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";
// BIP84 "Test vectors": account 0 (m/84'/0'/0') zpub and its first receive addresses.
const BIP84_ZPUB = "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgDKf31mGDtKsAYz2oz2AGutZYs";
const BIP84_RECEIVE = ["bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"];
// BIP86 "Test vectors": account 0 (m/86'/0'/0') xpub and its first receive addresses.
const BIP86_XPUB = "xpub6BgBgsespWvERF3LHQu6CnqdvfEvtMcQjYrcRzx53QJjSxarj2afYWcLteoGVky7D3UKDP9QyrLprQ3VCECoY49yfdDEHGCtMMj92pReUsQ";
const BIP86_RECEIVE = ["bc1p5cyxnuxmeuwuvkwfem96lqzszd02n6xdcjrs20cac6yqjjwudpxqkedrcr", "bc1p4qhjn9zdvkux4e44uhx8tc55attvtyu358kutcqkudyccelu0was9fqzwh"];

const base58check = createBase58check((data: Uint8Array) => new Uint8Array(createHash("sha256").update(data).digest()));
const root = HDKey.fromMasterSeed(mnemonicToSeedSync(MNEMONIC));

function refused(input: string, network: Parameters<typeof parseAccountKey>[1], code: BitcoinKeyErrorCode, options: Parameters<typeof parseAccountKey>[2] = {}): BitcoinKeyError {
  try {
    parseAccountKey(input, network, options);
  } catch (error) {
    expect(error).to.be.instanceOf(BitcoinKeyError);
    expect((error as BitcoinKeyError).code, (error as Error).message).to.equal(code);
    return error as BitcoinKeyError;
  }
  throw new Error(`accepted ${input.slice(0, 12)}…`);
}

/** The same key under other SLIP-132 version bytes. */
function withVersion(extended: string, version: number): string {
  const payload = base58check.decode(extended);
  payload.set([version >>> 24, (version >>> 16) & 0xff, (version >>> 8) & 0xff, version & 0xff], 0);
  return base58check.encode(payload);
}

describe("unit: api/bitcoin keys and addresses", () => {
  it("BIP84: the published account zpub gives the published receive addresses (P2WPKH, bech32)", () => {
    const key = parseAccountKey(BIP84_ZPUB, "mainnet");
    expect(key.script).to.equal("p2wpkh");
    expect(receiveAddress(key, 0).address).to.equal(BIP84_RECEIVE[0]);
    expect(receiveAddress(key, 1).address).to.equal(BIP84_RECEIVE[1]);
    expect(receiveAddress(key, 0).script).to.equal(`0014${"c0cebcd6c3d3ca8c75dc5ec62ebe55330ef910e2"}`);
    // The vector's zpub is the account key of the vector's mnemonic.
    expect(withVersion(root.derive("m/84'/0'/0'").publicExtendedKey, 0x04b24746)).to.equal(BIP84_ZPUB);
  });

  it("BIP86: the published account xpub gives the published receive addresses (P2TR key path, bech32m)", () => {
    const key = parseAccountKey(BIP86_XPUB, "mainnet", { script: "p2tr" });
    expect(receiveAddresses(key, 0, 2).map((entry) => entry.address)).to.deep.equal(BIP86_RECEIVE);
    expect(receiveAddress(key, 0).script).to.equal("5120a60869f0dbcf1dc659c9cecbaf8050135ea9e8cdc487053f1dc6880949dc684c");
    expect(root.derive("m/86'/0'/0'").publicExtendedKey).to.equal(BIP86_XPUB);
  });

  it("a descriptor with a key origin gives the same addresses; its BIP380 checksum is checked and produced", () => {
    expect(descriptorChecksum("raw(deadbeef)")).to.equal("89f8spxm"); // BIP380's example
    const fingerprint = root.fingerprint.toString(16).padStart(8, "0");
    const body = `tr([${fingerprint}/86h/0h/0h]${BIP86_XPUB}/0/*)`;
    const key = parseAccountKey(`${body}#${descriptorChecksum(body)}`, "mainnet");
    expect(key.script).to.equal("p2tr");
    expect(key.origin).to.deep.equal({ fingerprint, path: "/86h/0h/0h" });
    expect(key.descriptor).to.equal(`${body}#${descriptorChecksum(body)}`);
    expect(receiveAddress(key, 0).address).to.equal(BIP86_RECEIVE[0]);
    // Without a checksum, with ' for hardened steps, and as a multipath <0;1> descriptor: the same account.
    const same = parseAccountKey(`tr([${fingerprint}/86'/0'/0']${BIP86_XPUB}/<0;1>/*)`, "mainnet");
    expect(same.descriptor).to.equal(key.descriptor);
    const wpkh = parseAccountKey(`wpkh([${fingerprint}/84h/0h/0h]${root.derive("m/84'/0'/0'").publicExtendedKey}/0/*)`, "mainnet");
    expect(receiveAddress(wpkh, 1).address).to.equal(BIP84_RECEIVE[1]);
  });

  it("test networks: a tpub or vpub gives tb1 addresses on testnet and signet, bcrt1 on regtest", () => {
    const account = root.derive("m/84'/1'/0'");
    const tpub = withVersion(account.publicExtendedKey, 0x043587cf);
    const vpub = withVersion(account.publicExtendedKey, 0x045f1cf6);
    const testnet = receiveAddress(parseAccountKey(vpub, "testnet"), 0).address;
    expect(testnet).to.match(/^tb1q[0-9a-z]{38}$/);
    expect(receiveAddress(parseAccountKey(tpub, "signet"), 0).address).to.equal(testnet);
    expect(receiveAddress(parseAccountKey(tpub, "regtest"), 0).address).to.match(/^bcrt1q/);
    expect(receiveAddress(parseAccountKey(tpub, "regtest", { script: "p2tr" }), 0).address).to.match(/^bcrt1p/);
  });

  it("refuses private keys of every form without repeating them", () => {
    const xprv = root.derive("m/84'/0'/0'").privateExtendedKey;
    const secret = new Uint8Array(34);
    secret[0] = 0x80;
    secret.set(root.derive("m/84'/0'/0'/0/0").privateKey!, 1);
    secret[33] = 0x01;
    const wif = base58check.encode(secret);
    const testWif = base58check.encode(new Uint8Array([0xef, ...secret.subarray(1)]));
    for (const [input, network] of [
      [xprv, "mainnet"],
      [withVersion(xprv, 0x04b2430c), "mainnet"], // zprv
      [withVersion(xprv, 0x04358394), "regtest"], // tprv
      [withVersion(xprv, 0x045f18bc), "testnet"], // vprv
      [wif, "mainnet"],
      [testWif, "regtest"],
      [`wpkh(${xprv}/0/*)`, "mainnet"],
      [`${xprv.slice(0, -1)}${xprv.endsWith("1") ? "2" : "1"}`, "mainnet"], // a mistyped xprv is still a private key
    ] as const) {
      const error = refused(input, network, "private-key");
      expect(error.message).to.not.include(input.slice(4, 40));
      expect(error.message).to.match(/never takes one/);
    }
  });

  it("refuses a mistyped key or descriptor (checksum), a key of the other network, wrapped segwit, and what is not a key", () => {
    const typo = `${BIP84_ZPUB.slice(0, 50)}${BIP84_ZPUB[50] === "a" ? "b" : "a"}${BIP84_ZPUB.slice(51)}`;
    expect(refused(typo, "mainnet", "bad-checksum").message).to.match(/mistyped/);
    refused(BIP84_ZPUB, "regtest", "network-mismatch");
    refused(withVersion(BIP86_XPUB, 0x043587cf), "mainnet", "network-mismatch");
    refused(withVersion(BIP86_XPUB, 0x049d7cb2), "mainnet", "unsupported-script"); // ypub
    refused(BIP84_ZPUB, "mainnet", "unsupported-script", { script: "p2tr" });
    const body = `tr(${BIP86_XPUB}/0/*)`;
    refused(`${body}#${"q".repeat(8)}`, "mainnet", "bad-checksum");
    refused(`sh(wpkh(${BIP86_XPUB}/0/*))`, "mainnet", "bad-descriptor");
    refused(`wpkh(${BIP86_XPUB}/0/1/*)`, "mainnet", "bad-descriptor");
    refused("bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu", "mainnet", "bad-checksum");
    refused("", "mainnet", "not-an-account-key");
    refused(`xpub${"\u0000".repeat(4)}`, "mainnet", "bad-checksum");
  });

  it("writes BIP21 amounts exactly from satoshis and percent-encodes the label and message", () => {
    expect(satsToBtc(1n)).to.equal("0.00000001");
    expect(satsToBtc(100_000_000n)).to.equal("1");
    expect(satsToBtc(2_100_000_000_000_000n)).to.equal("21000000");
    expect(satsToBtc(123_456_789n)).to.equal("1.23456789");
    expect(() => satsToBtc(-1n)).to.throw(RangeError);
    expect(bip21Uri(BIP84_RECEIVE[0], 50_000n, { label: "Acme & Co", message: "inv_1 #2" })).to.equal(
      `bitcoin:${BIP84_RECEIVE[0]}?amount=0.0005&label=Acme%20%26%20Co&message=inv_1%20%232`,
    );
    expect(() => receiveAddress(parseAccountKey(BIP84_ZPUB, "mainnet"), 2 ** 31)).to.throw(RangeError);
  });
});
