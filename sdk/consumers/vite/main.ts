// A browser page built by Vite: pays a USDC invoice with payInvoice's default method (auto: a permit, the token
// supports EIP-2612) from a local account, through the page's own origin (/rpc is relayed to the chain).
import { createPublicClient, createWalletClient, http, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import { payInvoice, verifyWebhook, type PaymentInstructions } from "@chainbill/sdk";

const status = document.getElementById("status")!;

async function run(): Promise<void> {
  const input = (await (await fetch("/input.json")).json()) as { privateKey: Hex; instructions: PaymentInstructions };
  const rpc = new URL("/rpc", location.href).href;
  const wallet = createWalletClient({ account: privateKeyToAccount(input.privateKey), transport: http(rpc) });
  const publicClient = createPublicClient({ transport: http(rpc), pollingInterval: 250 });
  const steps: string[] = [];
  const result = await payInvoice({ wallet, publicClient, instructions: input.instructions, onStep: (step) => steps.push(step.kind) });
  // WebCrypto in the page: an unsigned delivery is refused.
  const refused = await verifyWebhook({ secret: "whsec_AAAA", headers: {}, body: "{}" }).then(() => "accepted", (error: Error) => error.name);
  status.dataset.result = JSON.stringify({ ...result, steps, refused });
  status.textContent = "paid";
}

run().catch((error: unknown) => {
  status.dataset.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  status.textContent = "failed";
});
