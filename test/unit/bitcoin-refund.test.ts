import { expect } from "chai";
import { createHash } from "node:crypto";
import { HDKey } from "@scure/bip32";
import { mnemonicToSeedSync } from "@scure/bip39";
import { base64, bech32m, createBase58check } from "@scure/base";
import { p2pkh, p2tr, p2wpkh, Transaction } from "@scure/btc-signer";
// Test-only: an independent signature check (ethers pins this @noble/curves, so it is always installed).
import { schnorr, secp256k1 } from "@noble/curves/secp256k1";
import { parseAccountKey, type AccountKey } from "../../api/bitcoin/keys";
import { receiveAddress } from "../../api/bitcoin/addresses";
import { buildRefundPsbt, changeAddress, RefundError, type RefundInput, type RefundPlan } from "../../api/bitcoin/refund";
import { RegtestChain, REGTEST } from "../../scripts/lib/bitcoin-regtest/chain";

/**
 * Refunds of BTC invoices are unsigned PSBTs the merchant signs in their own wallet. Here a wallet of a fixed
 * mnemonic plays that part: it signs from the PSBT's derivation info alone (as Sparrow or a hardware wallet
 * would), the regtest chain admits and mines the result, and the amounts, fee and txid are what the plan said.
 */
describe("unit: refunds of BTC invoices as unsigned PSBTs (api/bitcoin/refund.ts)", function () {
  this.timeout(60_000);

  const TESTNET_VERSIONS = { private: 0x04358394, public: 0x043587cf };
  const master = HDKey.fromMasterSeed(mnemonicToSeedSync(`${"abandon ".repeat(11)}about`), TESTNET_VERSIONS);
  const fingerprint = master.fingerprint.toString(16).padStart(8, "0");
  const wpkhAccount = master.derive("m/84'/1'/0'");
  const trAccount = master.derive("m/86'/1'/0'");
  const HARDENED = 0x80000000;

  /** The same account key as a SLIP-132 vpub (what Electrum or Sparrow export for a BIP84 testnet account). */
  function asVpub(tpub: string): string {
    const base58check = createBase58check((data: Uint8Array) => new Uint8Array(createHash("sha256").update(data).digest()));
    const payload = new Uint8Array(base58check.decode(tpub));
    payload.set([0x04, 0x5f, 0x1c, 0xf6], 0);
    return base58check.encode(payload);
  }

  const keys = {
    wpkh: parseAccountKey(`wpkh([${fingerprint}/84h/1h/0h]${wpkhAccount.publicExtendedKey}/0/*)`, "regtest"),
    wpkhBare: parseAccountKey(asVpub(wpkhAccount.publicExtendedKey), "regtest"),
    tr: parseAccountKey(`tr([${fingerprint}/86h/1h/0h]${trAccount.publicExtendedKey}/0/*)`, "regtest"),
    trBare: parseAccountKey(trAccount.publicExtendedKey, "regtest", { script: "p2tr" }),
  };

  // Customers' refund addresses, of keys the merchant's wallet does not hold.
  const customer = master.derive("m/84'/1'/7'/0/0");
  const customerWpkh = p2wpkh(customer.publicKey!, REGTEST).address!;
  const customerTr = p2tr(customer.publicKey!.subarray(1), undefined, REGTEST).address!;
  const customerLegacy = p2pkh(customer.publicKey!, REGTEST).address!; // m… / n…, valid on every test network

  const chain = new RegtestChain();
  before(() => chain.fund());

  /** Invoice payments to receive addresses 3 and 5, mined, as the watcher would record them. */
  function payInvoice(key: AccountKey, amounts: bigint[] = [60_000n, 45_000n]): RefundInput[] {
    const indices = [3, 5];
    const inputs = amounts.map((amount, position) => {
      const receive = receiveAddress(key, indices[position]);
      const payment = chain.pay(receive.address, amount);
      const vout = payment.outputs.findIndex((output) => output.script === receive.script && output.amount === amount);
      return { txid: payment.txid, vout, amountSats: amount, script: receive.script, addressIndex: receive.index };
    });
    chain.mine(1);
    return inputs;
  }

  /** btc-signer's HD signer type has non-null keys; @scure/bip32 types them nullable (a public-only key has none). */
  const asSigner = (key: HDKey) => key as unknown as Parameters<Transaction["sign"]>[0];

  /** What the merchant's wallet does: import the PSBT, sign what its keys derive, finalize, extract. */
  function signAsWallet(plan: RefundPlan, signer: HDKey): Transaction {
    const tx = Transaction.fromPSBT(base64.decode(plan.psbt));
    expect(tx.sign(asSigner(signer))).to.equal(tx.inputsLength);
    tx.finalize();
    return tx;
  }

  /**
   * Checks each input's witness against its previous output, as a node would: the regtest chain checks
   * outpoints and amounts but not signatures, and a wrong amount in a PSBT makes a signature nodes reject.
   */
  function expectValidSignatures(signed: Transaction, inputs: RefundInput[]): void {
    const scripts = inputs.map((input) => Buffer.from(input.script, "hex"));
    const amounts = inputs.map((input) => input.amountSats);
    for (let index = 0; index < signed.inputsLength; index += 1) {
      const witness = signed.getInput(index).finalScriptWitness!;
      if (scripts[index][0] === 0x51) {
        // P2TR key path: one 64-byte BIP340 signature (SIGHASH_DEFAULT) by the output key.
        expect(witness).to.have.length(1);
        expect(witness[0]).to.have.length(64);
        const message = signed.preimageWitnessV1(index, scripts, 0, amounts);
        expect(schnorr.verify(witness[0], message, scripts[index].subarray(2))).to.equal(true);
      } else {
        // P2WPKH: DER signature ‖ SIGHASH_ALL and the public key, over the BIP143 digest with its P2PKH script code.
        const [signature, publicKey] = witness;
        expect(Buffer.from(p2wpkh(publicKey).script)).to.deep.equal(scripts[index]);
        expect(signature[signature.length - 1]).to.equal(1);
        const message = signed.preimageWitnessV0(index, p2pkh(publicKey).script, 1, amounts[index]);
        expect(secp256k1.verify(secp256k1.Signature.fromDER(signature.subarray(0, -1)), message, publicKey)).to.equal(true);
      }
    }
  }

  /**
   * Signs, broadcasts and mines the plan; checks it landed as planned; returns the mined transaction.
   * `dustToFee`: a dust change the plan added to the fee, on top of what the rate asks.
   */
  function broadcast(plan: RefundPlan, signer: HDKey, inputs: RefundInput[], feeRate: number, dustToFee = 0n) {
    const signed = signAsWallet(plan, signer);
    expectValidSignatures(signed, inputs);
    expect(signed.id).to.equal(plan.txid); // signatures are witness data: the txid was final when unsigned
    const accepted = chain.acceptRaw(Buffer.from(signed.extract()).toString("hex"));
    expect(accepted.txid).to.equal(plan.txid);
    expect(accepted.rbf).to.equal(true);
    const [block] = chain.mine(1);
    const mined = block.txs.find((tx) => tx.txid === plan.txid)!;
    expect(mined, "the refund is mined").to.not.equal(undefined);
    const received = inputs.reduce((sum, input) => sum + input.amountSats, 0n);
    expect(mined.fee).to.equal(plan.feeSats);
    expect(plan.amountSats + plan.changeSats + plan.feeSats).to.equal(received);
    // The fee meets the rate at the signed size, and overshoots by at most the one vbyte the estimate allows
    // for signatures a byte shorter than the longest (a low R).
    expect(plan.vsize).to.be.within(mined.vsize, mined.vsize + 1);
    expect(Number(plan.feeSats - dustToFee)).to.be.at.least(feeRate * mined.vsize);
    expect(Number(plan.feeSats - dustToFee)).to.be.at.most(Math.ceil(feeRate * (mined.vsize + 1)));
    return mined;
  }

  function refundError(build: () => unknown): RefundError {
    try {
      build();
    } catch (error) {
      expect(error).to.be.instanceOf(RefundError);
      expect((error as RefundError).message).to.not.match(/\n\s+at /); // a message, never a stack
      return error as RefundError;
    }
    throw new Error("expected a RefundError");
  }

  describe("full refunds that the wallet signs and the chain accepts", () => {
    for (const [name, key, signer, feeRate] of [
      ["P2WPKH with a key origin, at 1 sat/vB", "wpkh", master, 1],
      ["P2WPKH with a key origin, at 25 sat/vB", "wpkh", master, 25],
      ["P2WPKH of a bare vpub (signed by the account key)", "wpkhBare", wpkhAccount, 3],
      ["P2TR with a key origin, at 1 sat/vB", "tr", master, 1],
      ["P2TR with a key origin, at 25 sat/vB", "tr", master, 25],
      ["P2TR of a bare tpub (signed by the account key)", "trBare", trAccount, 2],
    ] as const) {
      it(name, () => {
        const inputs = payInvoice(keys[key]);
        const plan = buildRefundPsbt(keys[key], inputs, customerWpkh, { feeRate });
        expect(plan.changeSats).to.equal(0n);
        expect(plan.changeAddress).to.equal(null);
        expect(plan.inputs).to.deep.equal(inputs.map((input) => ({ txid: input.txid, vout: input.vout })));
        const mined = broadcast(plan, signer, inputs, feeRate);
        expect(mined.outputs).to.deep.equal([{ address: customerWpkh, script: mined.outputs[0].script, amount: plan.amountSats }]);
        expect(plan.amountSats).to.equal(105_000n - plan.feeSats);
      });
    }

    it("refunds to taproot and legacy addresses too", () => {
      for (const destination of [customerTr, customerLegacy]) {
        const inputs = payInvoice(keys.wpkh);
        const plan = buildRefundPsbt(keys.wpkh, inputs, destination, { feeRate: 4 });
        const mined = broadcast(plan, master, inputs, 4);
        expect(mined.outputs[0]).to.deep.include({ address: destination, amount: plan.amountSats });
      }
    });
  });

  describe("the PSBT", () => {
    it("round-trips through Transaction.fromPSBT with the previous outputs, derivations and RBF sequence (P2WPKH)", () => {
      const inputs = payInvoice(keys.wpkh);
      const plan = buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 2 });
      const tx = Transaction.fromPSBT(base64.decode(plan.psbt));
      expect(tx.id).to.equal(plan.txid);
      expect(tx.inputsLength).to.equal(2);
      inputs.forEach((input, index) => {
        const psbtInput = tx.getInput(index);
        expect(Buffer.from(psbtInput.txid!).toString("hex")).to.equal(input.txid);
        expect(psbtInput.index).to.equal(input.vout);
        expect(psbtInput.sequence).to.equal(0xfffffffd);
        expect(psbtInput.witnessUtxo!.amount).to.equal(input.amountSats);
        expect(Buffer.from(psbtInput.witnessUtxo!.script).toString("hex")).to.equal(input.script);
        const [[publicKey, origin]] = psbtInput.bip32Derivation!;
        expect(origin.fingerprint).to.equal(0x73c5da0a);
        expect(origin.path).to.deep.equal([84 + HARDENED, 1 + HARDENED, HARDENED, 0, input.addressIndex]);
        expect(publicKey).to.deep.equal(master.derive(`m/84'/1'/0'/0/${input.addressIndex}`).publicKey);
      });
      expect(tx.outputsLength).to.equal(1);
    });

    it("carries tapInternalKey and tapBip32Derivation for P2TR inputs", () => {
      const inputs = payInvoice(keys.tr);
      const tx = Transaction.fromPSBT(base64.decode(buildRefundPsbt(keys.tr, inputs, customerWpkh, { feeRate: 2 }).psbt));
      inputs.forEach((input, index) => {
        const psbtInput = tx.getInput(index);
        const internalKey = master.derive(`m/86'/1'/0'/0/${input.addressIndex}`).publicKey!.subarray(1);
        expect(psbtInput.tapInternalKey).to.deep.equal(internalKey);
        const [[xonly, { hashes, der }]] = psbtInput.tapBip32Derivation!;
        expect(xonly).to.deep.equal(internalKey);
        expect(hashes).to.deep.equal([]);
        expect(der).to.deep.equal({ fingerprint: 0x73c5da0a, path: [86 + HARDENED, 1 + HARDENED, HARDENED, 0, input.addressIndex] });
        expect(psbtInput.bip32Derivation).to.equal(undefined);
      });
    });

    it("names the account key's own fingerprint and the relative path 0/i for a key without origin", () => {
      const inputs = payInvoice(keys.wpkhBare);
      const tx = Transaction.fromPSBT(base64.decode(buildRefundPsbt(keys.wpkhBare, inputs, customerWpkh, { feeRate: 2 }).psbt));
      const [[, origin]] = tx.getInput(0).bip32Derivation!;
      expect(origin).to.deep.equal({ fingerprint: wpkhAccount.fingerprint, path: [0, 3] });
      // A wallet matching only master fingerprints cannot place it: what the descriptor's origin is for.
      expect(() => Transaction.fromPSBT(base64.decode(buildRefundPsbt(keys.wpkhBare, inputs, customerWpkh, { feeRate: 2 }).psbt)).sign(asSigner(master))).to.throw(/No inputs signed/);
    });
  });

  describe("partial refunds", () => {
    for (const [name, key] of [
      ["P2WPKH", "wpkh"],
      ["P2TR", "tr"],
    ] as const) {
      it(`send the change to the account's change address 1/i, marked as the wallet's own (${name})`, () => {
        const inputs = payInvoice(keys[key]);
        const plan = buildRefundPsbt(keys[key], inputs, customerWpkh, { feeRate: 5, amountSats: 30_000n, changeIndex: 7 });
        const change = changeAddress(keys[key], 7);
        expect(plan.amountSats).to.equal(30_000n);
        expect(plan.changeAddress).to.equal(change.address);
        expect(plan.changeSats).to.equal(105_000n - 30_000n - plan.feeSats);

        const output = Transaction.fromPSBT(base64.decode(plan.psbt)).getOutput(1);
        const purpose = key === "tr" ? 86 : 84;
        const changeKey = master.derive(`m/${purpose}'/1'/0'/1/7`).publicKey!;
        const path = [purpose + HARDENED, 1 + HARDENED, HARDENED, 1, 7];
        if (key === "tr") {
          expect(output.tapInternalKey).to.deep.equal(changeKey.subarray(1));
          expect(output.tapBip32Derivation).to.deep.equal([[changeKey.subarray(1), { hashes: [], der: { fingerprint: 0x73c5da0a, path } }]]);
        } else {
          expect(output.bip32Derivation).to.deep.equal([[changeKey, { fingerprint: 0x73c5da0a, path }]]);
        }

        const mined = broadcast(plan, master, inputs, 5);
        expect(mined.outputs[0]).to.deep.include({ address: customerWpkh, amount: 30_000n });
        expect(mined.outputs[1]).to.deep.equal({ address: change.address, script: change.script, amount: plan.changeSats });
      });
    }

    it("add a change below the dust limit to the fee instead of creating it", () => {
      const inputs = payInvoice(keys.wpkh);
      const full = buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 3 });
      const plan = buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 3, amountSats: full.amountSats - 200n, changeIndex: 1 });
      expect(plan.changeAddress).to.equal(null);
      expect(plan.changeSats).to.equal(0n);
      expect(plan.feeSats).to.equal(full.feeSats + 200n);
      const mined = broadcast(plan, master, inputs, 3, 200n);
      expect(mined.outputs).to.have.length(1);
    });

    it("need a change index when there is change to return", () => {
      const inputs = payInvoice(keys.wpkh);
      expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 3, amountSats: 30_000n })).code).to.equal("change-index-required");
    });
  });

  it("can be bumped: a refund at a higher fee rate replaces the stuck one (RBF)", () => {
    const inputs = payInvoice(keys.wpkh);
    const stuck = buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 1 });
    chain.acceptRaw(Buffer.from(signAsWallet(stuck, master).extract()).toString("hex"));
    const bumped = buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 12 });
    chain.acceptRaw(Buffer.from(signAsWallet(bumped, master).extract()).toString("hex"));
    expect(chain.mempool.has(stuck.txid)).to.equal(false);
    expect(chain.mempool.has(bumped.txid)).to.equal(true);
    chain.mine(1);
  });

  describe("refusals", () => {
    const inputs: RefundInput[] = [];
    before(() => inputs.push(...payInvoice(keys.wpkh)));

    it("a refund below the dust limit of the destination's type (294 sats P2WPKH, 330 P2TR)", () => {
      expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 1, amountSats: 293n, changeIndex: 0 })).code).to.equal("amount-too-small");
      expect(buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 1, amountSats: 294n, changeIndex: 0 }).amountSats).to.equal(294n);
      expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, customerTr, { feeRate: 1, amountSats: 329n, changeIndex: 0 })).code).to.equal("amount-too-small");
      expect(buildRefundPsbt(keys.wpkh, inputs, customerTr, { feeRate: 1, amountSats: 330n, changeIndex: 0 }).amountSats).to.equal(330n);
      expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, customerLegacy, { feeRate: 1, amountSats: 545n, changeIndex: 0 })).code).to.equal("amount-too-small");
    });

    it("a full refund the fee would eat down to dust", () => {
      const small = payInvoice(keys.wpkh, [1_000n]);
      const error = refundError(() => buildRefundPsbt(keys.wpkh, small, customerWpkh, { feeRate: 25 }));
      expect(error.code).to.equal("amount-too-small");
      expect(error.message).to.match(/1000 sats/);
    });

    it("more than was received, once the fee is counted", () => {
      expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 1, amountSats: 105_000n })).code).to.equal("insufficient-funds");
      expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 1, amountSats: 200_000n, changeIndex: 0 })).code).to.equal("insufficient-funds");
      const full = buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 1 });
      expect(buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 1, amountSats: full.amountSats }).feeSats).to.equal(full.feeSats);
      expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate: 1, amountSats: full.amountSats + 1n })).code).to.equal("insufficient-funds");
    });

    it("an address of another network", () => {
      const mainnet = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";
      const testnet = "tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx";
      for (const address of [mainnet, testnet, "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"]) {
        const error = refundError(() => buildRefundPsbt(keys.wpkh, inputs, address, { feeRate: 1 }));
        expect(error.code, address).to.equal("wrong-network");
        expect(error.message).to.match(/regtest/);
      }
      // The other way round: a mainnet account refuses test-network addresses.
      const mainnetAccount = HDKey.fromMasterSeed(mnemonicToSeedSync(`${"abandon ".repeat(11)}about`)).derive("m/84'/0'/0'");
      const mainnetKey = parseAccountKey(mainnetAccount.publicExtendedKey, "mainnet");
      const mainnetInputs = [3, 5].map((addressIndex, position) => {
        const receive = receiveAddress(mainnetKey, addressIndex);
        return { txid: `${position}`.repeat(64), vout: 0, amountSats: 50_000n, script: receive.script, addressIndex };
      });
      expect(buildRefundPsbt(mainnetKey, mainnetInputs, mainnet, { feeRate: 1 }).amountSats).to.be.greaterThan(0n);
      for (const address of [testnet, customerWpkh, customerLegacy]) {
        expect(refundError(() => buildRefundPsbt(mainnetKey, mainnetInputs, address, { feeRate: 1 })).code, address).to.equal("wrong-network");
      }
    });

    it("garbage, a wrong checksum, mixed case, a URI and an anyone-can-spend anchor", () => {
      const anchor = bech32m.encode("bcrt", [1, ...bech32m.toWords(new Uint8Array([0x4e, 0x73]))]);
      const flipped = customerWpkh.slice(0, -1) + (customerWpkh.endsWith("q") ? "p" : "q");
      const mixed = customerWpkh.slice(0, 6) + customerWpkh.slice(6).toUpperCase();
      for (const address of ["", "hello", "bcrt1", flipped, mixed, `bitcoin:${customerWpkh}?amount=0.001`, anchor, "x".repeat(10_000)]) {
        expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, address, { feeRate: 1 })).code, address).to.equal("bad-address");
      }
      // An all-uppercase bech32 address is valid (BIP173: QR codes).
      expect(buildRefundPsbt(keys.wpkh, inputs, customerWpkh.toUpperCase(), { feeRate: 1 }).amountSats).to.be.greaterThan(0n);
    });

    it("no inputs, inputs that are not the account's, and fee rates below 1 sat/vB", () => {
      expect(refundError(() => buildRefundPsbt(keys.wpkh, [], customerWpkh, { feeRate: 1 })).code).to.equal("no-inputs");
      expect(refundError(() => buildRefundPsbt(keys.wpkh, [{ ...inputs[0], addressIndex: 4 }], customerWpkh, { feeRate: 1 })).code).to.equal("bad-input");
      expect(refundError(() => buildRefundPsbt(keys.tr, inputs, customerWpkh, { feeRate: 1 })).code).to.equal("bad-input");
      expect(refundError(() => buildRefundPsbt(keys.wpkh, [inputs[0], inputs[0]], customerWpkh, { feeRate: 1 })).code).to.equal("bad-input");
      for (const feeRate of [0, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        expect(refundError(() => buildRefundPsbt(keys.wpkh, inputs, customerWpkh, { feeRate })).code, String(feeRate)).to.equal("bad-fee-rate");
      }
    });
  });
});
