import { expect } from "chai";
import { createMerchant, startStack, type Stack } from "./harness";

describe("stack: merchant onboarding", function () {
  this.timeout(180_000);
  let stack: Stack;
  before(async () => {
    stack = await startStack();
  });
  after(async () => {
    await stack?.stop();
  });

  it("creates a merchant, registers it on-chain from the owner wallet and sees it indexed", async () => {
    const merchant = await createMerchant(stack, 1);
    expect(merchant.onchainIds.get(31337)).to.equal(1n);
    const me = await stack.api("GET", "/v1/merchants/me", { key: merchant.apiKey });
    expect(me.status).to.equal(200);
    const body = (await me.json()) as { chains: { registered: boolean; payout: string }[] };
    expect(body.chains[0].registered).to.equal(true);
    expect(body.chains[0].payout.toLowerCase()).to.equal(merchant.payout.toLowerCase());
  });
});
