import { expect } from "chai";
import { loadFixture, time } from "@nomicfoundation/hardhat-network-helpers";
import { deployFixture, HOLD, USDC } from "./helpers/fixture";

describe("smoke", () => {
  it("pays, releases", async () => {
    const f = await loadFixture(deployFixture);
    const { invoice } = await f.payInvoice();
    const { invoice: i2, signature } = { invoice: await f.makeInvoice(), signature: "" };
    const sig = await f.sign(i2);
    const tx = await f.escrow.connect(f.payer).pay(i2, sig);
    console.log("pay gas", (await tx.wait())!.gasUsed);
    await time.increase(HOLD);
    const r = await f.escrow.connect(f.keeper).release(invoice);
    console.log("release gas", (await r.wait())!.gasUsed);
    const rf = await f.escrow.connect(f.merchantOwner).refund(i2, USDC(100));
    console.log("refund gas", (await rf.wait())!.gasUsed);
    expect(await f.usdc.balanceOf(f.payout.address)).to.equal(USDC(99));
  });
});
