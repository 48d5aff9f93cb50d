/**
 * The hosted checkout's server-side pieces without a browser: the language choice, the escaping of the page
 * shell (a hostile description cannot close the embedded JSON's script element), and the live pollers (one
 * read per invoice however many pages watch, changes only, the stream cap).
 */
import { expect } from "chai";
import { pickLocale, t } from "../../checkout/src/i18n";
import type { CheckoutView } from "../../checkout/src/types";
import { checkoutPage, embedJson, escapeHtml } from "../../api/checkout/html";
import { createCheckoutLive } from "../../api/checkout/live";
import { evmChainInfo } from "../../api/checkout/view";

function view(overrides: Partial<CheckoutView> = {}): CheckoutView {
  return {
    id: "inv_test00000000",
    merchant: { name: "Shop" },
    description: null,
    lineItems: [],
    amount: "1.00",
    amountBaseUnits: "1000000",
    currency: "USDC",
    decimals: 6,
    chain: { id: 31337, network: "eip155:31337", name: "Local chain 31337", explorer: null },
    status: "open",
    expiresAt: "2026-12-02T12:00:00.000Z",
    now: "2026-12-02T11:00:00.000Z",
    price: null,
    evm: null,
    transfer: { address: "0x0000000000000000000000000000000000000001", uri: "ethereum:0x1", receivedAmount: "0", dueAmount: "0" },
    paid: null,
    refundedAmount: "0",
    successUrl: null,
    cancelUrl: null,
    indexed: { block: 1, at: null },
    ...overrides,
  };
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("checkout: language", function () {
  it("picks Chinese for any zh tag by quality, English otherwise, and an explicit choice first", function () {
    expect(pickLocale(null, "zh-CN,zh;q=0.9,en;q=0.8")).to.equal("zh-CN");
    expect(pickLocale(null, "zh-TW")).to.equal("zh-CN");
    expect(pickLocale(null, "en-US,zh;q=0.5")).to.equal("en");
    expect(pickLocale(null, "fr-FR, zh;q=0.4, en;q=0.3")).to.equal("zh-CN");
    expect(pickLocale(null, "de, zh;q=0")).to.equal("en");
    expect(pickLocale(null, undefined)).to.equal("en");
    expect(pickLocale(null, ";;;,q=abc")).to.equal("en");
    expect(pickLocale("en", "zh-CN")).to.equal("en");
    expect(pickLocale("zh-CN", "en")).to.equal("zh-CN");
  });

  it("fills placeholders and leaves unknown ones visible", function () {
    expect(t("en", "status.underpaid", { received: "1", due: "2", currency: "USDC" })).to.equal("Received 1 USDC: 2 USDC still missing. Send the rest to the same address.");
    expect(t("zh-CN", "invoice.expiresIn", { time: "4:07" })).to.equal("4:07 后过期");
    expect(t("en", "return.success")).to.equal("Return to {merchant}");
  });
});

describe("checkout: page shell", function () {
  it("escapes a hostile merchant name and description, and the embedded JSON cannot end its script", function () {
    const hostile = `</script><script>alert(1)</script><!-- "quoted" & 'single'`;
    const html = checkoutPage(view({ merchant: { name: hostile }, description: hostile }), "en");
    expect(html).not.to.contain("<script>alert(1)");
    expect(html.match(/<\/script>/g)).to.have.length(2); // the module script and the JSON script, nothing else
    expect(html).to.contain(escapeHtml(`Invoice from ${hostile}`));
    const json = html.slice(html.indexOf('id="chainbill-data">') + 'id="chainbill-data">'.length, html.lastIndexOf("</script>"));
    expect(JSON.parse(json).view.description).to.equal(hostile);
    expect(embedJson("\u2028<>&")).to.equal('"\\u2028\\u003c\\u003e\\u0026"');
  });

  it("marks the language and offers the other one", function () {
    const html = checkoutPage(view(), "zh-CN");
    expect(html).to.contain('<html lang="zh-CN">');
    expect(html).to.contain('href="?lang=en" hreflang="en"');
  });
});

describe("checkout: chains", function () {
  it("names public chains with their block explorer, and gives a local chain none", function () {
    expect(evmChainInfo(1)).to.deep.include({ id: 1, network: "eip155:1", name: "Ethereum", explorer: "https://etherscan.io" });
    expect(evmChainInfo(11155111).explorer).to.equal("https://sepolia.etherscan.io");
    expect(evmChainInfo(8453)).to.deep.include({ name: "Base", explorer: "https://basescan.org" });
    expect(evmChainInfo(31337)).to.deep.include({ name: "Local chain 31337", explorer: null });
    expect(evmChainInfo(77_777_777_777)).to.deep.include({ name: "Chain 77777777777", explorer: null });
  });
});

describe("checkout: live pollers", function () {
  it("reads each invoice once per interval for all its watchers, and passes on changes only", async function () {
    let reads = 0;
    let status: CheckoutView["status"] = "open";
    const live = createCheckoutLive(
      async () => {
        reads += 1;
        return view({ status, now: new Date(Date.now()).toISOString() }); // the clock changes every read
      },
      { intervalMs: 20 },
    );
    const seenA: string[] = [];
    const seenB: string[] = [];
    const stopA = live.subscribe("inv_a", (next) => seenA.push(next.status), () => undefined);
    await tick(10);
    const stopB = live.subscribe("inv_a", (next) => seenB.push(next.status), () => undefined);
    await tick(100);
    expect(seenA).to.deep.equal(["open"]);
    expect(seenB).to.deep.equal(["open"]); // the late watcher got the current view at once
    const readsBefore = reads;
    status = "paid";
    await tick(100);
    expect(seenA).to.deep.equal(["open", "paid"]);
    expect(seenB).to.deep.equal(["open", "paid"]);
    expect(reads - readsBefore).to.be.within(2, 8); // one poller, not two
    expect(live.size()).to.equal(2);
    stopA();
    stopB();
    stopA(); // twice is harmless
    expect(live.size()).to.equal(0);
    const after = reads;
    await tick(80);
    expect(reads - after).to.be.at.most(1); // the poller stopped with its last watcher
    live.stop();
  });

  it("caps the number of streams and reports read errors to the watchers", async function () {
    const live = createCheckoutLive(async () => {
      throw new Error("node down");
    }, { intervalMs: 20, maxStreams: 2 });
    const errors: unknown[] = [];
    const stops = [live.subscribe("inv_a", () => undefined, (error) => errors.push(error)), live.subscribe("inv_b", () => undefined, () => undefined)];
    expect(live.hasRoom()).to.equal(false);
    await tick(50);
    expect(errors.length).to.be.at.least(1);
    stops.forEach((stop) => stop());
    expect(live.hasRoom()).to.equal(true);
    live.stop();
  });
});
