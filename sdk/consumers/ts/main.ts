// TypeScript (module esnext, moduleResolution bundler, strict): the SDK's types flow into viem's (the ABI
// `as const`, the API's instructions), then a USDC invoice is paid with an EIP-2612 permit.
import { createPublicClient, createWalletClient, http, type Hex } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  billingEscrowAbi,
  invoiceFromJson,
  payInvoice,
  type PaymentInstructions,
  type PayInvoiceResult,
  type PaymentStep,
} from "@chainbill/sdk";

declare const process: { env: Record<string, string | undefined> };

interface Input {
  rpcUrl: string;
  privateKey: Hex;
  instructions: PaymentInstructions;
}

const input = JSON.parse(process.env.SDK_TEST_INPUT!) as Input;
const { instructions } = input;
const wallet = createWalletClient({ account: privateKeyToAccount(input.privateKey), transport: http(input.rpcUrl) });
const publicClient = createPublicClient({ transport: http(input.rpcUrl), pollingInterval: 250 });

// The escrow's own invoiceKey view, typed from the ABI: `key` is inferred as `0x${string}`.
const key: Hex = await publicClient.readContract({
  address: instructions.contract as Hex,
  abi: billingEscrowAbi,
  functionName: "invoiceKey",
  args: [invoiceFromJson(instructions.invoice)],
});
if (key !== instructions.invoiceKey) throw new Error(`on-chain invoiceKey ${key} ≠ the API's ${instructions.invoiceKey}`);

const steps: PaymentStep["kind"][] = [];
const result: PayInvoiceResult = await payInvoice({ wallet, publicClient, instructions, method: "permit", onStep: (step) => steps.push(step.kind) });
const method: "native" | "approve" | "permit" = result.method;
console.log(JSON.stringify({ hash: result.hash, method, steps, key }));
