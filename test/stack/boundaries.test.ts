/**
 * Boundaries a careless implementation gets wrong, on a deployment that charges a protocol fee (1 %): expiry at
 * exactly `expiresAt` (and a paid invoice that outlives it), the statement period's end bound (an entry exactly
 * at `to` belongs to the next period), protocol fees end to end against the chain, the fee cap signed into every
 * invoice, and hostile text in a CSV cell.
 */
import { expect } from "chai";
import { getAddress, parseEventLogs, type Address, type Hex } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { termsFromJson, type InvoiceTermsJson } from "../../api/invoices/instructions";
import { createMerchant, invoicesOf, mintStablecoin, mockStablecoinAbi, mockStablecoinArtifact, payWithInstructions, startStack, testAccount, usdc, waitUntil, type InvoiceJson, type LocalChain, type Stack, type TestMerchant } from "./harness";

interface Statement {
  chains: {
    openingBalanceBaseUnits: string;
    closingBalanceBaseUnits: string;
    totals: { paidBaseUnits: string; releasedBaseUnits: string; feesBaseUnits: string; refundedBaseUnits: string };
    entries: { kind: string; amountBaseUnits: string; transactionHash: Hex; timestamp: string }[];
  }[];
}

const FEE_BPS = 100;

describe("stack: boundaries, fees and hostile text", function () {
  this.timeout(300_000);
  let stack: Stack;
  let chain: LocalChain;
  let merchant: TestMerchant;
  let token: Address;
  let escrow: Address;
  let create: ReturnType<typeof invoicesOf>["create"];
  let read: ReturnType<typeof invoicesOf>["read"];

  before(async () => {
    stack = await startStack({ feeBps: FEE_BPS });
    chain = stack.chains[0];
    token = chain.deployment.contracts.MockStablecoin!.address;
    escrow = chain.deployment.contracts.BillingEscrow.address;
    merchant = await createMerchant(stack, 1, "Boundary merchant");
    for (const holder of [4, 5, 6]) await mintStablecoin(chain, holder, usdc(1000));
    ({ create, read } = invoicesOf(stack, merchant, chain));
  });
  after(async () => {
    await stack?.stop();
  });

  /** The next block (and only it: interval mining is off meanwhile) gets exactly `timestamp`. */
  async function atTimestamp<T>(timestamp: bigint, action: () => Promise<T>): Promise<T> {
    await chain.client.request({ method: "evm_setNextBlockTimestamp", params: [Number(timestamp)] } as never);
    return action();
  }

  describe("expiry, to the second", () => {
    before(async () => {
      await chain.client.request({ method: "evm_setIntervalMining", params: [0] } as never);
    });
    after(async () => {
      await chain.client.request({ method: "evm_setIntervalMining", params: [1000] } as never);
    });

    it("an invoice is open one second before expiresAt and expired at exactly expiresAt", async () => {
      const invoice = await create({ amount: "1.00", currency: "USDC", expiresInSeconds: 120 });
      const expiresAt = BigInt(invoice.payment.evm!.invoice.expiresAt);
      await atTimestamp(expiresAt - 1n, () => chain.client.request({ method: "evm_mine", params: [] } as never));
      await waitUntil("the block at expiresAt - 1", async () => (await read(invoice.id)).status === "open" && BigInt((await chain.client.getBlock()).timestamp) === expiresAt - 1n);
      expect((await read(invoice.id)).status).to.equal("open");
      await atTimestamp(expiresAt, () => chain.client.request({ method: "evm_mine", params: [] } as never));
      await waitUntil("expired at expiresAt", async () => (await read(invoice.id)).status === "expired", 15_000);
    });

    it("a payment in the block one second before expiresAt succeeds, and the invoice stays paid after expiresAt", async () => {
      const invoice = await create({ amount: "2.00", currency: "USDC", expiresInSeconds: 120 });
      const expiresAt = BigInt(invoice.payment.evm!.invoice.expiresAt);
      const [approve, pay] = invoice.payment.evm!.transactions;
      await payWithInstructions(chain, 4, [approve]);
      const [hash] = await atTimestamp(expiresAt - 1n, () => payWithInstructions(chain, 4, [pay]));
      const block = await chain.client.getBlock({ blockNumber: (await chain.client.getTransactionReceipt({ hash })).blockNumber });
      expect(block.timestamp).to.equal(expiresAt - 1n);
      await waitUntil("paid", async () => (await read(invoice.id)).status === "paid");
      await atTimestamp(expiresAt + 3600n, () => chain.client.request({ method: "evm_mine", params: [] } as never));
      await waitUntil("the later block indexed", async () => BigInt((await chain.client.getBlock()).timestamp) >= expiresAt + 3600n);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect((await read(invoice.id)).status).to.equal("paid");
    });
  });

  describe("protocol fees end to end", () => {
    let paid: InvoiceJson;

    it("signs the escrow's fee into the terms as the merchant's maximum", async () => {
      paid = await create({ amount: "100.00", currency: "USDC" });
      expect(paid.maxFeeBps).to.equal(FEE_BPS);
      expect(paid.payment.evm!.invoice.maxFeeBps).to.equal(FEE_BPS);
    });

    it("a release pays the payout 99 % and accrues 1 %; the statement's fee entries and totals equal the chain", async () => {
      await payWithInstructions(chain, 5, paid.payment.evm!.transactions);
      await waitUntil("paid", async () => (await read(paid.id)).status === "paid");
      const payoutBefore = (await chain.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [merchant.payout] })) as bigint;
      const feesBefore = await chain.client.readContract({ address: escrow, abi: billingEscrowAbi, functionName: "accruedFees", args: [token] });
      const hash = await chain.wallet(9).writeContract({ address: escrow, abi: billingEscrowAbi, functionName: "release", args: [termsFromJson(paid.payment.evm!.invoice as InvoiceTermsJson)], chain: null });
      const receipt = await chain.client.waitForTransactionReceipt({ hash });
      const [released] = parseEventLogs({ abi: billingEscrowAbi, eventName: "InvoiceReleased", logs: receipt.logs });
      expect(released.args.fee).to.equal(usdc(1));
      expect(released.args.amount).to.equal(usdc(99));
      const payoutAfter = (await chain.client.readContract({ address: token, abi: mockStablecoinAbi, functionName: "balanceOf", args: [merchant.payout] })) as bigint;
      expect(payoutAfter - payoutBefore).to.equal(usdc(99));
      expect((await chain.client.readContract({ address: escrow, abi: billingEscrowAbi, functionName: "accruedFees", args: [token] })) - feesBefore).to.equal(usdc(1));

      await waitUntil("released", async () => (await read(paid.id)).status === "released");
      const view = await read(paid.id);
      expect([view.releasedAmount, view.feeAmount, view.heldAmount]).to.deep.equal(["99.00", "1.00", "0.00"]);
      const statement = (await (await stack.api("GET", `/v1/statements?currency=USDC&chainId=${chain.id}&limit=1000`, { key: merchant.apiKey })).json()) as Statement;
      const part = statement.chains[0];
      const ofRelease = part.entries.filter((entry) => entry.transactionHash === hash);
      expect(ofRelease.map((entry) => [entry.kind, entry.amountBaseUnits]).sort()).to.deep.equal([["fee", (-usdc(1)).toString()], ["release", (-usdc(99)).toString()]]);
      expect(BigInt(part.totals.feesBaseUnits)).to.equal(usdc(1));
      // Everything held for the merchant by the escrow at the statement's end: what was paid minus what left.
      const held = BigInt(part.totals.paidBaseUnits) - BigInt(part.totals.refundedBaseUnits) - BigInt(part.totals.releasedBaseUnits) - BigInt(part.totals.feesBaseUnits);
      expect(BigInt(part.closingBalanceBaseUnits) - BigInt(part.openingBalanceBaseUnits)).to.equal(held);
    });

    it("an invoice signed with a 1 % cap cannot be paid once the owner raises the fee; new invoices carry the new fee", async () => {
      const capped = await create({ amount: "10.00", currency: "USDC" });
      const raise = await chain.wallet(0).writeContract({ address: escrow, abi: billingEscrowAbi, functionName: "setFee", args: [200], chain: null });
      await chain.client.waitForTransactionReceipt({ hash: raise });
      const [approve, pay] = capped.payment.evm!.transactions;
      await payWithInstructions(chain, 6, [approve]);
      let refused = "";
      try {
        await chain.client.simulateContract({ account: testAccount(6), address: pay.to as Address, abi: billingEscrowAbi, functionName: "pay", args: [termsFromJson(capped.payment.evm!.invoice as InvoiceTermsJson), capped.payment.evm!.signature as Hex] });
      } catch (error) {
        refused = String(error);
      }
      expect(refused).to.contain("FeeAboveMaximum");
      await waitUntil("the API to see the new fee", async () => (await create({ amount: "1.00", currency: "USDC" })).maxFeeBps === 200, 20_000);
    });
  });

  describe("the statement period's end bound", () => {
    it("an entry exactly at `to` belongs to the next period; one second later it is in", async () => {
      const invoice = await create({ amount: "3.00", currency: "USDC" });
      const [hash] = (await payWithInstructions(chain, 4, invoice.payment.evm!.transactions)).slice(-1);
      const block = await chain.client.getBlock({ blockNumber: (await chain.client.getTransactionReceipt({ hash })).blockNumber });
      await waitUntil("paid", async () => (await read(invoice.id)).status === "paid");
      const at = (seconds: bigint) => new Date(Number(seconds) * 1000).toISOString();
      const statement = async (to: bigint) =>
        (await (await stack.api("GET", `/v1/statements?currency=USDC&chainId=${chain.id}&from=${at(block.timestamp - 60n)}&to=${at(to)}&limit=1000`, { key: merchant.apiKey })).json()) as Statement;
      const excluded = await statement(block.timestamp);
      expect(excluded.chains[0].entries.map((entry) => entry.transactionHash)).not.to.include(hash);
      const included = await statement(block.timestamp + 1n);
      expect(included.chains[0].entries.map((entry) => entry.transactionHash)).to.include(hash);
      // And the opening balance of a period that starts at that second includes nothing of it yet.
      const later = (await (await stack.api("GET", `/v1/statements?currency=USDC&chainId=${chain.id}&from=${at(block.timestamp)}&to=${at(block.timestamp + 1n)}`, { key: merchant.apiKey })).json()) as Statement;
      expect(later.chains[0].entries.map((entry) => entry.transactionHash)).to.include(hash);
    });
  });

  describe("hostile text in CSV cells", () => {
    it("a token whose symbol is a spreadsheet formula is defused in every cell it reaches", async () => {
      const symbol = '=HYPERLINK("http://evil.example","click")';
      const deployHash = await chain.wallet(0).deployContract({ abi: mockStablecoinArtifact.abi, bytecode: mockStablecoinArtifact.bytecode, args: ["Evil", symbol, 6], chain: null });
      const evil = getAddress((await chain.client.waitForTransactionReceipt({ hash: deployHash })).contractAddress!);
      const mint = await chain.wallet(0).writeContract({ address: evil, abi: mockStablecoinAbi, functionName: "mint", args: [testAccount(4).address, usdc(10)], chain: null });
      await chain.client.waitForTransactionReceipt({ hash: mint });
      const invoice = await create({ amount: "1.00", currency: evil, description: "=SUM(A1:A9)", metadata: { note: "+cmd|' /C calc'!A0" } });
      await payWithInstructions(chain, 4, invoice.payment.evm!.transactions);
      await waitUntil("paid", async () => (await read(invoice.id)).status === "paid");
      // An explicit period: the default end ("now" on the chain, whose clock earlier tests moved ahead) may be read
      // from a head cached a block before the payment's.
      const csv = await (await stack.api("GET", `/v1/statements?currency=${evil}&chainId=${chain.id}&from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z`, { key: merchant.apiKey, headers: { accept: "text/csv" } })).text();
      const rows = csv.trim().split("\r\n").slice(1);
      expect(rows).to.have.length(1);
      // No cell starts with a formula character: the symbol is quoted and prefixed with an apostrophe.
      for (const cell of rows[0].split(/,(?=(?:[^"]*"[^"]*")*[^"]*$)/)) expect(cell.replace(/^"/, ""), cell).not.to.match(/^[=+\-@\t\r]/);
      // The symbol (as read from the token, at most 32 characters) is quoted and defused.
      expect(rows[0]).to.contain(`"'=HYPERLINK(""http://evil.example`);
    });
  });
});
