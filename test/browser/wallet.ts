/**
 * A test wallet injected into the page: it announces itself over EIP-6963 like any wallet extension, answers
 * EIP-1193 requests, and signs and sends with a Hardhat account by forwarding to the local node (whose accounts
 * are unlocked), so every signature and transaction is real. The test steers it the way a customer would: the
 * network it is on, whether it agrees to switch, and requests it rejects (4001) or cannot do (4200).
 */
import type { BrowserContext } from "playwright-core";
import { numberToHex, type Address } from "viem";

export interface TestWallet {
  address: Address;
  /** The network the wallet is on (it may differ from the node's: then it refuses to send). */
  chainId: number;
  /** Whether it agrees to `wallet_switchEthereumChain`. */
  allowSwitch: boolean;
  /** Methods the customer rejects (EIP-1193 4001). */
  reject: Set<string>;
  /** Methods the wallet does not support (EIP-1193 4200), e.g. eth_signTypedData_v4 on some hardware wallets. */
  unsupported: Set<string>;
  /** Every request the page made, in order. */
  calls: { method: string; params: unknown }[];
}

const ICON =
  "data:image/svg+xml;base64," +
  Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#7c3aed"/><path d="M8 11h16v10H8z" fill="#fff"/></svg>').toString("base64");

const PAGE_SCRIPT = `(() => {
  const listeners = {};
  const provider = {
    isChainbillTestWallet: true,
    async request(args) {
      const answer = await window.__chainbillTestWallet(args.method, args.params ?? []);
      if (answer.error) {
        const error = new Error(answer.error.message);
        error.code = answer.error.code;
        throw error;
      }
      return answer.result;
    },
    on(event, listener) { (listeners[event] = listeners[event] || []).push(listener); return provider; },
    removeListener(event, listener) { listeners[event] = (listeners[event] || []).filter((other) => other !== listener); return provider; },
  };
  window.__chainbillTestWalletEmit = (event, data) => (listeners[event] || []).forEach((listener) => listener(data));
  const detail = Object.freeze({ info: Object.freeze({ uuid: "6f1d1c1e-2f7b-4c1a-9a51-0c7c1b2a3d4e", name: "Test Wallet", icon: ${JSON.stringify(ICON)}, rdns: "dev.chainbill.testwallet" }), provider });
  const announce = () => window.dispatchEvent(new CustomEvent("eip6963:announceProvider", { detail }));
  window.addEventListener("eip6963:requestProvider", announce);
  announce();
})();`;

type Answer = { result: unknown } | { error: { code: number; message: string } };

/** Installs the wallet into every page of `context`; `nodeChainId` is the chain the node behind `rpcUrl` runs. */
export async function installTestWallet(context: BrowserContext, options: { rpcUrl: string; nodeChainId: number; address: Address; chainId?: number }): Promise<TestWallet> {
  const wallet: TestWallet = {
    address: options.address,
    chainId: options.chainId ?? options.nodeChainId,
    allowSwitch: true,
    reject: new Set(),
    unsupported: new Set(),
    calls: [],
  };
  let requestId = 0;
  const forward = async (method: string, params: unknown): Promise<Answer> => {
    const response = await fetch(options.rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: ++requestId, method, params }),
    });
    const json = (await response.json()) as { result?: unknown; error?: { code: number; message: string } };
    return json.error ? { error: { code: json.error.code, message: json.error.message } } : { result: json.result };
  };
  await context.exposeBinding("__chainbillTestWallet", async (source, method: string, params: unknown[]): Promise<Answer> => {
    wallet.calls.push({ method, params });
    if (wallet.unsupported.has(method)) return { error: { code: 4200, message: `The wallet does not support ${method}.` } };
    if (wallet.reject.has(method)) return { error: { code: 4001, message: "User rejected the request." } };
    switch (method) {
      case "eth_requestAccounts":
      case "eth_accounts":
        return { result: [wallet.address] };
      case "eth_chainId":
        return { result: numberToHex(wallet.chainId) };
      case "net_version":
        return { result: String(wallet.chainId) };
      case "wallet_switchEthereumChain": {
        const wanted = Number((params[0] as { chainId: string }).chainId);
        if (!wallet.allowSwitch) return { error: { code: 4001, message: "User rejected the request." } };
        if (wanted !== options.nodeChainId) return { error: { code: 4902, message: `Unrecognized chain ID ${wanted}.` } };
        wallet.chainId = wanted;
        await source.page.evaluate((id) => (window as unknown as { __chainbillTestWalletEmit(event: string, data: unknown): void }).__chainbillTestWalletEmit("chainChanged", id), numberToHex(wanted));
        return { result: null };
      }
      case "eth_sendTransaction":
      case "eth_signTypedData_v4":
      case "personal_sign":
        if (wallet.chainId !== options.nodeChainId) return { error: { code: -32603, message: `The wallet is on chain ${wallet.chainId}.` } };
        return forward(method, params);
      default:
        return forward(method, params);
    }
  });
  await context.addInitScript(PAGE_SCRIPT);
  return wallet;
}
