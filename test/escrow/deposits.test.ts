/**
 * Deposit addresses: every invoice has its own address (CREATE2 of an EIP-1167 clone of DepositForwarder, salt =
 * the invoice's EIP-712 key), computable off-chain, that takes plain transfers from any wallet or exchange. These
 * tests name every case the design decides: exact, under- and overpayment, top-ups, payments after expiry, after
 * payment or void, wrong tokens and ETH on an ERC-20 invoice, the refund address and the automatic refunds before
 * it is known, front-running, the token zoo, batches, and who can move money out of an address (only the escrow,
 * only into the invoice's signed terms or back to the refund address; other tokens by the merchant's owner).
 */
import { expect } from "chai";
import { ethers } from "hardhat";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { getAddress, zeroAddress, type Address } from "viem";
import { depositAddress, depositImplementation, invoiceDepositAddress, type Invoice } from "../../contracts/invoice";
import { DISPUTE_PERIOD, FEE_BPS, HOLD, USDC, setMerchantSigner } from "../helpers/fixture";
import {
  ETH_AMOUNT,
  PaymentStatus,
  RefundReason,
  addressOf,
  escrowFixture,
  expectEscrowSolvent,
  feeOf,
  pinNextBlockTimestamp,
  releaseAtOf,
  signedInvoice,
  testAccount,
  type EscrowFixture,
} from "./helpers";

/** An unpaid, signed invoice and its deposit address. */
async function depositInvoice(f: EscrowFixture, overrides: Partial<Invoice> = {}) {
  const signed = await signedInvoice(f, overrides);
  const deposit = (await f.escrow.depositAddress(signed.invoice)) as Address;
  return { ...signed, deposit };
}

/** The customer's side: a plain transfer of the invoice's currency (or `token`) to the deposit address. */
async function send(f: EscrowFixture, deposit: Address, amount: bigint, currency: "USDC" | "ETH" = "USDC") {
  if (currency === "ETH") return (await f.payer.sendTransaction({ to: deposit, value: amount })).wait();
  return (await f.usdc.connect(f.payer).transfer(deposit, amount)).wait();
}

async function ethBalance(account: string): Promise<bigint> {
  return ethers.provider.getBalance(account);
}

describe("BillingEscrow deposit addresses", () => {
  describe("the address", () => {
    it("is computable off-chain from the escrow and the invoice key, and nothing is deployed there before a sweep", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, key, deposit } = await depositInvoice(f);
      const escrow = await addressOf(f.escrow);
      expect(deposit).to.equal(depositAddress(escrow, key));
      expect(deposit).to.equal(invoiceDepositAddress(f.domain, invoice));
      expect(await f.escrow.DEPOSIT_IMPLEMENTATION()).to.equal(depositImplementation(escrow));
      expect(await ethers.provider.getCode(deposit)).to.equal("0x");
      // Another invoice (even differing only by its id) has another address.
      const other = await depositInvoice(f, { amount: invoice.amount });
      expect(other.deposit).to.not.equal(deposit);
    });

    it("binds the chain and the escrow: the same terms on another escrow deployment have another address", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice } = await depositInvoice(f);
      const second = await ethers.deployContract("BillingEscrow", [f.owner.address, f.feeRecipient.address, FEE_BPS, DISPUTE_PERIOD]);
      const secondAddress = await addressOf(second);
      expect(await second.depositAddress(invoice)).to.not.equal(await f.escrow.depositAddress(invoice));
      const onOtherChain = invoiceDepositAddress({ ...f.domain, chainId: 8453n }, invoice);
      expect(onOtherChain).to.not.equal(invoiceDepositAddress(f.domain, invoice));
      expect(await second.depositAddress(invoice)).to.equal(depositAddress(secondAddress, (await second.invoiceKey(invoice)) as `0x${string}`));
    });

    it("takes a plain ETH send of 21,000 gas before the sweep, and a plain send to the clone after it", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, deposit } = await depositInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });
      const receipt = await send(f, deposit, ETH_AMOUNT, "ETH");
      expect(receipt!.gasUsed).to.equal(21_000n);
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      expect(await ethers.provider.getCode(deposit)).to.not.equal("0x");
      const after = await (await f.payer.sendTransaction({ to: deposit, value: 5n, gasLimit: 30_000 })).wait();
      expect(after!.status).to.equal(1);
      expect(await ethBalance(deposit)).to.equal(5n);
    });
  });

  describe("sweepDeposit", () => {
    it("USDC paid by a plain transfer: a keeper's sweep records the payment exactly as pay would, and it releases to the merchant", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      await send(f, deposit, invoice.amount);
      const at = await pinNextBlockTimestamp();
      const sweep = f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      await expect(sweep)
        .to.emit(f.escrow, "InvoicePaid")
        .withArgs(key, f.merchantId, zeroAddress, invoice.invoiceId, invoice.token, invoice.amount, at + BigInt(HOLD), 0, FEE_BPS);
      await expect(sweep).to.changeTokenBalances(f.usdc, [deposit, await addressOf(f.escrow)], [-invoice.amount, invoice.amount]);
      const record = await f.escrow.payment(key);
      expect(record.status).to.equal(PaymentStatus.Held);
      expect(record.payer).to.equal(zeroAddress);
      expect(record.feeBps).to.equal(FEE_BPS);
      expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
      expect(await f.escrow.depositHeld(key, invoice.token)).to.equal(0);

      await time.increaseTo(await releaseAtOf(f.escrow, key));
      const fee = feeOf(invoice.amount, FEE_BPS);
      await expect(f.escrow.connect(f.keeper).release(invoice)).to.changeTokenBalance(f.usdc, f.payout, invoice.amount - fee);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("ETH paid by a plain send is swept and held the same way", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });
      await send(f, deposit, ETH_AMOUNT, "ETH");
      await expect(f.escrow.connect(f.other).sweepDeposit(invoice, signature)).to.changeEtherBalances([deposit, f.escrow], [-ETH_AMOUNT, ETH_AMOUNT]);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Held);
      expect(await f.escrow.heldAmount(invoice)).to.equal(ETH_AMOUNT);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("underpaid: the sweep reverts with what arrived and what is due, nothing moves; a top-up completes it", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      await send(f, deposit, invoice.amount - 1n);
      await expect(f.escrow.connect(f.keeper).sweepDeposit(invoice, signature))
        .to.be.revertedWithCustomError(f.escrow, "DepositShort")
        .withArgs(invoice.amount - 1n, invoice.amount);
      expect(await f.usdc.balanceOf(deposit)).to.equal(invoice.amount - 1n);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
      await send(f, deposit, 1n); // the smallest unit completes it
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
      expect(await f.usdc.balanceOf(deposit)).to.equal(0);
    });

    it("underpaid ETH: the same, by the wei", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, deposit } = await depositInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });
      await send(f, deposit, ETH_AMOUNT - 1n, "ETH");
      await expect(f.escrow.connect(f.keeper).sweepDeposit(invoice, signature))
        .to.be.revertedWithCustomError(f.escrow, "DepositShort")
        .withArgs(ETH_AMOUNT - 1n, ETH_AMOUNT);
      await send(f, deposit, 1n, "ETH");
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      expect(await f.escrow.heldAmount(invoice)).to.equal(ETH_AMOUNT);
    });

    it("overpaid: the amount is held, the excess is held for the refund address and returned as soon as it is known", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      const excess = USDC(7);
      await send(f, deposit, invoice.amount + excess);
      await expect(f.escrow.connect(f.keeper).sweepDeposit(invoice, signature))
        .to.emit(f.escrow, "DepositHeld")
        .withArgs(key, f.merchantId, invoice.token, excess, excess);
      expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
      expect(await f.escrow.depositHeld(key, invoice.token)).to.equal(excess);
      await expectEscrowSolvent(f.escrow, [invoice]);

      await expect(f.escrow.connect(f.keeper).returnDeposit(invoice))
        .to.be.revertedWithCustomError(f.escrow, "RefundAddressUnknown")
        .withArgs(key);
      const refundTo = testAccount("exchange customer").address;
      await expect(f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, refundTo))
        .to.emit(f.escrow, "RefundAddressSet")
        .withArgs(key, f.merchantId, refundTo, f.merchantOwner.address);
      const returned = f.escrow.connect(f.other).returnDeposit(invoice);
      await expect(returned).to.emit(f.escrow, "DepositReturned").withArgs(key, f.merchantId, refundTo, invoice.token, excess);
      await expect(returned).to.changeTokenBalance(f.usdc, refundTo, excess);
      expect(await f.escrow.depositHeld(key, invoice.token)).to.equal(0);
      expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount); // the payment is untouched
      await expect(f.escrow.returnDeposit(invoice)).to.be.revertedWithCustomError(f.escrow, "NothingDeposited");
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("refuses a signature that is not the merchant signer's, an expired invoice and a paused escrow, moving nothing", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, deposit } = await depositInvoice(f);
      await send(f, deposit, invoice.amount);
      const forged = await f.sign(invoice, testAccount("not the signer"));
      await expect(f.escrow.sweepDeposit(invoice, forged)).to.be.revertedWithCustomError(f.escrow, "InvalidSignature");
      const signature = await f.sign(invoice);
      await f.escrow.connect(f.owner).setPaused(true);
      await expect(f.escrow.sweepDeposit(invoice, signature)).to.be.revertedWithCustomError(f.escrow, "PaymentsPaused");
      await f.escrow.connect(f.owner).setPaused(false);
      await time.increaseTo(invoice.expiresAt);
      await expect(f.escrow.sweepDeposit(invoice, signature)).to.be.revertedWithCustomError(f.escrow, "InvoiceExpired");
      expect(await f.usdc.balanceOf(deposit)).to.equal(invoice.amount);
    });

    it("front-running: whoever sweeps first records the same payment; the later sweep reverts and changes nothing", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      await send(f, deposit, invoice.amount);
      await f.escrow.connect(f.other).sweepDeposit(invoice, signature); // a stranger, ahead of the keeper
      const record = await f.escrow.payment(key);
      expect(record.payer).to.equal(zeroAddress); // not the stranger: the payer never depends on who sweeps
      await expect(f.escrow.connect(f.keeper).sweepDeposit(invoice, signature))
        .to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable")
        .withArgs(PaymentStatus.Held);
      expect(await f.escrow.payment(key)).to.deep.equal(record);
      // And a wallet payment of the swept invoice is refused like any second payment.
      await expect(f.escrow.connect(f.payer).pay(invoice, signature)).to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable");
    });

    it("a signed payer is the payer of record whoever sends the money, and receives the refunds", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f, { payer: f.payer.address as Address });
      await f.usdc.connect(f.other).transfer(deposit, invoice.amount); // someone else's transfer
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      expect((await f.escrow.payment(key)).payer).to.equal(f.payer.address);
      await expect(f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, f.other.address))
        .to.be.revertedWithCustomError(f.escrow, "RefundAddressAlreadySet")
        .withArgs(f.payer.address);
      await expect(f.escrow.connect(f.merchantOwner).refund(invoice, invoice.amount)).to.changeTokenBalance(f.usdc, f.payer, invoice.amount);
    });

    it("sweeps a batch in one transaction; arrays of different lengths and one short deposit revert it all", async () => {
      const f = await loadFixture(escrowFixture);
      const items = [];
      for (let index = 0; index < 3; index += 1) items.push(await depositInvoice(f, { amount: USDC(10 + index) }));
      for (const item of items) await send(f, item.deposit, item.invoice.amount);
      const invoices = items.map((item) => item.invoice);
      const signatures = items.map((item) => item.signature);
      await expect(f.escrow.sweepDeposits(invoices, signatures.slice(1)))
        .to.be.revertedWithCustomError(f.escrow, "LengthMismatch")
        .withArgs(3, 2);
      const short = await depositInvoice(f);
      await send(f, short.deposit, short.invoice.amount - 1n);
      await expect(f.escrow.sweepDeposits([...invoices, short.invoice], [...signatures, short.signature])).to.be.revertedWithCustomError(f.escrow, "DepositShort");
      for (const item of items) expect((await f.escrow.payment(item.key)).status).to.equal(PaymentStatus.None);
      await f.escrow.connect(f.keeper).sweepDeposits(invoices, signatures);
      for (const item of items) expect(await f.escrow.heldAmount(item.invoice)).to.equal(item.invoice.amount);
      await expectEscrowSolvent(f.escrow, invoices);
    });
  });

  describe("the refund address", () => {
    it("is set once by the merchant's owner or signer, never to zero or to the escrow, and not by a stranger", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, key } = await depositInvoice(f);
      const refundTo = testAccount("refund address").address;
      await expect(f.escrow.connect(f.other).setRefundAddress(invoice, refundTo))
        .to.be.revertedWithCustomError(f.escrow, "NotMerchantOperator")
        .withArgs(f.merchantId, f.other.address);
      await expect(f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, zeroAddress)).to.be.revertedWithCustomError(f.escrow, "ZeroAddress");
      await expect(f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, f.escrowAddress))
        .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
        .withArgs(f.escrowAddress);
      // The signer (the service's hot key) may set it: it relays the address the customer gave.
      await setMerchantSigner(f.escrow, f.merchantOwner, f.merchantId, f.keeper);
      await f.escrow.connect(f.keeper).setRefundAddress(invoice, refundTo);
      expect(await f.escrow.refundAddress(invoice)).to.equal(refundTo);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
      // Never the deposit address itself: what is returned would land where it started, for ever.
      const other = await depositInvoice(f);
      await expect(f.escrow.connect(f.merchantOwner).setRefundAddress(other.invoice, other.deposit))
        .to.be.revertedWithCustomError(f.escrow, "InvalidRecipient")
        .withArgs(getAddress(other.deposit));
      await expect(f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, f.other.address))
        .to.be.revertedWithCustomError(f.escrow, "RefundAddressAlreadySet")
        .withArgs(refundTo);
    });

    it("set before the money arrives, it is the payer of record of the sweep", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      const refundTo = testAccount("given at checkout").address;
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, refundTo);
      await send(f, deposit, invoice.amount);
      await expect(f.escrow.connect(f.keeper).sweepDeposit(invoice, signature))
        .to.emit(f.escrow, "InvoicePaid")
        .withArgs(key, f.merchantId, refundTo, invoice.invoiceId, invoice.token, invoice.amount, (v: bigint) => v > 0n, 0, FEE_BPS);
    });

    it("a wallet payment after a refund address was set makes the wallet the payer of its payment, and leaves the refund address of the deposit alone", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      const refundTo = testAccount("given earlier").address;
      await send(f, deposit, USDC(40)); // a customer's partial deposit
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, refundTo);
      await f.escrow.connect(f.other).pay(invoice, signature); // someone else pays from a wallet
      expect((await f.escrow.payment(key)).payer).to.equal(f.other.address);
      expect(await f.escrow.refundAddress(invoice)).to.equal(refundTo);
      await expect(f.escrow.returnDeposit(invoice)).to.changeTokenBalances(f.usdc, [refundTo, f.other], [USDC(40), 0]);
    });

    it("front-running a deposit with pay gains nothing: what the customer sent never goes to the wallet that paid", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, deposit } = await depositInvoice(f);
      await send(f, deposit, USDC(150)); // the customer overpays by 50
      const attacker = f.other;
      const before = await f.usdc.balanceOf(attacker.address);
      await f.escrow.connect(attacker).pay(invoice, signature); // pays 100 before the keeper sweeps
      await expect(f.escrow.connect(attacker).returnDeposit(invoice)).to.be.revertedWithCustomError(f.escrow, "RefundAddressUnknown");
      await expect(f.escrow.connect(attacker).setRefundAddress(invoice, attacker.address)).to.be.revertedWithCustomError(f.escrow, "NotMerchantOperator");
      const customer = testAccount("the real customer").address;
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, customer);
      await expect(f.escrow.connect(attacker).returnDeposit(invoice)).to.changeTokenBalances(f.usdc, [customer, attacker], [USDC(150), 0]);
      expect(await f.usdc.balanceOf(attacker.address)).to.equal(before - invoice.amount);
    });

    it("before it is known, refunds wait (the money stays held); once set, the merchant refund and the automatic refund go there", async () => {
      const f = await loadFixture(escrowFixture);
      const now = BigInt(await time.latest());
      const { invoice, signature, key, deposit } = await depositInvoice(f, { fulfillBy: now + 3_600n });
      await send(f, deposit, invoice.amount);
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      await expect(f.escrow.connect(f.merchantOwner).refund(invoice, USDC(1)))
        .to.be.revertedWithCustomError(f.escrow, "RefundAddressUnknown")
        .withArgs(key);
      await time.increaseTo(invoice.fulfillBy + 1n);
      await expect(f.escrow.connect(f.keeper).refundUnfulfilled(invoice)).to.be.revertedWithCustomError(f.escrow, "RefundAddressUnknown");
      // Nobody can release it either: the invoice was never fulfilled.
      await time.increaseTo(await releaseAtOf(f.escrow, key));
      await expect(f.escrow.connect(f.keeper).release(invoice)).to.be.revertedWithCustomError(f.escrow, "NotFulfilled");
      expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);

      const refundTo = testAccount("refund link").address;
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, refundTo);
      const automatic = f.escrow.connect(f.keeper).refundUnfulfilled(invoice);
      await expect(automatic).to.emit(f.escrow, "InvoiceRefunded").withArgs(key, f.merchantId, refundTo, invoice.token, invoice.amount, invoice.amount, RefundReason.Unfulfilled);
      await expect(automatic).to.changeTokenBalance(f.usdc, refundTo, invoice.amount);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("a refund address that is the customer's own wallet can dispute, and the arbiter's ruling pays it", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f, { arbiter: f.arbiter.address as Address });
      await send(f, deposit, invoice.amount);
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      await expect(f.escrow.connect(f.payer).dispute(invoice)).to.be.revertedWithCustomError(f.escrow, "NotPayer");
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, f.payer.address);
      await f.escrow.connect(f.payer).dispute(invoice);
      const ruling = f.escrow.connect(f.arbiter).resolveDispute(invoice, 10_000);
      await expect(ruling).to.changeTokenBalance(f.usdc, f.payer, invoice.amount);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Refunded);
    });
  });

  describe("money that is not the payment", () => {
    it("a payment after expiry is never swept and goes back to the refund address, not before it is known", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      await expect(f.escrow.returnDeposit(invoice)).to.be.revertedWithCustomError(f.escrow, "RefundAddressUnknown");
      const refundTo = testAccount("late customer").address;
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, refundTo);
      await send(f, deposit, invoice.amount - 5n); // underpaid, never completed
      await expect(f.escrow.returnDeposit(invoice))
        .to.be.revertedWithCustomError(f.escrow, "InvoiceStillPayable")
        .withArgs(invoice.expiresAt);
      await time.increaseTo(invoice.expiresAt);
      await send(f, deposit, 5n); // arrives after expiry
      await expect(f.escrow.sweepDeposit(invoice, signature)).to.be.revertedWithCustomError(f.escrow, "InvoiceExpired");
      const returned = f.escrow.connect(f.keeper).returnDeposit(invoice);
      await expect(returned).to.emit(f.escrow, "DepositReturned").withArgs(key, f.merchantId, refundTo, invoice.token, invoice.amount);
      await expect(returned).to.changeTokenBalances(f.usdc, [deposit, refundTo], [-invoice.amount, invoice.amount]);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("a second payment after the invoice was paid goes back to the refund address named for it (ETH)", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });
      await f.escrow.connect(f.payer).pay(invoice, signature, { value: ETH_AMOUNT });
      await send(f, deposit, ETH_AMOUNT, "ETH"); // the customer paid twice
      await expect(f.escrow.sweepDeposit(invoice, signature)).to.be.revertedWithCustomError(f.escrow, "InvoiceNotPayable");
      await expect(f.escrow.returnDeposit(invoice)).to.be.revertedWithCustomError(f.escrow, "RefundAddressUnknown");
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, f.payer.address);
      const returned = f.escrow.connect(f.other).returnDeposit(invoice);
      await expect(returned).to.emit(f.escrow, "DepositReturned").withArgs(key, f.merchantId, f.payer.address, zeroAddress, ETH_AMOUNT);
      await expect(returned).to.changeEtherBalances([deposit, f.payer], [-ETH_AMOUNT, ETH_AMOUNT]);
      expect(await f.escrow.heldAmount(invoice)).to.equal(ETH_AMOUNT);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("past its fulfillBy the invoice can't be paid, so what sits at its address is returned before expiry", async () => {
      const f = await loadFixture(escrowFixture);
      const now = BigInt(await time.latest());
      const { invoice, signature, deposit } = await depositInvoice(f, { fulfillBy: now + 600n });
      const refundTo = testAccount("slow customer").address;
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, refundTo);
      await send(f, deposit, invoice.amount);
      await expect(f.escrow.returnDeposit(invoice)).to.be.revertedWithCustomError(f.escrow, "InvoiceStillPayable");
      await time.increaseTo(invoice.fulfillBy + 1n);
      await expect(f.escrow.sweepDeposit(invoice, signature)).to.be.revertedWithCustomError(f.escrow, "FulfillByPassed");
      await expect(f.escrow.returnDeposit(invoice)).to.changeTokenBalance(f.usdc, refundTo, invoice.amount);
    });

    it("a payment to a voided invoice is returned at once, before its expiry", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, key, deposit } = await depositInvoice(f);
      await send(f, deposit, invoice.amount);
      await f.escrow.connect(f.merchantOwner).voidInvoice(invoice);
      const refundTo = testAccount("voided").address;
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, refundTo);
      await expect(f.escrow.returnDeposit(invoice)).to.changeTokenBalance(f.usdc, refundTo, invoice.amount);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.Voided);
    });

    it("a wrong token is recovered by the merchant's owner to an address it names, with an event; never the invoice's own token", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      const wrong = await ethers.deployContract("MockStablecoin", ["Tether USD", "USDT", 6]);
      await wrong.mint(f.payer.address, USDC(50));
      await wrong.connect(f.payer).transfer(deposit, USDC(50));
      await send(f, deposit, invoice.amount);
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature); // the USDC; the USDT stays
      expect(await wrong.balanceOf(deposit)).to.equal(USDC(50));
      const wrongAddress = await addressOf(wrong);
      const to = testAccount("merchant support desk").address;
      await expect(f.escrow.connect(f.other).recoverDeposit(invoice, wrongAddress, to))
        .to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner")
        .withArgs(f.merchantId, f.other.address);
      await expect(f.escrow.connect(f.owner).recoverDeposit(invoice, wrongAddress, to)).to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner");
      await expect(f.escrow.connect(f.merchantOwner).recoverDeposit(invoice, invoice.token, to))
        .to.be.revertedWithCustomError(f.escrow, "NotRecoverable")
        .withArgs(invoice.token);
      const recovered = f.escrow.connect(f.merchantOwner).recoverDeposit(invoice, wrongAddress, to);
      await expect(recovered).to.emit(f.escrow, "DepositRecovered").withArgs(key, f.merchantId, to, wrongAddress, USDC(50));
      await expect(recovered).to.changeTokenBalances(wrong, [deposit, to], [-USDC(50), USDC(50)]);
      await expect(f.escrow.connect(f.merchantOwner).recoverDeposit(invoice, wrongAddress, to))
        .to.be.revertedWithCustomError(f.escrow, "NothingDeposited")
        .withArgs(key, wrongAddress);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("ETH sent to an ERC-20 invoice's address: the sweep leaves it, the merchant's owner recovers it", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, key, deposit } = await depositInvoice(f);
      await send(f, deposit, ETH_AMOUNT, "ETH");
      await send(f, deposit, invoice.amount);
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      expect(await ethBalance(deposit)).to.equal(ETH_AMOUNT);
      const to = testAccount("ETH back to the customer").address;
      const recovered = f.escrow.connect(f.merchantOwner).recoverDeposit(invoice, zeroAddress, to);
      await expect(recovered).to.emit(f.escrow, "DepositRecovered").withArgs(key, f.merchantId, to, zeroAddress, ETH_AMOUNT);
      await expect(recovered).to.changeEtherBalances([deposit, to], [-ETH_AMOUNT, ETH_AMOUNT]);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("an ERC-20 sent to an ETH invoice's address is recoverable the same way", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, deposit } = await depositInvoice(f, { token: zeroAddress, amount: ETH_AMOUNT });
      await send(f, deposit, USDC(3));
      const usdc = await addressOf(f.usdc);
      await expect(f.escrow.connect(f.merchantOwner).recoverDeposit(invoice, usdc, f.merchantOwner.address)).to.changeTokenBalance(f.usdc, f.merchantOwner, USDC(3));
      await expect(f.escrow.connect(f.merchantOwner).recoverDeposit(invoice, zeroAddress, f.merchantOwner.address)).to.be.revertedWithCustomError(f.escrow, "NotRecoverable");
    });
  });

  describe("nobody else moves money out of a deposit address", () => {
    it("the clone takes orders from its escrow only; the escrow takes ETH only from the address it is collecting", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, signature, deposit } = await depositInvoice(f);
      await send(f, deposit, invoice.amount + USDC(1));
      await f.escrow.connect(f.keeper).sweepDeposit(invoice, signature);
      const forwarder = await ethers.getContractAt("DepositForwarder", deposit);
      for (const caller of [f.owner, f.merchantOwner, f.payer, f.other]) {
        await expect(forwarder.connect(caller).collect(await addressOf(f.usdc)))
          .to.be.revertedWithCustomError(forwarder, "NotEscrow")
          .withArgs(caller.address);
      }
      expect(await forwarder.ESCROW()).to.equal(f.escrowAddress);
      await expect(f.escrow.connect(f.other).acceptDeposit({ value: 1n }))
        .to.be.revertedWithCustomError(f.escrow, "NotDepositAddress")
        .withArgs(f.other.address);
      // The implementation itself is inert: it holds nothing and obeys only the escrow.
      const implementation = await ethers.getContractAt("DepositForwarder", await f.escrow.DEPOSIT_IMPLEMENTATION());
      await expect(implementation.collect(zeroAddress)).to.be.revertedWithCustomError(implementation, "NotEscrow");
    });

    it("the protocol owner has no function that reaches a deposit: sweep, return and recover follow the invoice's rules", async () => {
      const f = await loadFixture(escrowFixture);
      const { invoice, deposit } = await depositInvoice(f);
      await send(f, deposit, invoice.amount);
      await expect(f.escrow.connect(f.owner).returnDeposit(invoice)).to.be.revertedWithCustomError(f.escrow, "RefundAddressUnknown");
      await expect(f.escrow.connect(f.owner).setRefundAddress(invoice, f.owner.address)).to.be.revertedWithCustomError(f.escrow, "NotMerchantOperator");
      await expect(f.escrow.connect(f.owner).recoverDeposit(invoice, invoice.token, f.owner.address)).to.be.revertedWithCustomError(f.escrow, "NotMerchantOwner");
      expect(await f.usdc.balanceOf(deposit)).to.equal(invoice.amount);
    });
  });

  describe("the token zoo", () => {
    it("fee-on-transfer: the sweep holds exactly the amount when enough arrives, and is short (nothing moves) when the fee eats it", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.feeOnTransferToken);
      await f.feeOnTransferToken.setFeeBps(100); // 1 % on every transfer
      const { invoice, signature, key, deposit } = await depositInvoice(f, { token, amount: USDC(100) });
      await f.feeOnTransferToken.connect(f.payer).transfer(deposit, USDC(100)); // arrives 99, would reach the escrow 98.01
      await expect(f.escrow.sweepDeposit(invoice, signature))
        .to.be.revertedWithCustomError(f.escrow, "DepositShort")
        .withArgs(USDC(99) - USDC(99) / 100n, USDC(100));
      await f.feeOnTransferToken.connect(f.payer).transfer(deposit, USDC(10)); // the top-up a checkout would ask for
      await f.escrow.sweepDeposit(invoice, signature);
      const atDeposit = USDC(99) + USDC(10) - USDC(10) / 100n;
      const received = atDeposit - atDeposit / 100n;
      expect(await f.escrow.heldAmount(invoice)).to.equal(USDC(100));
      expect(await f.escrow.depositHeld(key, token)).to.equal(received - USDC(100));
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("a token without return values is swept like any other", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.noReturnToken);
      const { invoice, signature, deposit } = await depositInvoice(f, { token });
      await f.noReturnToken.connect(f.payer).transfer(deposit, invoice.amount);
      await f.escrow.sweepDeposit(invoice, signature);
      expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("a blocklisted deposit address: the sweep fails with the token's error and nothing is lost; it succeeds once unblocked", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.blocklistToken);
      const { invoice, signature, key, deposit } = await depositInvoice(f, { token });
      await f.blocklistToken.connect(f.payer).transfer(deposit, invoice.amount);
      await f.blocklistToken.setBlocklisted(deposit, true);
      await expect(f.escrow.sweepDeposit(invoice, signature))
        .to.be.revertedWithCustomError(f.blocklistToken, "Blocklisted")
        .withArgs(getAddress(deposit));
      expect(await f.blocklistToken.balanceOf(deposit)).to.equal(invoice.amount);
      expect((await f.escrow.payment(key)).status).to.equal(PaymentStatus.None);
      await f.blocklistToken.setBlocklisted(deposit, false);
      await f.escrow.sweepDeposit(invoice, signature);
      expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
    });

    it("a token that reports failure by returning false (and success with true) is swept by its return value", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.returnsFalseToken);
      const { invoice, signature, deposit } = await depositInvoice(f, { token });
      await f.returnsFalseToken.connect(f.payer).transfer(deposit, invoice.amount);
      await f.escrow.sweepDeposit(invoice, signature);
      expect(await f.returnsFalseToken.balanceOf(deposit)).to.equal(0);
      expect(await f.escrow.heldAmount(invoice)).to.equal(invoice.amount);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });

    it("a reentrant token cannot re-enter the escrow during a sweep or a return", async () => {
      const f = await loadFixture(escrowFixture);
      const token = await addressOf(f.reentrantToken);
      const { invoice, signature, deposit } = await depositInvoice(f, { token });
      await f.reentrantToken.connect(f.payer).transfer(deposit, invoice.amount + 1n);
      const other = await depositInvoice(f, { token });
      await f.reentrantToken.arm(f.escrowAddress, f.escrow.interface.encodeFunctionData("sweepDeposit", [other.invoice, other.signature]));
      await f.escrow.sweepDeposit(invoice, signature);
      expect(await f.reentrantToken.attackSucceeded()).to.equal(false);
      expect((await f.reentrantToken.attackRevertData()).slice(0, 10)).to.equal(f.escrow.interface.getError("ReentrancyGuardReentrantCall")!.selector);
      await f.escrow.connect(f.merchantOwner).setRefundAddress(invoice, f.payer.address);
      await f.reentrantToken.arm(f.escrowAddress, f.escrow.interface.encodeFunctionData("returnDeposit", [invoice]));
      await f.escrow.connect(f.keeper).returnDeposit(invoice);
      expect(await f.reentrantToken.attackSucceeded()).to.equal(false);
      await expectEscrowSolvent(f.escrow, [invoice]);
    });
  });
});

