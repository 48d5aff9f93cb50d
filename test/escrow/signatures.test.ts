/**
 * EIP-712 invoice signatures: the on-chain key and domain match the dApp module (contracts/invoice.ts, viem),
 * only the merchant's current signer can authorise a payment, and any change to the signed terms, the encoding
 * or the signature bytes is refused, as is a signature made for another chain or another deployment.
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture } from "@nomicfoundation/hardhat-network-helpers";
import {
  concat,
  domainSeparator,
  hashDomain,
  keccak256,
  maxUint256,
  parseSignature,
  recoverTypedDataAddress,
  serializeCompactSignature,
  serializeSignature,
  signatureToCompactSignature,
  slice,
  toHex,
  zeroAddress,
  type Address,
} from "viem";
import {
  BILLING_ESCROW_DOMAIN_NAME,
  BILLING_ESCROW_DOMAIN_VERSION,
  billingEscrowDomain,
  invoiceKey,
  invoiceTypedData,
  invoiceTypes,
  signerConsentDigest,
  signerConsentTypes,
  type Invoice,
} from "../../contracts/invoice";
import { DISPUTE_PERIOD, FEE_BPS, registerMerchant, setMerchantSigner } from "../helpers/fixture";
import { PaymentStatus, addressOf, escrowFixture, signedInvoice, testAccount } from "./helpers";

const MAX_UINT32 = 2 ** 32 - 1;
const MAX_UINT64 = 2n ** 64n - 1n;
const SECP256K1_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

/** `calldata` with the high byte of the n-th argument word set: a non-canonical encoding of the same values. */
function withDirtyWord(calldata: string, word: number): string {
  const offset = 2 + 2 * (4 + 32 * word); // "0x", the selector, then the invoice's static words in order
  return `${calldata.slice(0, offset)}ff${calldata.slice(offset + 2)}`;
}

describe("EIP-712 invoice key and domain", () => {
  it("invoiceKey on-chain equals invoice.ts invoiceKey (viem hashTypedData), extreme values included", async () => {
    const f = await loadFixture(escrowFixture);
    const invoices = [
      await f.makeInvoice(),
      await f.makeInvoice({
        token: zeroAddress,
        payer: f.payer.address as Address,
        arbiter: f.arbiter.address as Address,
        fulfillBy: 1_900_000_000n,
        detailsHash: keccak256(toHex("2 x coffee, 1 x cake")),
      }),
      await f.makeInvoice({
        merchantId: MAX_UINT64,
        amount: maxUint256,
        expiresAt: MAX_UINT64,
        holdDuration: MAX_UINT32,
        fulfillBy: MAX_UINT64,
      }),
    ];

    for (const invoice of invoices) {
      expect(await f.escrow.invoiceKey(invoice)).to.equal(invoiceKey(f.domain, invoice));
    }
  });

  it("DOMAIN_SEPARATOR equals viem's hashDomain and domainSeparator of the exported domain", async () => {
    const f = await loadFixture(escrowFixture);
    const types = {
      EIP712Domain: [
        { name: "name", type: "string" },
        { name: "version", type: "string" },
        { name: "chainId", type: "uint256" },
        { name: "verifyingContract", type: "address" },
      ],
    } as const;

    const onChain = await f.escrow.DOMAIN_SEPARATOR();

    expect(onChain).to.equal(hashDomain({ domain: f.domain, types }));
    expect(onChain).to.equal(domainSeparator({ domain: f.domain }));
  });

  it("eip712Domain (ERC-5267) tells wallets the same name, version, chain and contract", async () => {
    const f = await loadFixture(escrowFixture);

    const [fields, name, version, chainId, verifyingContract, salt, extensions] = await f.escrow.eip712Domain();

    expect(fields).to.equal("0x0f"); // name, version, chainId, verifyingContract
    expect(name).to.equal(BILLING_ESCROW_DOMAIN_NAME);
    expect(version).to.equal(BILLING_ESCROW_DOMAIN_VERSION);
    expect(chainId).to.equal(f.chainId);
    expect(verifyingContract).to.equal(f.escrowAddress);
    expect(salt).to.equal(ethers.ZeroHash);
    expect(extensions).to.deep.equal([]);
  });

  it("INVOICE_TYPEHASH hashes the invoice type invoice.ts signs, field for field", async () => {
    const f = await loadFixture(escrowFixture);
    const encodedType = `Invoice(${invoiceTypes.Invoice.map(({ type, name }) => `${type} ${name}`).join(",")})`;

    expect(await f.escrow.INVOICE_TYPEHASH()).to.equal(keccak256(toHex(encodedType)));
  });

  it("SIGNER_CONSENT_TYPEHASH hashes the consent type invoice.ts signs, field for field", async () => {
    const f = await loadFixture(escrowFixture);
    const fields = signerConsentTypes.SignerConsent.map(({ type, name }) => `${type} ${name}`).join(",");

    expect(await f.escrow.SIGNER_CONSENT_TYPEHASH()).to.equal(keccak256(toHex(`SignerConsent(${fields})`)));
  });
});

describe("invoice signatures", () => {
  it("accepts the signature a viem account makes, which recovers to the merchant's registered signer", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);

    expect(await recoverTypedDataAddress({ ...invoiceTypedData(f.domain, invoice), signature })).to.equal(
      f.signer.address,
    );
    await f.escrow.connect(f.payer).pay(invoice, signature);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Held);
  });

  it("refuses a signature by any other key, the merchant owner's included (InvalidSignature)", async () => {
    const f = await loadFixture(escrowFixture);
    const invoice = await f.makeInvoice();
    const impostorSignature = await f.sign(invoice, testAccount("impostor"));
    const { domain, types, message } = invoiceTypedData(f.domain, invoice);
    const ownerSignature = await f.merchantOwner.signTypedData(domain, { Invoice: [...types.Invoice] }, message);

    for (const signature of [impostorSignature, ownerSignature]) {
      await expect(f.escrow.connect(f.payer).pay(invoice, signature)).to.be.revertedWithCustomError(
        f.escrow,
        "InvalidSignature",
      );
    }
  });

  it("accepts an invoice signed by an ERC-1271 contract signer (a smart account), and refuses one it does not approve", async () => {
    const f = await loadFixture(escrowFixture);
    const key = testAccount("smart account key");
    const account = await ethers.deployContract("ContractSigner", [key.address]);
    // The account becomes merchant 1's signer with its own (ERC-1271) consent.
    const consent = {
      merchantId: f.merchantId,
      owner: f.merchantOwner.address as Address,
      payout: f.payout.address as Address,
      nonce: 0n,
      deadline: maxUint256,
    };
    await f.escrow
      .connect(f.merchantOwner)
      .setMerchantSigner(f.merchantId, await account.getAddress(), maxUint256, await key.sign({ hash: signerConsentDigest(f.domain, consent) }));
    const invoice = await f.makeInvoice();
    const key712 = invoiceKey(f.domain, invoice);

    await expect(
      f.escrow.connect(f.payer).pay(invoice, await testAccount("not the key").sign({ hash: key712 })),
    ).to.be.revertedWithCustomError(f.escrow, "InvalidSignature");
    await expect(f.escrow.connect(f.payer).pay(invoice, await key.sign({ hash: key712 }))).to.emit(f.escrow, "InvoicePaid");
  });

  it("refuses another merchant's signer signing for this merchant (InvalidSignature)", async () => {
    const f = await loadFixture(escrowFixture);
    const otherSigner = testAccount("other merchant signer");
    await registerMerchant(f.escrow, f.other, f.other.address, otherSigner);
    const invoice = await f.makeInvoice({ merchantId: f.merchantId });

    await expect(
      f.escrow.connect(f.payer).pay(invoice, await f.sign(invoice, otherSigner)),
    ).to.be.revertedWithCustomError(f.escrow, "InvalidSignature");
  });

  it("refuses terms changed after signing, whichever term changes (InvalidSignature)", async () => {
    const f = await loadFixture(escrowFixture);
    // Merchant 2 shares the signer (with its consent), so a changed merchantId reaches the signature check.
    await registerMerchant(f.escrow, f.other, f.other.address, f.signer);
    const signed = await f.makeInvoice({ fulfillBy: 0n });
    const signature = await f.sign(signed);
    const changes: Partial<Invoice>[] = [
      { merchantId: 2n },
      { invoiceId: keccak256(toHex("another invoice")) },
      { token: (await f.noReturnToken.getAddress()) as Address },
      { amount: signed.amount - 1n },
      { payer: f.payer.address as Address },
      { arbiter: f.payer.address as Address },
      { expiresAt: signed.expiresAt + 1n },
      { holdDuration: 0 },
      { fulfillBy: signed.expiresAt },
      { maxFeeBps: signed.maxFeeBps - 1 },
      { detailsHash: keccak256(toHex("other line items")) },
    ];
    expect(changes.flatMap(Object.keys).sort()).to.deep.equal(invoiceTypes.Invoice.map(({ name }) => name).sort());

    for (const change of changes) {
      await expect(
        f.escrow.connect(f.payer).pay({ ...signed, ...change }, signature),
        `changed ${Object.keys(change)[0]}`,
      ).to.be.revertedWithCustomError(f.escrow, "InvalidSignature");
    }
    await expect(f.escrow.connect(f.payer).pay(signed, signature)).to.emit(f.escrow, "InvoicePaid");
  });

  it("refuses malformed signatures: empty, ERC-2098 compact, v of 0/1, and the high-s twin (InvalidSignature)", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature } = await signedInvoice(f);
    const parsed = parseSignature(signature);
    const compact = serializeCompactSignature(signatureToCompactSignature(parsed)); // ERC-2098, 64 bytes
    const rawParity = concat([slice(signature, 0, 64), toHex(parsed.yParity, { size: 1 })]);
    const highS = serializeSignature({
      r: parsed.r,
      s: toHex(SECP256K1_ORDER - BigInt(parsed.s), { size: 32 }),
      yParity: 1 - parsed.yParity,
    });
    // The high-s twin is a valid ECDSA signature of the same key: only the contract's low-s rule refuses it.
    expect(await recoverTypedDataAddress({ ...invoiceTypedData(f.domain, invoice), signature: highS })).to.equal(
      f.signer.address,
    );

    for (const malformed of ["0x", compact, rawParity, highS]) {
      await expect(f.escrow.connect(f.payer).pay(invoice, malformed)).to.be.revertedWithCustomError(
        f.escrow,
        "InvalidSignature",
      );
    }
  });

  it("refuses a non-canonical encoding of signed terms: dirty high bits never match the signed digest", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, signature, key } = await signedInvoice(f);
    const ARBITER_WORD = 5; // not read by pay, so only the digest can catch it
    const MERCHANT_ID_WORD = 0;

    const payData = f.escrow.interface.encodeFunctionData("pay", [invoice, signature]);
    const releaseData = f.escrow.interface.encodeFunctionData("release", [invoice]);

    await expect(
      f.payer.sendTransaction({ to: f.escrowAddress, data: withDirtyWord(payData, ARBITER_WORD) }),
    ).to.be.revertedWithCustomError(f.escrow, "InvalidSignature");
    await expect(
      f.payer.sendTransaction({ to: f.escrowAddress, data: withDirtyWord(payData, MERCHANT_ID_WORD) }),
    ).to.be.revertedWithoutReason();

    await f.escrow.connect(f.payer).pay(invoice, signature);
    await expect(f.other.sendTransaction({ to: f.escrowAddress, data: withDirtyWord(releaseData, ARBITER_WORD) }))
      .to.be.revertedWithCustomError(f.escrow, "NotHeld")
      .withArgs(PaymentStatus.None);
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Held);
  });

  it("refuses a signature made for another BillingEscrow deployment on the same chain (InvalidSignature)", async () => {
    const f = await loadFixture(escrowFixture);
    const second = await ethers.deployContract("BillingEscrow", [
      f.owner.address,
      f.feeRecipient.address,
      FEE_BPS,
      DISPUTE_PERIOD,
    ]);
    // The same merchant (id 1, same signer) on the second deployment: only the domain differs.
    await registerMerchant(second, f.merchantOwner, f.payout.address, f.signer);
    await f.usdc.connect(f.payer).approve(second, ethers.MaxUint256);
    const { invoice, signature } = await signedInvoice(f);

    await expect(second.connect(f.payer).pay(invoice, signature)).to.be.revertedWithCustomError(
      second,
      "InvalidSignature",
    );
    const secondDomain = billingEscrowDomain(f.chainId, await addressOf(second));
    await expect(second.connect(f.payer).pay(invoice, await f.sign(invoice, f.signer, secondDomain))).to.emit(
      second,
      "InvoicePaid",
    );
  });

  it("refuses a signature made for another chain id (InvalidSignature), whose key differs too", async () => {
    const f = await loadFixture(escrowFixture);
    const invoice = await f.makeInvoice();
    const mainnetDomain = billingEscrowDomain(1n, f.escrowAddress);
    const mainnetSignature = await f.sign(invoice, f.signer, mainnetDomain);

    await expect(f.escrow.connect(f.payer).pay(invoice, mainnetSignature)).to.be.revertedWithCustomError(
      f.escrow,
      "InvalidSignature",
    );
    expect(invoiceKey(mainnetDomain, invoice)).not.to.equal(await f.escrow.invoiceKey(invoice));
  });
});

describe("signer rotation (setMerchantSigner)", () => {
  it("makes invoices signed by the old key unpayable, and the new key's invoices payable", async () => {
    const f = await loadFixture(escrowFixture);
    const nextSigner = testAccount("rotated signer");
    const { invoice: oldKeyInvoice, signature: oldKeySignature } = await signedInvoice(f);

    await setMerchantSigner(f.escrow, f.merchantOwner, f.merchantId, nextSigner);

    await expect(f.escrow.connect(f.payer).pay(oldKeyInvoice, oldKeySignature)).to.be.revertedWithCustomError(
      f.escrow,
      "InvalidSignature",
    );
    await expect(f.escrow.connect(f.payer).pay(oldKeyInvoice, await f.sign(oldKeyInvoice, nextSigner))).to.emit(
      f.escrow,
      "InvoicePaid",
    );
  });

  it("leaves payments made before the rotation releasable", async () => {
    const f = await loadFixture(escrowFixture);
    const { invoice, key } = await f.payInvoice();

    await setMerchantSigner(f.escrow, f.merchantOwner, f.merchantId, testAccount("rotated signer"));

    await expect(f.escrow.connect(f.payer).release(invoice)).to.emit(f.escrow, "InvoiceReleased");
    expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Released);
  });
});
