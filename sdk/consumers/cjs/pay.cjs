// Plain CommonJS (require): verifies a webhook the running server sent, checks that payInvoice refuses a wallet
// on another chain with WrongChainError, then pays a USDC invoice with approve + pay.
const { createPublicClient, createWalletClient, http } = require("viem");
const { privateKeyToAccount } = require("viem/accounts");
const { payInvoice, verifyWebhook, WrongChainError } = require("@chainbill/sdk");
const webhooks = require("@chainbill/sdk/webhooks");

async function main() {
  const input = JSON.parse(process.env.SDK_TEST_INPUT);

  const event = await verifyWebhook({ secret: input.webhook.secret, headers: input.webhook.headers, body: input.webhook.body });
  if (webhooks.verifyWebhook !== verifyWebhook) throw new Error("@chainbill/sdk/webhooks is another copy");

  const wallet = createWalletClient({ account: privateKeyToAccount(input.privateKey), transport: http(input.rpcUrl) });
  const publicClient = createPublicClient({ transport: http(input.rpcUrl), pollingInterval: 250 });
  const elsewhere = { ...input.instructions, chainId: 8453 };
  const wrongChainSteps = [];
  let wrongChain = "accepted";
  try {
    await payInvoice({ wallet, publicClient, instructions: elsewhere, onStep: (step) => wrongChainSteps.push(step.kind) });
  } catch (error) {
    wrongChain = error instanceof WrongChainError ? `${error.name}: ${error.message}` : `other: ${error}`;
  }

  const steps = [];
  const result = await payInvoice({ wallet, publicClient, instructions: input.instructions, method: "approve", onStep: (step) => steps.push(step.hash ? `${step.kind}:sent` : step.kind) });
  console.log(JSON.stringify({ ...result, steps, webhook: { id: event.id, type: event.type }, wrongChain, wrongChainSteps }));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
