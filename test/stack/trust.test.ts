/**
 * Trust: nobody but a merchant's owner wallet decides where its customers' money goes, and one merchant never
 * reaches another's data. The registration front-run that once diverted payments, strangers' records that name
 * the merchant's keys or its payout, the identity rule on every path, tenant isolation on the cached read path,
 * and the scope every route demands.
 */
import { expect } from "chai";
import { randomUUID } from "node:crypto";
import { BaseError, ContractFunctionRevertedError, decodeFunctionData, parseEther, type Address, type Hex } from "viem";
import { billingEscrowAbi } from "../../contracts/abi";
import { billingEscrowDomain, signMerchantRegistration } from "../../contracts/invoice";
import { termsFromJson, type InvoiceTermsJson } from "../../api/invoices/instructions";
import { createMerchant, payWithInstructions, startStack, testAccount, waitUntil, type InvoiceJson, type LocalChain, type Stack, type TestMerchant } from "./harness";

interface ChainRegistration {
  chainId: number;
  registered: boolean;
  onchainMerchantId: string | null;
  owner: string | null;
  payout: string | null;
  registrationTransaction: { to: Address; data: Hex; value: string } | null;
}

/** The custom error name a reverted call carries. */
async function revertName(call: Promise<unknown>): Promise<string | undefined> {
  try {
    await call;
  } catch (error) {
    const revert = error instanceof BaseError ? error.walk((cause) => cause instanceof ContractFunctionRevertedError) : null;
    return revert instanceof ContractFunctionRevertedError ? revert.data?.errorName : (error as Error).message;
  }
  return undefined;
}

describe("stack: trust — who decides where the money goes", function () {
  this.timeout(300_000);
  let stack: Stack;
  let chain: LocalChain;
  let escrow: Address;

  before(async () => {
    stack = await startStack();
    chain = stack.chains[0];
    escrow = chain.deployment.contracts.BillingEscrow.address;
  });
  after(async () => {
    await stack?.stop();
  });

  async function me(key: string): Promise<{ operatorAddress: Address; chains: ChainRegistration[] }> {
    return (await (await stack.api("GET", "/v1/merchants/me", { key })).json()) as { operatorAddress: Address; chains: ChainRegistration[] };
  }

  async function createInvoice(key: string, amount = "0.5"): Promise<InvoiceJson> {
    const response = await stack.api("POST", "/v1/invoices", { key, headers: { "Idempotency-Key": randomUUID() }, body: { chainId: chain.id, amount, currency: "ETH" } });
    expect(response.status, await response.clone().text()).to.equal(201);
    return (await response.json()) as InvoiceJson;
  }

  describe("the registration front-run", () => {
    const OWNER = 1;
    const PAYOUT = 2;
    const ATTACKER = 9;
    let merchant: { id: string; apiKey: string; operator: Address };
    let registration: { to: Address; data: Hex; value: string };

    before(async () => {
      const response = await stack.api("POST", "/v1/merchants", {
        key: stack.adminKey,
        body: { name: "Front-run target", payoutAddress: testAccount(PAYOUT).address, ownerAddress: testAccount(OWNER).address },
      });
      const created = (await response.json()) as { merchant: { id: string; operatorAddress: Address; chains: ChainRegistration[] }; apiKey: { secret: string } };
      merchant = { id: created.merchant.id, apiKey: created.apiKey.secret, operator: created.merchant.operatorAddress };
      registration = created.merchant.chains[0].registrationTransaction!;
    });

    it("a stranger who copies the owner's registration transaction is refused on-chain: the consent names the owner", async () => {
      const attacker = chain.wallet(ATTACKER);
      const name = await revertName(
        chain.client.call({ account: attacker.account, to: registration.to, data: registration.data }),
      );
      expect(name).to.match(/InvalidSignerConsent/);
      // Sent anyway (with its own gas limit, no estimate), the node refuses it with the same error.
      expect(await revertName(attacker.sendTransaction({ to: registration.to, data: registration.data, chain: null, gas: 500_000n }))).to.match(/InvalidSignerConsent/);
    });

    it("a stranger who reuses the consent with their own payout is refused on-chain, and cannot get a consent for the operator", async () => {
      const { args } = decodeFunctionData({ abi: billingEscrowAbi, data: registration.data }) as { args: readonly [Address, Address, bigint, Hex] };
      const [, signer, deadline, signature] = args;
      const attacker = chain.wallet(ATTACKER);
      const attempt = chain.client.simulateContract({
        account: attacker.account,
        address: escrow,
        abi: billingEscrowAbi,
        functionName: "registerMerchant",
        args: [attacker.account.address, signer, deadline, signature],
      });
      expect(await revertName(attempt)).to.equal("InvalidSignerConsent");
      // Nothing the attacker could sign stands in for the operator's key.
      const forged = await signMerchantRegistration(testAccount(ATTACKER) as never, billingEscrowDomain(chain.id, escrow), {
        owner: attacker.account.address,
        payout: attacker.account.address,
        nonce: 0n,
        deadline,
      });
      const withForgedSigner = chain.client.simulateContract({
        account: attacker.account,
        address: escrow,
        abi: billingEscrowAbi,
        functionName: "registerMerchant",
        args: [attacker.account.address, signer, deadline, forged.args[3]],
      });
      expect(await revertName(withForgedSigner)).to.equal("InvalidSignerConsent");
    });

    it("the owner's registration then mines, and the merchant's identity is the owner's record", async () => {
      await payWithInstructions(chain, OWNER, [registration]);
      await waitUntil("registration indexed", async () => (await me(merchant.apiKey)).chains[0].registered);
      const view = await me(merchant.apiKey);
      expect(view.chains[0].owner).to.equal(testAccount(OWNER).address);
      expect(view.chains[0].payout).to.equal(testAccount(PAYOUT).address);
      expect(view.chains[0].registrationTransaction).to.equal(null);
    });

    it("the same consent cannot be replayed after it was used (a second record from the same transaction fails)", async () => {
      const name = await revertName(chain.client.call({ account: testAccount(OWNER), to: registration.to, data: registration.data }));
      expect(name).to.match(/InvalidSignerConsent/);
    });

    it("a stranger's own record with another signer changes nothing: invoices, payouts and the statement stay the merchant's", async () => {
      const attacker = chain.wallet(ATTACKER);
      const { args } = await signMerchantRegistration(testAccount(ATTACKER) as never, billingEscrowDomain(chain.id, escrow), {
        owner: attacker.account.address,
        payout: attacker.account.address,
        nonce: 0n,
        deadline: BigInt(Math.floor(Date.now() / 1000) + 3600),
      });
      const hash = await attacker.writeContract({ address: escrow, abi: billingEscrowAbi, functionName: "registerMerchant", args, chain: null });
      expect((await chain.client.waitForTransactionReceipt({ hash })).status).to.equal("success");
      // Fund the operator so the merchant's own actions work.
      await payWithInstructions(chain, OWNER, [{ to: merchant.operator, data: "0x", value: parseEther("1").toString() }]);

      const before = await me(merchant.apiKey);
      const invoice = await createInvoice(merchant.apiKey);
      expect(invoice.payment.evm!.invoice.merchantId).to.equal(before.chains[0].onchainMerchantId);
      const payoutBefore = await chain.client.getBalance({ address: testAccount(PAYOUT).address });
      await payWithInstructions(chain, 4, invoice.payment.evm!.transactions);
      // Anyone may release once the hold (0 s here) is over: the stranger does it, and the money goes to the payout.
      const release = await attacker.writeContract({ address: escrow, abi: billingEscrowAbi, functionName: "release", args: [termsFromJson(invoice.payment.evm!.invoice as InvoiceTermsJson)], chain: null });
      expect((await chain.client.waitForTransactionReceipt({ hash: release })).status).to.equal("success");
      expect((await chain.client.getBalance({ address: testAccount(PAYOUT).address })) - payoutBefore).to.equal(parseEther("0.5"));

      await waitUntil("release indexed", async () => {
        const read = (await (await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: merchant.apiKey })).json()) as InvoiceJson;
        return read.status === "released";
      });
      type Statement = { chains: { onchainMerchantId: string; totals: { paidBaseUnits: string; releasedBaseUnits: string } }[] };
      const read = async () => (await (await stack.api("GET", `/v1/statements?currency=ETH&chainId=${chain.id}`, { key: merchant.apiKey })).json()) as Statement;
      // The statement ends at the indexed chain's time, which may trail the invoice's own read by a block.
      let statement = await read();
      await waitUntil("the statement to include the release", async () => {
        statement = await read();
        return statement.chains[0].totals.releasedBaseUnits === parseEther("0.5").toString();
      }, 20_000);
      expect(statement.chains[0].onchainMerchantId).to.equal(before.chains[0].onchainMerchantId);
      expect(statement.chains[0].totals.paidBaseUnits).to.equal(parseEther("0.5").toString());
      expect(statement.chains[0].totals.releasedBaseUnits).to.equal(parseEther("0.5").toString());
      expect((await me(merchant.apiKey)).chains[0]).to.deep.equal(before.chains[0]);
    });
  });

  describe("tenant isolation and scopes", () => {
    let alice: TestMerchant;
    let bob: TestMerchant;
    let invoice: InvoiceJson;

    before(async () => {
      alice = await createMerchant(stack, 3, "Alice");
      bob = await createMerchant(stack, 5, "Bob");
      invoice = await createInvoice(alice.apiKey, "0.25");
    });

    it("another merchant reading an invoice the owner has just read (cached) gets a 404, on every invoice route", async () => {
      expect((await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: alice.apiKey })).status).to.equal(200);
      expect((await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: bob.apiKey })).status).to.equal(404);
      for (const action of ["void", "refund", "fulfill"]) {
        const response = await stack.api("POST", `/v1/invoices/${invoice.id}/${action}`, { key: bob.apiKey });
        expect(response.status, action).to.equal(404);
      }
      const list = (await (await stack.api("GET", "/v1/invoices", { key: bob.apiKey })).json()) as { data: { id: string }[] };
      expect(list.data.map((item) => item.id)).not.to.include(invoice.id);
      // Alice's invoice is untouched by Bob's attempts.
      const read = (await (await stack.api("GET", `/v1/invoices/${invoice.id}`, { key: alice.apiKey })).json()) as InvoiceJson;
      expect(read.status).to.equal("open");
    });

    it("every route refuses a key without its scope (403), and the admin key reads no merchant's data", async () => {
      const created = await stack.api("POST", "/v1/api-keys", { key: alice.apiKey, body: { name: "read-only", scopes: ["merchant:read", "invoices:read", "subscriptions:read", "statements:read"] } });
      expect(created.status).to.equal(201);
      const readOnly = ((await created.json()) as { secret: string }).secret;
      const writes: [string, string, unknown?][] = [
        ["POST", "/v1/invoices", { chainId: chain.id, amount: "1", currency: "ETH" }],
        ["POST", `/v1/invoices/${invoice.id}/void`],
        ["POST", `/v1/invoices/${invoice.id}/refund`, {}],
        ["POST", `/v1/invoices/${invoice.id}/fulfill`],
        ["POST", "/v1/plans", { chainId: chain.id, currency: "USDC", amount: "1", periodSeconds: 86_400 }],
        ["PATCH", "/v1/plans/plan_31337_1", { active: false }],
        ["POST", "/v1/subscriptions/sub_31337_1/cancel"],
        ["POST", "/v1/api-keys", { name: "x" }],
        ["DELETE", "/v1/api-keys/key_x"],
      ];
      for (const [method, route, body] of writes) {
        const response = await stack.api(method, route, { key: readOnly, body, headers: { "Idempotency-Key": randomUUID() } });
        expect(response.status, `${method} ${route}`).to.equal(403);
      }
      const onlyInvoices = ((await (await stack.api("POST", "/v1/api-keys", { key: alice.apiKey, body: { name: "invoices", scopes: ["invoices:write"] } })).json()) as { secret: string }).secret;
      const reads = ["/v1/merchants/me", "/v1/invoices", "/v1/plans", "/v1/subscriptions", "/v1/statements?currency=ETH", "/v1/customers/cus_1/statement", "/v1/api-keys"];
      for (const route of reads) {
        expect((await stack.api("GET", route, { key: onlyInvoices })).status, route).to.equal(403);
        expect((await stack.api("GET", route, { key: stack.adminKey })).status, `admin ${route}`).to.equal(403);
      }
    });

    it("a key may only create keys with a subset of its own scopes: merchant:write alone cannot mint a full-access key", async () => {
      const writer = ((await (await stack.api("POST", "/v1/api-keys", { key: alice.apiKey, body: { name: "key admin", scopes: ["merchant:write"] } })).json()) as { secret: string }).secret;
      const escalation = await stack.api("POST", "/v1/api-keys", { key: writer, body: { name: "escalated" } });
      // The default is the caller's own scopes, never more.
      expect(escalation.status).to.equal(201);
      expect(((await escalation.json()) as { scopes: string[] }).scopes).to.deep.equal(["merchant:write"]);
      const explicit = await stack.api("POST", "/v1/api-keys", { key: writer, body: { name: "escalated", scopes: ["invoices:write", "merchant:write"] } });
      expect(explicit.status).to.equal(403);
      expect(((await explicit.json()) as { detail: string }).detail).to.contain("invoices:write");
    });

    it("caps a merchant's active keys (25), also under concurrent creation, and a revoked key frees a place", async () => {
      const listed = (await (await stack.api("GET", "/v1/api-keys", { key: bob.apiKey })).json()) as { data: { revokedAt: string | null }[] };
      const room = 25 - listed.data.filter((key) => key.revokedAt === null).length;
      const attempts = await Promise.all(
        Array.from({ length: room + 5 }, (_, index) => stack.api("POST", "/v1/api-keys", { key: bob.apiKey, body: { name: `bulk ${index}`, scopes: ["invoices:read"] } })),
      );
      const statuses = attempts.map((response) => response.status);
      expect(statuses.filter((status) => status === 201)).to.have.length(room);
      expect(statuses.filter((status) => status === 409)).to.have.length(5);
      const refused = attempts.find((response) => response.status === 409)!;
      expect(((await refused.json()) as { type: string }).type).to.equal("/problems/api-key-limit");
      const one = (await attempts.find((response) => response.status === 201)!.json()) as { id: string };
      expect((await stack.api("DELETE", `/v1/api-keys/${one.id}`, { key: bob.apiKey })).status).to.equal(204);
      expect((await stack.api("POST", "/v1/api-keys", { key: bob.apiKey, body: { name: "after revoke", scopes: ["invoices:read"] } })).status).to.equal(201);
    });
  });
});
