/**
 * The merchant's own Bitcoin wallet in tests and the demo: a fixed, publicly known BIP39 mnemonic (never for
 * real coins), accounts m/84'/1'/n' (P2WPKH) and
 * m/86'/1'/n' (P2TR) exported as descriptors with their key origin (what Sparrow or Bitcoin Core export), and
 * signing a refund PSBT from its derivation info alone, as a wallet does.
 */
import { HDKey } from "@scure/bip32";
import { mnemonicToSeedSync } from "@scure/bip39";
import { base64 } from "@scure/base";
import { Transaction } from "@scure/btc-signer";

const TESTNET_VERSIONS = { private: 0x04358394, public: 0x043587cf };
const master = HDKey.fromMasterSeed(mnemonicToSeedSync(`${"abandon ".repeat(11)}about`), TESTNET_VERSIONS);
const fingerprint = master.fingerprint.toString(16).padStart(8, "0");

export interface TestWallet {
  descriptor: string;
  /** The account's private extended key (tprv): what chainbill must refuse. */
  privateKey: string;
  /** Signs every input the wallet's keys derive, finalizes, and returns the raw transaction (hex). */
  sign(psbtBase64: string): string;
}

export function testWallet(account: number, script: "p2wpkh" | "p2tr" = "p2wpkh"): TestWallet {
  const purpose = script === "p2tr" ? 86 : 84;
  const node = master.derive(`m/${purpose}'/1'/${account}'`);
  const descriptor = `${script === "p2tr" ? "tr" : "wpkh"}([${fingerprint}/${purpose}h/1h/${account}h]${node.publicExtendedKey}/0/*)`;
  return {
    descriptor,
    privateKey: node.privateExtendedKey,
    sign(psbtBase64) {
      const tx = Transaction.fromPSBT(base64.decode(psbtBase64));
      const signed = tx.sign(master as unknown as Parameters<Transaction["sign"]>[0]);
      if (signed !== tx.inputsLength) throw new Error(`the wallet signed ${signed} of ${tx.inputsLength} inputs`);
      tx.finalize();
      return tx.hex;
    },
  };
}
