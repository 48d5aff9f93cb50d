// Plain Node ESM: reads an invoice with the typed API client, recomputes its EIP-712 key and deposit address
// with the SDK, and pays it (native ETH) from a local account.
import { createPublicClient, createWalletClient, http } from "viem";
import { privateKeyToAccount } from "viem/accounts";
import {
  billingEscrowDomain,
  createChainbillClient,
  formatAmount,
  invoiceDepositAddress,
  invoiceFromJson,
  invoiceKey,
  payInvoice,
} from "@chainbill/sdk";

const input = JSON.parse(process.env.SDK_TEST_INPUT);

const chainbill = createChainbillClient({ baseUrl: input.apiUrl, apiKey: input.apiKey });
const { data: invoice, error } = await chainbill.GET("/v1/invoices/{id}", { params: { path: { id: input.invoiceId } } });
if (error) throw new Error(`GET /v1/invoices/${input.invoiceId}: ${error.title}`);
const instructions = invoice.payment.evm;

const domain = billingEscrowDomain(instructions.chainId, instructions.contract);
const terms = invoiceFromJson(instructions.invoice);
const key = invoiceKey(domain, terms);
if (key !== instructions.invoiceKey) throw new Error(`invoiceKey ${key} ≠ the API's ${instructions.invoiceKey}`);
const deposit = invoiceDepositAddress(domain, terms);
if (instructions.depositAddress && deposit.toLowerCase() !== instructions.depositAddress.toLowerCase()) {
  throw new Error(`deposit address ${deposit} ≠ the API's ${instructions.depositAddress}`);
}

const wallet = createWalletClient({ account: privateKeyToAccount(input.privateKey), transport: http(input.rpcUrl) });
const publicClient = createPublicClient({ transport: http(input.rpcUrl), pollingInterval: 250 });
const steps = [];
const result = await payInvoice({ wallet, publicClient, instructions, onStep: (step) => steps.push(step.kind) });
console.log(JSON.stringify({ ...result, steps, key, amount: formatAmount(terms.amount, 18) }));
