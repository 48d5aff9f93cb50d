/**
 * The hosted checkout page (`/pay/{id}`): renders the invoice from the view the server embedded, offers the ways
 * to pay (a browser wallet found by EIP-6963, or a plain transfer by QR code / address), and follows the status
 * live from `GET /pay/{id}/events` (Server-Sent Events) without reloading. The wallet pays with the SDK's
 * `payInvoice` (approve + pay, permit + pay in one confirmation, or ETH), exactly as a dApp would.
 */
import { payInvoice, type PaymentInstructions } from "@chainbill/sdk";
import { createClient, custom, defineChain, type Address, type EIP1193Provider } from "viem";
import { byId, embedded, formatDuration, formatTime, h } from "./dom";
import { t, type Locale, type MessageKey } from "./i18n";
import { FINAL_FOR_CUSTOMER, type CheckoutView } from "./types";
import { discoverWallets, errorCode, errorNamed, shortReason, type WalletDetail } from "./wallets";

const { view: initial, locale } = embedded<{ view: CheckoutView; locale: Locale }>();
let view = initial;
/** Chain time minus device time (ms): the countdown follows the chain's clock, which decides expiry. */
let clockOffset = Date.parse(view.now) - Date.now();
let paying = false;

const say = (key: MessageKey, values: Record<string, string | number> = {}) => t(locale, key, values);

function summary(): HTMLElement {
  // A fiat-priced invoice lists its items in the fiat currency; otherwise in the paid currency.
  const itemCurrency = view.price?.fiatAmount ? view.price.fiatCurrency : view.currency;
  const items = view.lineItems.length
    ? h(
        "table",
        { class: "items" },
        h("caption", { class: "visually-hidden" }, view.description ?? ""),
        h(
          "tbody",
          {},
          ...view.lineItems.map((item) =>
            h("tr", {}, h("th", { scope: "row" }, item.description), h("td", {}, say("invoice.quantity", { quantity: item.quantity })), h("td", { class: "num" }, `${item.unitAmount} ${itemCurrency}`)),
          ),
        ),
      )
    : null;
  const fiat = view.price?.fiatAmount
    ? h("p", { class: "fiat", id: "fiat" }, say("invoice.fiat", { fiat: view.price.fiatAmount, fiatCurrency: view.price.fiatCurrency, currency: view.currency, rate: view.price.rate }))
    : null;
  return h(
    "section",
    { class: "summary", "aria-label": say("invoice.total") },
    view.description ? h("p", { class: "description" }, view.description) : null,
    items,
    h("p", { class: "total" }, h("span", {}, say("invoice.total")), h("strong", { id: "total" }, `${view.amount} ${view.currency}`)),
    fiat,
    h("p", { class: "network" }, h("span", {}, say("invoice.network")), h("span", { id: "network" }, view.chain.name)),
    h("p", { class: "countdown", id: "countdown", role: "timer", "aria-live": "off" }),
    view.price?.lockedUntil ? h("p", { class: "muted", id: "rate-lock" }, say("invoice.rateLocked", { time: formatTime(view.price.lockedUntil, locale) })) : null,
  );
}

function walletSection(): HTMLElement | null {
  if (!view.evm) return null;
  return h(
    "section",
    { class: "wallet", id: "wallet-section", "aria-labelledby": "wallet-heading" },
    h("h2", { id: "wallet-heading" }, say("wallet.heading")),
    h("div", { id: "wallets", class: "wallets" }),
    h("p", { id: "wallet-progress", class: "progress", role: "status", "aria-live": "polite" }),
    h("p", { id: "wallet-error", class: "error", role: "alert" }),
  );
}

function transferSection(): HTMLElement | null {
  if (!view.transfer) return null;
  const copy = h("button", { type: "button", id: "copy-address", class: "secondary" }, say("transfer.copy"));
  copy.addEventListener("click", () => {
    void navigator.clipboard?.writeText(view.transfer!.address).then(
      () => (byId("copy-status").textContent = say("transfer.copied")),
      () => undefined,
    );
  });
  return h(
    "section",
    { class: "transfer", id: "transfer-section", "aria-labelledby": "transfer-heading" },
    h("h2", { id: "transfer-heading" }, say("transfer.heading")),
    h("p", { id: "transfer-instructions" }, say("transfer.instructions", { amount: view.amount, currency: view.currency, chain: view.chain.name })),
    h("img", { class: "qr", src: `/pay/${encodeURIComponent(view.id)}/qr.svg`, alt: say("transfer.qr"), width: "220", height: "220" }),
    h("p", { class: "address" }, h("code", { id: "transfer-address", translate: "no" }, view.transfer.address)),
    h("p", { class: "actions" }, copy, h("a", { id: "transfer-uri", class: "button secondary", href: view.transfer.uri }, say("transfer.open"))),
    h("p", { id: "copy-status", class: "muted", role: "status", "aria-live": "polite" }),
  );
}

function render(): void {
  const app = byId("app");
  app.replaceChildren(
    summary(),
    h(
      "section",
      { class: "status", "aria-labelledby": "status-heading" },
      h("h2", { id: "status-heading" }, say("status.heading")),
      h("p", { id: "status", role: "status", "aria-live": "polite", "data-status": view.status }),
      h("p", { id: "confirmations", class: "muted" }),
      h("p", { id: "freshness", class: "muted" }),
    ),
    h("div", { id: "pay" }, walletSection(), transferSection()),
    h(
      "section",
      { class: "receipt", id: "receipt", hidden: true, "aria-labelledby": "receipt-heading" },
      h("h2", { id: "receipt-heading" }, say("receipt.heading")),
      h("dl", {}, h("dt", {}, say("receipt.transaction")), h("dd", {}, h("code", { id: "receipt-tx", translate: "no" })), h("dd", { id: "receipt-explorer" }), h("dd", { id: "receipt-time", class: "muted" })),
    ),
    h("nav", { class: "return", id: "return" }),
  );
  app.removeAttribute("aria-busy");
  update();
}

/** Applies the current view to the rendered page (texts and visibility only, so focus stays where it is). */
function update(): void {
  const status = byId("status");
  status.dataset.status = view.status;
  const values = { received: view.transfer?.receivedAmount ?? "0", due: view.transfer?.dueAmount ?? "0", currency: view.currency, refunded: view.refundedAmount };
  const text = say(`status.${view.status}` as MessageKey, values);
  if (status.textContent !== text) status.textContent = text;
  byId("confirmations").textContent =
    view.paid && view.paid.confirmations !== null ? say("status.confirmations", { count: view.paid.confirmations, required: view.paid.confirmationsRequired }) : "";
  byId("freshness").textContent = view.indexed.block !== null ? say("status.updated", { block: view.indexed.block }) : "";
  const final = FINAL_FOR_CUSTOMER.has(view.status);
  byId("pay").hidden = final;
  const receipt = byId("receipt");
  receipt.hidden = !view.paid;
  if (view.paid) {
    byId("receipt-tx").textContent = view.paid.transaction ?? "";
    const explorer = byId("receipt-explorer");
    explorer.replaceChildren(view.paid.explorerUrl ? h("a", { href: view.paid.explorerUrl, rel: "noopener noreferrer", target: "_blank" }, say("receipt.explorer")) : "");
    byId("receipt-time").textContent = view.paid.at ? say("receipt.paidAt", { time: formatTime(view.paid.at, locale) }) : "";
  }
  const links: HTMLElement[] = [];
  if (view.paid && view.successUrl) links.push(h("a", { class: "button", id: "return-success", href: view.successUrl }, say("return.success", { merchant: view.merchant.name })));
  if (!view.paid && view.cancelUrl) links.push(h("a", { class: "button secondary", id: "return-cancel", href: view.cancelUrl }, say("return.cancel", { merchant: view.merchant.name })));
  const nav = byId("return");
  if (nav.childElementCount !== links.length || (links[0] && nav.firstElementChild?.id !== links[0].id)) nav.replaceChildren(...links);
  tick();
}

function tick(): void {
  const countdown = document.getElementById("countdown");
  if (!countdown) return;
  if (FINAL_FOR_CUSTOMER.has(view.status) && view.status !== "expired") {
    countdown.textContent = "";
    return;
  }
  const left = (Date.parse(view.expiresAt) - (Date.now() + clockOffset)) / 1000;
  countdown.textContent = left > 0 && view.status !== "expired" ? say("invoice.expiresIn", { time: formatDuration(left) }) : say("invoice.expired");
}

function showWallets(wallets: WalletDetail[]): void {
  const list = document.getElementById("wallets");
  if (!list) return;
  if (wallets.length === 0) {
    list.replaceChildren(h("p", { class: "muted", id: "no-wallet" }, say("wallet.none")));
    return;
  }
  list.replaceChildren(
    ...wallets.map((wallet) => {
      const button = h(
        "button",
        { type: "button", class: "wallet-button", "data-wallet": wallet.info.rdns || wallet.info.uuid },
        wallet.info.icon ? h("img", { src: wallet.info.icon, alt: "", width: "28", height: "28" }) : null,
        h("span", {}, say("wallet.connect", { wallet: wallet.info.name })),
      );
      button.addEventListener("click", () => void pay(wallet));
      return button;
    }),
  );
}

function progress(text: string): void {
  byId("wallet-progress").textContent = text;
}

function fail(text: string): void {
  progress("");
  byId("wallet-error").textContent = text;
}

async function pay(wallet: WalletDetail): Promise<void> {
  if (paying || !view.evm) return;
  paying = true;
  const buttons = [...document.querySelectorAll<HTMLButtonElement>(".wallet-button")];
  buttons.forEach((button) => (button.disabled = true));
  byId("wallet-error").textContent = "";
  const instructions = view.evm as unknown as PaymentInstructions;
  const chain = defineChain({
    id: view.evm.chainId,
    name: view.chain.name,
    nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
    rpcUrls: { default: { http: [] } },
  });
  try {
    progress(say("wallet.step.connect", { wallet: wallet.info.name }));
    const provider: EIP1193Provider = wallet.provider;
    const [account] = (await provider.request({ method: "eth_requestAccounts" })) as Address[];
    // Bare clients: payInvoice calls viem's actions on them, so only the actions it uses are in the bundle.
    const walletClient = createClient({ account, chain, transport: custom(provider) });
    const publicClient = createClient({ chain, transport: custom(provider) });
    const onStep = (step: { kind: "switch-chain" | "approve" | "permit-signature" | "pay" }) =>
      progress(say(`wallet.step.${step.kind}` as MessageKey, { chain: view.chain.name, amount: view.amount, currency: view.currency }));
    try {
      await payInvoice({ wallet: walletClient, publicClient, instructions, method: "auto", onStep });
    } catch (error) {
      // A wallet that cannot sign typed data (EIP-1193 4200: unsupported method) still pays, in two steps.
      if (errorCode(error) !== 4200) throw error;
      await payInvoice({ wallet: walletClient, publicClient, instructions, method: "approve", onStep });
    }
    progress(say("wallet.step.sent"));
  } catch (error) {
    // A refused network switch is a wrong-network problem (the wallet's 4001 is only its cause).
    if (errorNamed(error, "WrongChainError") || errorCode(error) === 4902) fail(say("wallet.error.chain", { chain: view.chain.name }));
    else if (errorCode(error) === 4001) fail(say("wallet.error.rejected"));
    else fail(say("wallet.error.failed", { reason: shortReason(error) }));
  } finally {
    paying = false;
    buttons.forEach((button) => (button.disabled = false));
  }
}

function follow(): void {
  const url = `/pay/${encodeURIComponent(view.id)}/events`;
  if (typeof EventSource === "undefined") {
    setInterval(() => void refresh(), 5_000);
    return;
  }
  const source = new EventSource(url);
  let polling: ReturnType<typeof setInterval> | undefined;
  source.addEventListener("invoice", (event) => apply(JSON.parse((event as MessageEvent<string>).data) as CheckoutView));
  source.addEventListener("error", () => {
    // A dropped stream reconnects by itself; a refused one (e.g. 503: too many streams) is closed for good, so
    // the page reads the view every 5 seconds instead. Either way, read it once now so nothing is missed.
    void refresh();
    if (source.readyState === EventSource.CLOSED && !polling) polling = setInterval(() => void refresh(), 5_000);
  });
}

async function refresh(): Promise<void> {
  try {
    const response = await fetch(`/pay/${encodeURIComponent(view.id)}/view`, { headers: { accept: "application/json" } });
    if (response.ok) apply((await response.json()) as CheckoutView);
  } catch {
    // offline for a moment: the stream or the next refresh catches up
  }
}

function apply(next: CheckoutView): void {
  view = next;
  clockOffset = Date.parse(view.now) - Date.now();
  update();
}

render();
setInterval(tick, 1_000);
if (view.evm) discoverWallets(showWallets);
follow();
