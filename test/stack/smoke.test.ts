import { expect } from "chai";
import { createChainbillClient } from "../../api/client";
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

  it("serves the typed client: paths, bodies and problems are typed and work over HTTP", async () => {
    const merchant = await createMerchant(stack, 3, "Typed client merchant");
    const chainbill = createChainbillClient({ baseUrl: stack.apiUrl, apiKey: merchant.apiKey });
    const me = await chainbill.GET("/v1/merchants/me");
    expect(me.data?.id).to.equal(merchant.id);
    const created = await chainbill.POST("/v1/api-keys", { body: { name: "reporting", scopes: ["statements:read"] } });
    expect(created.response.status).to.equal(201);
    expect(created.data?.secret).to.match(/^cb_live_/);
    const readOnly = createChainbillClient({ baseUrl: stack.apiUrl, apiKey: created.data!.secret });
    const refused = await readOnly.POST("/v1/api-keys", { body: { name: "escalate" } });
    expect(refused.response.status).to.equal(403);
    expect(refused.response.headers.get("content-type")).to.contain("application/problem+json");
  });

  it("serves the OpenAPI 3.1 document and the interactive reference without any CDN", async () => {
    const document = (await (await fetch(`${stack.apiUrl}/openapi.json`)).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(document.openapi).to.equal("3.1.0");
    expect(document.paths).to.have.property("/v1/merchants/me");
    const page = await (await fetch(`${stack.apiUrl}/docs`)).text();
    expect(page).to.contain("/docs/assets/swagger-ui-bundle.js");
    expect(page).not.to.match(/https?:\/\//);
    const bundle = await fetch(`${stack.apiUrl}/docs/assets/swagger-ui-bundle.js`);
    expect(bundle.status).to.equal(200);
  });
});
