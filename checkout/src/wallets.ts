/**
 * Browser wallets by EIP-6963 (multi-injected provider discovery): every wallet extension announces itself with
 * a name, an icon and its EIP-1193 provider, so the customer picks one instead of whichever extension won the
 * race for `window.ethereum`. A wallet that only injects `window.ethereum` is offered as "Browser wallet".
 */
import type { EIP1193Provider } from "viem";

export interface WalletInfo {
  uuid: string;
  name: string;
  /** A data: URI image (anything else is not shown: the page loads nothing from other origins). */
  icon: string;
  rdns: string;
}

export interface WalletDetail {
  info: WalletInfo;
  provider: EIP1193Provider;
}

function isDetail(value: unknown): value is WalletDetail {
  if (!value || typeof value !== "object") return false;
  const { info, provider } = value as Partial<WalletDetail>;
  return (
    !!info &&
    typeof info.uuid === "string" &&
    typeof info.name === "string" &&
    info.name.length > 0 &&
    !!provider &&
    typeof (provider as { request?: unknown }).request === "function"
  );
}

/** Calls `onChange` with the wallets found so far, each time one announces itself; returns a stop function. */
export function discoverWallets(onChange: (wallets: WalletDetail[]) => void, legacyAfterMs = 400): () => void {
  const found = new Map<string, WalletDetail>();
  const announce = (event: Event) => {
    const detail = (event as CustomEvent<unknown>).detail;
    if (!isDetail(detail)) return;
    // A wallet announcing itself again (on every requestProvider) changes nothing: no re-render, so a button the
    // customer is about to press is never replaced under them.
    if (found.get(detail.info.uuid)?.provider === detail.provider) return;
    const icon = typeof detail.info.icon === "string" && /^data:image\/(svg\+xml|png|webp|jpeg|gif)[;,]/.test(detail.info.icon) ? detail.info.icon : "";
    found.set(detail.info.uuid, { info: { uuid: detail.info.uuid, name: detail.info.name.slice(0, 60), icon, rdns: String(detail.info.rdns ?? "") }, provider: detail.provider });
    onChange([...found.values()]);
  };
  window.addEventListener("eip6963:announceProvider", announce);
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  const legacy = setTimeout(() => {
    if (found.size > 0) return; // announced wallets are shown already
    const injected = (window as unknown as { ethereum?: EIP1193Provider }).ethereum;
    if (injected && typeof injected.request === "function") {
      found.set("injected", { info: { uuid: "injected", name: "Browser wallet", icon: "", rdns: "injected" }, provider: injected });
    }
    onChange([...found.values()]); // the injected wallet, or none ("no browser wallet found")
  }, legacyAfterMs);
  return () => {
    clearTimeout(legacy);
    window.removeEventListener("eip6963:announceProvider", announce);
  };
}

/** The EIP-1193 / JSON-RPC error code in an error or any of its causes (viem wraps provider errors). */
export function errorCode(error: unknown): number | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth += 1) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "number") return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** The first error in the chain whose name is `name` (e.g. the SDK's `WrongChainError`). */
export function errorNamed(error: unknown, name: string): boolean {
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth += 1) {
    if ((current as { name?: unknown }).name === name) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

/** A short reason for the customer: viem's `shortMessage` when there is one. */
export function shortReason(error: unknown): string {
  const short = (error as { shortMessage?: unknown }).shortMessage;
  if (typeof short === "string" && short) return short;
  const message = error instanceof Error ? error.message : String(error);
  return message.split("\n")[0].slice(0, 200);
}
