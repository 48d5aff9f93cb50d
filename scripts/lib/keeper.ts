/**
 * The keeper's work loop, one run at a time: ask the API what is due (`GET /v1/keeper/work`, admin key), then for
 * every call — release, automatic refund, renewal batch, scheduled payout of subscription income — simulate it
 * with the keeper's own key, skip it (and say why) when the contract would refuse it or it would change nothing,
 * and otherwise send it and wait for it, one transaction at a time (one queue per key), within a gas budget per
 * run. Everything it does is a call anyone may make; a second keeper doing the same work finds it done in its
 * simulation, so each piece of work is sent once.
 */
import {
  BaseError,
  ContractFunctionRevertedError,
  createWalletClient,
  formatEther,
  http,
  type Abi,
  type Account,
  type Address,
  type Hex,
  type PublicClient,
} from "viem";
import { billingEscrowAbi, subscriptionManagerAbi } from "../../contracts/abi";
import { invoiceFromJson, type InvoiceJson } from "../../contracts/invoice";
import type { ApiClient } from "./api-client";

/** Subscriptions renewed per transaction (well under the contract's 250 and a block's gas). */
export const RENEW_BATCH = 50;

export interface KeeperChain {
  id: number;
  rpcUrl: string;
  client: PublicClient;
}

export interface KeeperOptions {
  api: ApiClient;
  /** The API's admin key: the work list is for the keeper of the installation. */
  adminKey: string;
  chains: KeeperChain[];
  account: Account;
  /** Gas the keeper may spend in one run, over all chains; the rest waits for the next run. */
  maxGasPerRun: bigint;
  log: (line: string) => void;
}

export interface KeeperAction {
  chainId: number;
  label: string;
  /** Why it was due. */
  reason: string;
  hash?: Hex;
  gasUsed?: bigint;
  costWei?: bigint;
  skipped?: string;
}

interface InvoiceWork {
  invoiceId: string;
  contract: Address;
  terms: InvoiceJson;
  reason: string;
}

interface Work {
  chainId: number;
  releases: InvoiceWork[];
  unfulfilledRefunds: InvoiceWork[];
  expiredDisputeRefunds: InvoiceWork[];
  renewals: { contract: Address; subscriptionIds: string[] };
  withdrawals: { contract: Address; merchantId: string; token: Address; subscriptionIds: string[]; reason: string }[];
  /** Absent from an API older than deposit addresses. */
  depositSweeps?: (InvoiceWork & { signature: `0x${string}` })[];
  depositReturns?: InvoiceWork[];
}

interface Call {
  label: string;
  reason: string;
  address: Address;
  abi: Abi;
  functionName: string;
  args: readonly unknown[];
}

function callsOf(work: Work): Call[] {
  const invoiceCall = (item: InvoiceWork, functionName: string, what: string): Call => ({
    label: `${what} ${item.invoiceId}`,
    reason: item.reason,
    address: item.contract,
    abi: billingEscrowAbi as Abi,
    functionName,
    args: [invoiceFromJson(item.terms)],
  });
  const calls: Call[] = [
    // Sweeps first: a customer's payment waiting at a deposit address becomes the invoice's payment.
    ...(work.depositSweeps ?? []).map((item) => ({ ...invoiceCall(item, "sweepDeposit", "sweep the deposit address of"), args: [invoiceFromJson(item.terms), item.signature] })),
    ...(work.depositReturns ?? []).map((item) => invoiceCall(item, "returnDeposit", "return a deposit of")),
    ...work.releases.map((item) => invoiceCall(item, "release", "release")),
    ...work.unfulfilledRefunds.map((item) => invoiceCall(item, "refundUnfulfilled", "refund (missed fulfillBy)")),
    ...work.expiredDisputeRefunds.map((item) => invoiceCall(item, "refundExpiredDispute", "refund (expired dispute)")),
  ];
  const ids = work.renewals.subscriptionIds.map(BigInt);
  for (let start = 0; start < ids.length; start += RENEW_BATCH) {
    const batch = ids.slice(start, start + RENEW_BATCH);
    calls.push({
      label: `renew [${batch.join(", ")}]`,
      reason: "due",
      address: work.renewals.contract,
      abi: subscriptionManagerAbi as Abi,
      functionName: "renew",
      args: [batch],
    });
  }
  for (const payout of work.withdrawals) {
    calls.push({
      label: `pay out subscription income of merchant #${payout.merchantId} (${payout.token})`,
      reason: payout.reason,
      address: payout.contract,
      abi: subscriptionManagerAbi as Abi,
      functionName: "withdraw",
      args: [BigInt(payout.merchantId), payout.token, payout.subscriptionIds.map(BigInt)],
    });
  }
  return calls;
}

/** The contract's error name for a refused simulation, or the node's short message. */
function refusal(error: unknown): string {
  const revert = error instanceof BaseError ? error.walk((cause) => cause instanceof ContractFunctionRevertedError) : null;
  if (revert instanceof ContractFunctionRevertedError) return revert.data?.errorName ?? revert.reason ?? "reverted";
  return error instanceof BaseError ? error.shortMessage : String(error);
}

/** One keeper run over every chain. Returns what it sent and what it skipped, with why. */
export async function runKeeperOnce(options: KeeperOptions): Promise<KeeperAction[]> {
  const actions: KeeperAction[] = [];
  let gasLeft = options.maxGasPerRun;
  for (const chain of options.chains) {
    const work = await options.api.request<Work>("GET", "/v1/keeper/work", { key: options.adminKey, query: { chainId: chain.id } });
    const wallet = createWalletClient({ account: options.account, transport: http(chain.rpcUrl, { retryCount: 0 }) });
    for (const planned of callsOf(work)) {
      let call = planned;
      let gas: bigint;
      try {
        if (call.functionName === "renew") {
          // Only what the chain still calls due (another keeper may have renewed some). A renewal that cannot
          // charge is still sent: it moves the subscription to past due, and past its grace period, to lapsed.
          const ids = call.args[0] as bigint[];
          const due = await Promise.all(
            ids.map((id) => chain.client.readContract({ address: call.address, abi: subscriptionManagerAbi, functionName: "isDue", args: [id] }) as Promise<boolean>),
          );
          const stillDue = ids.filter((_, index) => due[index]);
          if (stillDue.length === 0) {
            actions.push({ chainId: chain.id, label: call.label, reason: call.reason, skipped: "none of them is due any more" });
            continue;
          }
          call = { ...call, label: `renew [${stillDue.join(", ")}]`, args: [stillDue] };
        }
        await chain.client.simulateContract({
          account: options.account,
          address: call.address,
          abi: call.abi,
          functionName: call.functionName,
          args: call.args,
        } as Parameters<PublicClient["simulateContract"]>[0]);
        gas = await chain.client.estimateContractGas({
          account: options.account,
          address: call.address,
          abi: call.abi,
          functionName: call.functionName,
          args: call.args,
        } as Parameters<PublicClient["estimateContractGas"]>[0]);
      } catch (error) {
        actions.push({ chainId: chain.id, label: call.label, reason: call.reason, skipped: `the contract refuses it (${refusal(error)})` });
        continue;
      }
      if (gas > gasLeft) {
        actions.push({ chainId: chain.id, label: call.label, reason: call.reason, skipped: "the run's gas budget is spent: next run" });
        continue;
      }
      gasLeft -= gas;
      try {
        const hash = await wallet.writeContract({
          address: call.address,
          abi: call.abi,
          functionName: call.functionName,
          args: call.args,
          gas,
          chain: null,
        } as Parameters<typeof wallet.writeContract>[0]);
        const receipt = await chain.client.waitForTransactionReceipt({ hash, pollingInterval: 100 });
        if (receipt.status !== "success") {
          actions.push({ chainId: chain.id, label: call.label, reason: call.reason, hash, skipped: "reverted when mined (someone did it first)" });
          continue;
        }
        actions.push({ chainId: chain.id, label: call.label, reason: call.reason, hash, gasUsed: receipt.gasUsed, costWei: receipt.gasUsed * receipt.effectiveGasPrice });
      } catch (error) {
        actions.push({ chainId: chain.id, label: call.label, reason: call.reason, skipped: `not sent: ${refusal(error)}` });
      }
    }
  }
  for (const action of actions) {
    options.log(
      action.skipped
        ? `chain ${action.chainId}: skipped ${action.label}: ${action.skipped}`
        : `chain ${action.chainId}: ${action.label} (${action.reason}) → ${action.hash}, ${action.gasUsed} gas, ${formatEther(action.costWei ?? 0n)} ETH`,
    );
  }
  return actions;
}
