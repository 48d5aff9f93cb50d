/**
 * `npm run demo`: a narrated walkthrough of chainbill as an integrator and their customers use it, against the
 * local stack of `npm start` (started here, and stopped at the end, when none is running).
 *
 *   1. the demo merchant, through the API (GET /v1/merchants/me), and a webhook receiver on this machine (a local
 *      HTTP server registered with POST /v1/webhook-endpoints) that verifies and prints every event as it arrives;
 *   2. an ETH invoice (POST /v1/invoices with an Idempotency-Key), paid from a customer wallet with nothing but
 *      the transactions in the response, watched until the API says `paid`;
 *   3. a USDC invoice the same way (approve, then pay), then part of it refunded by the merchant; another USDC
 *      invoice paid with a plain ERC-20 transfer to its deposit address (as an exchange withdrawal would), swept;
 *   4. a plan (POST /v1/plans) and a subscription made with the plan's transactions; a month passes on the
 *      chain (evm_increaseTime + one block) and a keeper renews it;
 *   5. the money out: anyone releases the held invoice payments and withdraws the subscription's earned income,
 *      both paid to the merchant's payout address (its balances shown before and after);
 *   6. the statement (GET /v1/statements) as a table, and as CSV (Accept: text/csv) written to a file;
 *   7. the webhooks the receiver got, in order (the endpoint is then deleted).
 *
 * Every payment uses only what the API returned: no ABI, no signing, no amounts computed by the customer.
 */
import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { Webhook } from "standardwebhooks";
import path from "node:path";
import { createPublicClient, erc20Abi, formatEther, formatUnits, http, parseUnits, type Address, type Hex, type PublicClient } from "viem";
import { billingEscrowAbi, subscriptionManagerAbi } from "../contracts/abi";
import { invoiceFromJson, type InvoiceJson as InvoiceTermsJson } from "../contracts/invoice";
import { readDeployment } from "../contracts/addresses";
import { createApiClient, servedRoutes, type ApiClient } from "./lib/api-client";
import { isLocalChain, mockStablecoinAbi, testAccount, timeTravel, walletFor, type Wallet } from "./lib/local-chain";
import { testWallet } from "./lib/bitcoin-regtest/wallet";
import { detail, seconds, step, table, tailFile } from "./lib/output";
import { onShutdown, startChild, stopChild, waitFor, type Supervised } from "./lib/processes";
import { loadDotEnv, readJson, ROOT, runningStack, stackPaths, type DemoMerchant, type StackState } from "./lib/stack-files";

const HELP = `npm run demo — a narrated walkthrough of chainbill

Uses the stack of a running \`npm start\` (found through .data/stack.json); when none runs, starts one for the
walkthrough (its output goes to .data/logs/start.log) and stops it at the end.

Creates an ETH and a USDC invoice through the API, pays each from a test wallet using only the transactions the
API returned, refunds part of one, creates a plan, subscribes, moves the local chain a month forward and renews,
releases the held payments and withdraws the subscription income to the merchant's payout address, has a BTC
invoice paid and confirmed on the local simulated regtest chain (straight to the merchant's wallet), then prints
the statements and writes it as CSV to .data/demo-statement-<currency>.csv. A local webhook receiver verifies and
prints every event the API sends meanwhile (invoice.paid, invoice.confirmed, invoice.refunded, invoice.released,
subscription.created, subscription.renewed, payout.sent, invoice.payment_detected).

Local chains only (it moves the chain's clock). Options: -h, --help.
`;

const CUSTOMER_ETH = 2;
const CUSTOMER_USDC = 3;
const SUBSCRIBER = 4;
const KEEPER = 0;
const MONTH = 30 * 86_400;

interface Transaction {
  description?: string;
  uri: string;
  to: Address;
  data: Hex;
  value: string;
}

interface Invoice {
  id: string;
  status: string;
  amount: string;
  currency: string;
  chainId: number;
  heldAmount: string;
  refundedAmount: string;
  payer: Address | null;
  paidTransaction: Hex | null;
  confirmations: number | null;
  confirmationsRequired?: number;
  payment: { evm: { contract: Address; invoiceKey: Hex; invoice: InvoiceTermsJson; signature: Hex; transactions: Transaction[]; uri: string; depositAddress: Address | null; depositUri: string | null } };
  deposit?: { address: Address; waitingAmount: string; dueAmount: string; excessAmount: string } | null;
}

interface Plan {
  id: string;
  amount: string;
  currency: string;
  periodSeconds: number;
  subscribe: { maxPrice: string; approvalPeriods: number; transactions: Transaction[] };
}

interface Subscription {
  id: string;
  subscriptionId: string;
  status: string;
  subscriber: Address;
  currentPeriodEnd: string | null;
  nextChargeAt: string | null;
  nextChargeAmount: string | null;
  chargeCount: number;
}

interface BtcInvoice {
  id: string;
  status: string;
  amount: string;
  confirmations: number;
  confirmationsRequired: number;
  payment: { btc: { address: string; amountSats: string; uri: string; custody: string } };
}

interface Statement {
  from: string;
  to: string;
  currency: string;
  chains: {
    chainId: number | null;
    network: string;
    onchainMerchantId: string | null;
    openingBalance: string;
    closingBalance: string;
    totals: { paid: string; refunded: string; released: string; fees: string };
    entries: { timestamp: string; kind: string; amount: string; counterparty: string; reference: string; invoiceId: string | null; transactionHash: Hex; fiatValue?: string | null; fiatCurrency?: string | null }[];
    fiat?: { currency: string; complete: boolean; totals: { paid: string; refunded: string; released: string; fees: string; net: string } | null; entriesWithoutRate: number };
  }[];
}

/** A step that needs routes this API may not serve yet fails with a clear message instead of a 404. */
class MissingRoute extends Error {}

function short(value: string): string {
  return value.length > 14 ? `${value.slice(0, 8)}…${value.slice(-4)}` : value;
}

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  loadDotEnv();
  const paths = stackPaths();

  // ------------------------------------------------------------------------------------------ the stack
  let stack = runningStack(paths);
  let ownStack: Supervised | undefined;
  if (stack) {
    step(`using the running stack: API ${stack.apiUrl}`);
  } else {
    step("no running `npm start` found: starting the stack for this walkthrough");
    const startLog = path.join(paths.logsDir, "start.log");
    detail(`its output goes to ${startLog}; it stops when the walkthrough ends`);
    ownStack = startChild("npm start", process.execPath, ["-r", "ts-node/register/transpile-only", path.join(ROOT, "scripts", "start.ts")], {
      cwd: ROOT,
      logFile: startLog,
      stopSignal: "SIGINT",
    });
    onShutdown(() => stopChild(ownStack!, 30_000));
    await waitFor(
      "npm start to be ready",
      async () => {
        if (ownStack!.child.exitCode !== null) throw new Error(`npm start failed:\n${tailFile(startLog)}`);
        stack = runningStack(paths);
        return stack?.pid === ownStack!.child.pid;
      },
      240_000,
      500,
    ).catch((error: unknown) => {
      throw ownStack!.child.exitCode !== null ? new Error(`npm start failed; last lines of ${startLog}:\n${tailFile(startLog)}`) : error;
    });
    detail(`stack up (${seconds()}): API ${stack!.apiUrl}`);
  }
  try {
    await walkthrough(stack!, paths);
  } finally {
    if (ownStack) {
      step("stopping the stack this walkthrough started");
      await stopChild(ownStack, 30_000);
    }
  }
}

async function walkthrough(stack: StackState, paths: ReturnType<typeof stackPaths>): Promise<void> {
  const chainInfo = stack.chains.find((chain) => chain.local && isLocalChain(chain.id));
  if (!chainInfo) {
    throw new Error("npm run demo needs a local chain (it moves the chain's clock and uses Hardhat's test accounts); this stack runs on " +
      stack.chains.map((chain) => chain.id).join(", "));
  }
  const stored = readJson<DemoMerchant>(paths.demoMerchantFile);
  if (!stored) throw new Error(`No demo merchant in ${paths.demoMerchantFile}: run npm start without --no-demo-merchant.`);
  const chainId = chainInfo.id;
  const client = createPublicClient({ transport: http(chainInfo.rpcUrl) }) as PublicClient;
  const deployment = readDeployment(chainId, process.env.DEPLOYMENTS_DIR ? path.resolve(ROOT, process.env.DEPLOYMENTS_DIR) : undefined);
  if (!deployment) throw new Error(`No deployments/${chainId}.json: is this the stack npm start runs?`);
  const usdc = deployment.contracts.MockStablecoin?.address;
  const api = createApiClient(stack.apiUrl, stored.apiKey);
  const routes = await servedRoutes(stack.apiUrl);
  const need = (...wanted: string[]) => {
    const missing = wanted.filter((route) => !routes.has(route));
    if (missing.length) {
      const named = missing.map((route) => route.replace(/^\S+/, (method) => method.toUpperCase()));
      throw new MissingRoute(`this step needs ${named.join(", ")}, which the API does not serve yet (see ${stack.apiUrl}/docs)`);
    }
  };
  const wallet = (index: number) => walletFor(testAccount(index), chainInfo.rpcUrl);
  const runId = randomUUID().slice(0, 8);

  // ------------------------------------------------------------------------------------------ 1. merchant
  step("1. the merchant, as its API key sees itself (GET /v1/merchants/me)");
  const me = await api.request<{ id: string; name: string; operatorAddress: Address; payoutAddress: Address; chains: { chainId: number; registered: boolean; onchainMerchantId: string | null }[] }>(
    "GET",
    "/v1/merchants/me",
  );
  const registration = me.chains.find((chain) => chain.chainId === chainId);
  detail(`${me.id} "${me.name}": on-chain merchant #${registration?.onchainMerchantId} on chain ${chainId}; operator (signs invoices) ${me.operatorAddress}; payout ${me.payoutAddress}`);
  if (!registration?.registered) throw new Error(`the demo merchant is not registered on chain ${chainId}: restart npm start`);

  step("   a webhook receiver on this machine (your server): registered with POST /v1/webhook-endpoints");
  need("post /v1/webhook-endpoints", "delete /v1/webhook-endpoints/{id}");
  const receiver = await startDemoReceiver();
  const endpoint = await api.request<{ id: string; secret: string }>("POST", "/v1/webhook-endpoints", {
    body: { url: receiver.url, description: "npm run demo" },
    idempotencyKey: `demo-${runId}-endpoint`,
  });
  receiver.secret = endpoint.secret;
  detail(`${endpoint.id} → ${receiver.url}; every request is verified with its secret (standardwebhooks) and printed as it arrives`);

  // ------------------------------------------------------------------------------------------ 2. ETH invoice
  step("2. an ETH invoice (POST /v1/invoices with an Idempotency-Key)");
  need("post /v1/invoices", "get /v1/invoices/{id}");
  const ethBody = {
    chainId,
    holdSeconds: 86_400,
    amount: "0.05",
    currency: "ETH",
    description: "Consulting, one hour",
    lineItems: [{ description: "Consulting hour", quantity: 1, unitAmount: "0.05" }],
    customer: { id: "cus_demo_ada", email: "ada@example.com" },
    metadata: { order: `demo-${runId}-1` },
  };
  const ethKey = `demo-${runId}-eth`;
  const ethInvoice = await api.request<Invoice>("POST", "/v1/invoices", { body: ethBody, idempotencyKey: ethKey });
  describeInvoice(ethInvoice);
  detail(`the customer's page: ${stack.apiUrl}/pay/${ethInvoice.id} (browser wallets, QR code, the status live; open it before the payment below to watch it change)`);
  const replay = await api.raw("POST", "/v1/invoices", { body: ethBody, idempotencyKey: ethKey });
  const replayed = (await replay.json()) as Invoice;
  detail(`the same request again with the same Idempotency-Key → ${replay.status}, same invoice ${replayed.id === ethInvoice.id ? "✓" : "✗"}${replay.headers.get("idempotent-replayed") ? " (Idempotent-Replayed: true)" : ""}`);

  step(`   customer #${CUSTOMER_ETH} pays it with exactly the transactions in payment.evm.transactions`);
  const ethPaidAt = await payWith(wallet(CUSTOMER_ETH), client, ethInvoice.payment.evm.transactions);
  const ethPaid = await waitForStatus(api, ethInvoice.id, ["paid"], ethPaidAt);
  detail(`paid by ${ethPaid.payer} in transaction ${short(ethPaid.paidTransaction ?? "")}; ${ethPaid.heldAmount} ETH held in escrow for the merchant`);

  // ------------------------------------------------------------------------------------------ 3. USDC invoice + refund
  step("3. a USDC invoice, paid with approve + pay");
  if (!usdc) throw new Error("this deployment has no MockStablecoin");
  const usdcInvoice = await api.request<Invoice>("POST", "/v1/invoices", {
    idempotencyKey: `demo-${runId}-usdc`,
    body: { chainId, amount: "25.00", currency: "USDC", holdSeconds: 86_400, description: "Annual support plan", customer: { id: "cus_demo_grace" }, metadata: { order: `demo-${runId}-2` } },
  });
  describeInvoice(usdcInvoice);
  const usdcBalance = async (holder: Address) =>
    formatUnits(await client.readContract({ address: usdc, abi: mockStablecoinAbi, functionName: "balanceOf", args: [holder] }), 6);
  const usdcCustomer = testAccount(CUSTOMER_USDC).address;
  detail(`customer #${CUSTOMER_USDC} holds ${await usdcBalance(usdcCustomer)} USDC`);
  const usdcPaidAt = await payWith(wallet(CUSTOMER_USDC), client, usdcInvoice.payment.evm.transactions);
  const usdcPaid = await waitForStatus(api, usdcInvoice.id, ["paid"], usdcPaidAt);
  detail(`paid: ${usdcPaid.heldAmount} USDC held; customer now holds ${await usdcBalance(usdcCustomer)} USDC`);

  step("   the merchant refunds 5.00 USDC of it (POST /v1/invoices/:id/refund; the API sends it with the operator key)");
  need("post /v1/invoices/{id}/refund");
  const refund = await api.request<{ transactionHash: Hex; invoice: Invoice }>("POST", `/v1/invoices/${usdcInvoice.id}/refund`, {
    body: { amount: "5.00" },
    idempotencyKey: `demo-${runId}-refund`,
  });
  detail(`refund transaction ${refund.transactionHash}`);
  const refunded = await waitForStatus(api, usdcInvoice.id, ["partially_refunded"]);
  detail(`status ${refunded.status}: ${refunded.refundedAmount} USDC refunded, ${refunded.heldAmount} USDC still held; customer holds ${await usdcBalance(usdcCustomer)} USDC`);

  step("   another USDC invoice, paid with a plain ERC-20 transfer to its own deposit address (as an exchange withdrawal would)");
  const depositInvoice = await api.request<Invoice>("POST", "/v1/invoices", {
    idempotencyKey: `demo-${runId}-usdc-deposit`,
    body: { chainId, amount: "12.50", currency: "USDC", holdSeconds: 86_400, description: "Sticker pack", customer: { id: "cus_demo_heidi" }, metadata: { order: `demo-${runId}-3` } },
  });
  const deposit = depositInvoice.payment.evm.depositAddress;
  let depositPaid: Invoice | undefined;
  if (!deposit) {
    detail("(this escrow deployment has no deposit addresses: redeploy it to pay by plain transfer)");
  } else {
    detail(`${depositInvoice.id}: 12.50 USDC to ${deposit}`);
    detail(`QR link (EIP-681, a plain transfer): ${depositInvoice.payment.evm.depositUri}`);
    const sentAt = Date.now();
    const transfer = await wallet(CUSTOMER_USDC).writeContract({ address: usdc, abi: erc20Abi, functionName: "transfer", args: [deposit, parseUnits("12.50", 6)], chain: null });
    await client.waitForTransactionReceipt({ hash: transfer });
    const pending = await waitForStatus(api, depositInvoice.id, ["pending", "paid"], sentAt);
    detail(`customer #${CUSTOMER_USDC} sent it with ERC-20 transfer ${short(transfer)}: status ${pending.status} (the deposit watcher saw ${pending.deposit?.waitingAmount ?? "12.50"} USDC there)`);
    // npm start's keeper sweeps it within its interval; anyone may, so this walkthrough does it at once.
    const sweep = await wallet(KEEPER)
      .writeContract({ address: depositInvoice.payment.evm.contract, abi: billingEscrowAbi, functionName: "sweepDeposit", args: [invoiceFromJson(depositInvoice.payment.evm.invoice), depositInvoice.payment.evm.signature], chain: null })
      .then(async (hash) => ((await client.waitForTransactionReceipt({ hash })).status === "success" ? hash : undefined))
      .catch(() => undefined); // the keeper came first
    depositPaid = await waitForStatus(api, depositInvoice.id, ["paid"]);
    detail(`${sweep ? `swept into the escrow (sweepDeposit ${short(sweep)})` : "swept into the escrow by the keeper"}: ${depositPaid.heldAmount} USDC held, exactly as a wallet payment`);
  }

  step("   a payment link priced in USD, for donations (POST /v1/payment-links): the customer chooses 5.00 USD and pays in USDC");
  need("post /v1/payment-links");
  const link = await api.request<{ id: string; url: string }>("POST", "/v1/payment-links", {
    idempotencyKey: `demo-${runId}-link`,
    body: { chainId, name: "Support the demo", price: { type: "customer_chosen", currency: "USD", minimum: "1.00" }, accept: ["USDC", "ETH"] },
  });
  detail(`the link to send (its page: amount, currency, then the checkout): ${link.url}`);
  // What the link's page does for the customer: POST /links/{id}/invoices, no API key.
  const use = await fetch(`${stack.apiUrl}/links/${link.id}/invoices`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ currency: "USDC", chainId, amount: "5.00" }),
  });
  const used = (await use.json()) as { invoiceId: string; checkoutUrl: string; amount: string; rate: string | null; expiresAt: string };
  if (use.status !== 201) throw new Error(`POST /links/${link.id}/invoices → ${use.status}: ${JSON.stringify(used)}`);
  detail(`→ invoice ${used.invoiceId}: ${used.amount} USDC at ${used.rate} USD per USDC (Chainlink feed; locked until ${used.expiresAt}); its page: ${stack.apiUrl}${used.checkoutUrl}`);
  const linkInvoice = await api.request<Invoice>("GET", `/v1/invoices/${used.invoiceId}`);
  const linkPaidAt = await payWith(wallet(CUSTOMER_USDC), client, linkInvoice.payment.evm.transactions);
  await waitForStatus(api, used.invoiceId, ["paid"], linkPaidAt);
  detail("paid; the USDC statement below values it (and every invoice with a rate) in USD");

  // ------------------------------------------------------------------------------------------ 4. subscription
  step("4. a monthly plan (POST /v1/plans; created on-chain with the operator key)");
  need("post /v1/plans", "get /v1/subscriptions", "get /v1/subscriptions/{id}/charges");
  const plan = await api.request<Plan>("POST", "/v1/plans", {
    idempotencyKey: `demo-${runId}-plan`,
    body: { chainId, currency: "USDC", amount: "9.99", periodSeconds: MONTH },
  });
  detail(`${plan.id}: ${plan.amount} ${plan.currency} every ${plan.periodSeconds / 86_400} days`);
  detail(`plan.subscribe.transactions: ${plan.subscribe.transactions.map((transaction) => transaction.description?.split(":")[0] ?? transaction.to).join(", then ")}`);

  step(`   subscriber #${SUBSCRIBER} subscribes with those transactions`);
  const subscriber = testAccount(SUBSCRIBER).address;
  const subscribedAt = Date.now();
  await payWith(wallet(SUBSCRIBER), client, plan.subscribe.transactions);
  let subscription: Subscription | undefined;
  await waitFor("the subscription to be indexed", async () => {
    const list = await api.request<{ data: Subscription[] }>("GET", "/v1/subscriptions", { query: { subscriber, planId: plan.id } });
    subscription = list.data.at(-1);
    return subscription !== undefined;
  }, 30_000, 100);
  detail(`${subscription!.id} ${subscription!.status} (visible through the API ${Date.now() - subscribedAt} ms after sending); next charge ${subscription!.nextChargeAmount} USDC at ${subscription!.nextChargeAt}`);

  step("   a month passes on the chain (evm_increaseTime, then a single evm_mine)");
  const chainTime = await timeTravel(client, MONTH + 60);
  detail(`chain time is now ${new Date(Number(chainTime) * 1000).toISOString()}`);
  step(`   a keeper (account #${KEEPER}; anyone may) renews due subscriptions: SubscriptionManager.renew([${subscription!.subscriptionId}])`);
  const renewal = await wallet(KEEPER).writeContract({
    address: deployment.contracts.SubscriptionManager.address,
    abi: subscriptionManagerAbi,
    functionName: "renew",
    args: [[BigInt(subscription!.subscriptionId)]],
    chain: null,
  });
  await client.waitForTransactionReceipt({ hash: renewal });
  let charges: { kind: string; amount: string; periodStart: string; periodEnd: string; transactionHash: Hex }[] = [];
  await waitFor("the renewal to be indexed", async () => {
    charges = (await api.request<{ data: typeof charges }>("GET", `/v1/subscriptions/${subscription!.id}/charges`)).data;
    return charges.length >= 2;
  }, 30_000, 100);
  process.stderr.write(
    `${table(
      ["charge", "amount", "period start", "period end", "transaction"],
      charges.map((charge) => [charge.kind, `${charge.amount} USDC`, charge.periodStart, charge.periodEnd, short(charge.transactionHash)]),
      [1],
    ).replace(/^/gm, "  ")}\n`,
  );

  // ------------------------------------------------------------------------------------------ 5. money out
  step("5. the money out: the held payments released and the subscription income paid out, to the payout address");
  need("post /v1/invoices/{id}/release", "get /v1/payouts");
  const payout = me.payoutAddress;
  const ethBefore = await client.getBalance({ address: payout });
  const usdcBefore = await usdcBalance(payout);
  // Their day of hold is long over: the keeper (npm start runs one, every 15 s) releases them; the merchant may
  // also ask for it at once. Whoever comes first does it, once.
  for (const invoice of depositPaid ? [ethInvoice, usdcInvoice, depositInvoice] : [ethInvoice, usdcInvoice]) {
    const answer = await api.raw("POST", `/v1/invoices/${invoice.id}/release`, { idempotencyKey: `demo-${runId}-release-${invoice.id}` });
    const problem = answer.ok ? undefined : ((await answer.json()) as { type: string }).type;
    const released = await waitForStatus(api, invoice.id, ["released"]);
    detail(
      answer.ok
        ? `POST /v1/invoices/${invoice.id}/release → ${answer.status}: ${released.status}`
        : `POST /v1/invoices/${invoice.id}/release → ${answer.status} ${problem}: the keeper released it first`,
    );
  }
  // Subscription income: the keeper pays it out on the merchant's schedule (daily by default).
  let payouts: { kind: string; amount: string; currency: string; transactionHash: Hex; paidAt: string }[] = [];
  const keeperPaidOut = await waitFor(
    "the keeper to pay out the subscription income",
    async () => {
      payouts = (await api.request<{ data: typeof payouts }>("GET", "/v1/payouts", { query: { limit: 20 } })).data;
      return payouts.some((item) => item.kind === "withdrawal" && Date.parse(item.paidAt) >= Number(chainTime) * 1000);
    },
    40_000,
    500,
  ).then(
    () => true,
    () => false,
  );
  if (!keeperPaidOut) {
    detail("no keeper paid it out (is one running?): withdrawing it from account #0 (anyone may)");
    const hash = await wallet(KEEPER).writeContract({
      address: deployment.contracts.SubscriptionManager.address,
      abi: subscriptionManagerAbi,
      functionName: "withdraw",
      args: [BigInt(registration.onchainMerchantId!), usdc, [BigInt(subscription!.subscriptionId)]],
      chain: null,
    });
    await client.waitForTransactionReceipt({ hash });
    await waitFor("the withdrawal to be indexed", async () => {
      payouts = (await api.request<{ data: typeof payouts }>("GET", "/v1/payouts", { query: { limit: 20 } })).data;
      return payouts.some((item) => item.transactionHash === hash);
    }, 30_000, 200);
  }
  process.stderr.write(
    `${table(
      ["payout (GET /v1/payouts)", "amount", "time", "transaction"],
      payouts.map((item) => [item.kind, `${item.amount} ${item.currency}`, item.paidAt, short(item.transactionHash)]),
      [1],
    ).replace(/^/gm, "  ")}\n`,
  );
  detail(
    `payout address ${payout}: ${formatEther(ethBefore)} → ${formatEther(await client.getBalance({ address: payout }))} ETH, ${usdcBefore} → ${await usdcBalance(payout)} USDC`,
  );

  // ------------------------------------------------------------------------------------------ 6. BTC invoice
  const bitcoin = stack.bitcoin;
  if (bitcoin) await bitcoinStep(api, bitcoin.esploraUrl, runId);
  else step("6. (no Bitcoin: this stack runs without the local regtest chain, so the BTC invoice is skipped)");

  // ------------------------------------------------------------------------------------------ 7. statements
  step("7. the statements (GET /v1/statements), from yesterday to the chain's now");
  need("get /v1/statements");
  // The chain's clock is a month ahead of the wall clock now: start the period before this walkthrough.
  const from = new Date(Date.now() - 86_400_000).toISOString();
  for (const currency of bitcoin ? ["ETH", "USDC", "BTC"] : ["ETH", "USDC"]) {
    const statement = await api.request<Statement>("GET", "/v1/statements", { query: { currency, from, limit: 1000 } });
    for (const part of statement.chains) {
      const where = part.chainId === null ? `${part.network} (the merchant's own wallet: no escrow)` : `chain ${part.chainId}, merchant #${part.onchainMerchantId}`;
      process.stdout.write(`\n${currency} statement, ${where}, ${statement.from} → ${statement.to}\n`);
      process.stdout.write(
        `${table(
          ["time", "kind", "amount", "in fiat", "counterparty", "invoice / reference", "transaction"],
          part.entries.map((entry) => [
            entry.timestamp.replace(".000Z", "Z"),
            entry.kind,
            entry.amount,
            entry.fiatValue ? `${entry.fiatValue} ${entry.fiatCurrency}` : "",
            short(entry.counterparty),
            entry.invoiceId ?? short(entry.reference),
            short(entry.transactionHash),
          ]),
          [2, 3],
        )}\n`,
      );
      process.stdout.write(
        `opening ${part.openingBalance}  paid ${part.totals.paid}  refunded ${part.totals.refunded}  released ${part.totals.released}  fees ${part.totals.fees}  closing ${part.closingBalance} ${currency}\n`,
      );
      if (part.fiat?.totals) process.stdout.write(`in ${part.fiat.currency}: paid ${part.fiat.totals.paid}  refunded ${part.fiat.totals.refunded}  released ${part.fiat.totals.released}  net ${part.fiat.totals.net}\n`);
      else if (part.fiat) process.stdout.write(`in ${part.fiat.currency}: ${part.fiat.entriesWithoutRate} entries have no recorded rate (e.g. subscription charges), so no totals in ${part.fiat.currency}\n`);
    }
    const csv = await api.request<string>("GET", "/v1/statements", { query: { currency, from }, accept: "text/csv" });
    const file = path.join(paths.dataDir, `demo-statement-${currency.toLowerCase()}.csv`);
    writeFileSync(file, csv);
    detail(`${currency} statement as CSV (Accept: text/csv): ${file} (${csv.trim().split("\n").length - 1} entries after the header)`);
  }

  // ------------------------------------------------------------------------------------------ 8. webhooks
  step("8. the webhooks the local receiver got (Standard Webhooks signatures, verified)");
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  process.stdout.write(
    `\n${table(
      ["received", "event", "webhook-id", "about", "signature"],
      receiver.received.map((entry) => [entry.at.slice(11, 23), entry.type, entry.id, entry.subject, entry.verified ? "verified" : "INVALID"]),
    ).replace(/^/gm, "  ")}\n`,
  );
  await api.raw("DELETE", `/v1/webhook-endpoints/${endpoint.id}`, { idempotencyKey: `demo-${runId}-endpoint-delete` });
  await receiver.close();
  detail(`${receiver.received.length} webhooks received, ${receiver.received.filter((entry) => entry.verified).length} verified; endpoint ${endpoint.id} deleted`);

  const eth = formatEther(await client.getBalance({ address: testAccount(CUSTOMER_ETH).address }));
  process.stdout.write(
    `\nDone in ${seconds()}. Customer #${CUSTOMER_ETH} now holds ${eth} ETH; open ${stack.apiUrl}/docs to try the API yourself.\n`,
  );
}

/**
 * Step 6: a BTC invoice on the local regtest chain: the merchant's account key (public only), an invoice with
 * its own address, a customer paying it (the chain's faucet plays the customer's wallet), a block, the
 * confirmation.
 */
async function bitcoinStep(api: ApiClient, esploraUrl: string, runId: string): Promise<void> {
  step("6. a BTC invoice on the LOCAL SIMULATED regtest chain (no escrow: paid straight to the merchant's wallet)");
  const wallet = testWallet(0);
  const account = await api.request<{ descriptor: string; firstAddress: string; confirmations: number }>("PUT", "/v1/merchants/me/bitcoin", {
    body: { key: wallet.descriptor, confirmations: 1 },
  });
  detail(`account key (public only) PUT /v1/merchants/me/bitcoin: ${account.descriptor.slice(0, 44)}…; first address ${account.firstAddress}`);
  const invoice = await api.request<BtcInvoice>("POST", "/v1/invoices", {
    idempotencyKey: `demo-${runId}-btc`,
    body: { amount: "0.0015", currency: "BTC", description: "Hardware wallet", customer: { id: "cus_demo_satoshi" }, metadata: { order: `demo-${runId}-btc` } },
  });
  detail(`${invoice.id}: ${invoice.amount} BTC to ${invoice.payment.btc.address} (custody: ${invoice.payment.btc.custody})`);
  detail(`BIP21 link for a QR code: ${invoice.payment.btc.uri}`);
  const regtest = async (action: string, body: unknown) => {
    const response = await fetch(`${esploraUrl}/regtest/${action}`, { method: "POST", body: JSON.stringify(body) });
    const answer = (await response.json()) as { txid?: string; height?: number; error?: string };
    if (!response.ok) throw new Error(`the local regtest chain refused ${action}: ${answer.error}`);
    return answer;
  };
  const paid = await regtest("pay", { address: invoice.payment.btc.address, amountSats: invoice.payment.btc.amountSats });
  detail(`a customer's wallet sends ${invoice.payment.btc.amountSats} sats: transaction ${short(paid.txid!)} in the mempool`);
  await waitForStatus(api, invoice.id, ["pending", "paid"]);
  const mined = await regtest("mine", { blocks: 1 });
  detail(`a block is mined (height ${mined.height})`);
  const confirmed = await waitForStatus(api, invoice.id, ["paid"]);
  detail(`${confirmed.confirmations} confirmation of ${confirmed.confirmationsRequired} required: invoice.paid and invoice.confirmed are on their way to the receiver`);
}

function describeInvoice(invoice: Invoice): void {
  detail(`${invoice.id}: ${invoice.amount} ${invoice.currency}, status ${invoice.status}`);
  for (const [index, transaction] of invoice.payment.evm.transactions.entries()) {
    const value = BigInt(transaction.value) > 0n ? `, value ${formatEther(BigInt(transaction.value))} ETH` : "";
    detail(`  tx ${index + 1}: to ${transaction.to}${value} — ${transaction.description ?? ""}`);
    detail(`        EIP-681 link: ${transaction.uri.slice(0, 90)}…`);
  }
}

interface DemoReceived {
  at: string;
  id: string;
  type: string;
  subject: string;
  verified: boolean;
}

/** A local HTTP server standing for the merchant's: verifies each webhook and prints it as it arrives. */
async function startDemoReceiver(): Promise<{ url: string; secret: string; received: DemoReceived[]; close(): Promise<void> }> {
  const received: DemoReceived[] = [];
  const state = { secret: "" };
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const headers = {
        "webhook-id": String(request.headers["webhook-id"] ?? ""),
        "webhook-timestamp": String(request.headers["webhook-timestamp"] ?? ""),
        "webhook-signature": String(request.headers["webhook-signature"] ?? ""),
      };
      let event: { type?: string; data?: Record<string, unknown> } = {};
      let verified = false;
      try {
        event = new Webhook(state.secret).verify(body, headers) as typeof event;
        verified = true;
      } catch {
        verified = false;
      }
      const data = event.data ?? {};
      const subject = String(data.invoiceId ?? data.subscriptionId ?? data.payout ?? "");
      const entry = { at: new Date().toISOString(), id: headers["webhook-id"], type: event.type ?? "?", subject, verified };
      received.push(entry);
      detail(`  ⇐ webhook ${entry.type} ${subject} (${entry.id}, signature ${verified ? "verified" : "INVALID"})`);
      response.writeHead(verified ? 200 : 400).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks`;
  return {
    url,
    get secret() {
      return state.secret;
    },
    set secret(value: string) {
      state.secret = value;
    },
    received,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends the transactions in order from `wallet`; returns when the last is mined (ms since epoch). */
async function payWith(wallet: Wallet, client: PublicClient, transactions: Transaction[]): Promise<number> {
  for (const transaction of transactions) {
    const hash = await wallet.sendTransaction({ to: transaction.to, data: transaction.data, value: BigInt(transaction.value), chain: null });
    const receipt = await client.waitForTransactionReceipt({ hash, pollingInterval: 50 });
    if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
    detail(`sent ${short(hash)} to ${short(transaction.to)}: mined in block ${receipt.blockNumber}`);
  }
  return Date.now();
}

/** Polls GET /v1/invoices/:id until its status is one of `statuses`. */
async function waitForStatus(api: ApiClient, id: string, statuses: string[], since?: number): Promise<Invoice> {
  let invoice: Invoice | undefined;
  await waitFor(`invoice ${id} to be ${statuses.join(" or ")}`, async () => {
    invoice = await api.request<Invoice>("GET", `/v1/invoices/${id}`);
    return statuses.includes(invoice.status);
  }, 30_000, 25);
  detail(`GET /v1/invoices/${id} → ${invoice!.status}${since ? ` (${Date.now() - since} ms after the transaction was mined)` : ""}`);
  return invoice!;
}

main()
  .catch((error: unknown) => {
    const message = error instanceof MissingRoute ? `stopped: ${error.message}` : error instanceof Error ? error.message : String(error);
    process.stderr.write(`\n✗ npm run demo: ${message}\n`);
    process.exitCode = 1;
  })
  // Idle keep-alive sockets to the API and the node would otherwise hold the process for a few seconds.
  .finally(() => process.exit());
