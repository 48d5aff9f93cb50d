/**
 * The hosted checkout's HTML: a shell in the customer's language with the invoice's view embedded as JSON (the
 * page's script renders from it at once, then follows the live stream). Every value is escaped; the embedded
 * JSON cannot close its script element. Without JavaScript the page still says what to send where.
 */
import { LOCALES, t, type Locale } from "../../checkout/src/i18n";
import type { CheckoutView } from "../../checkout/src/types";

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => ESCAPES[char]);
}

/** JSON that is safe inside `<script type="application/json">` (no `</script>`, no `<!--`). */
export function embedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/>/g, "\\u003e").replace(/&/g, "\\u0026").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** Only this origin's scripts, styles and API; images from here or data: URIs (wallet icons, the QR code). */
export const CHECKOUT_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

export const CHECKOUT_HEADERS = {
  "content-security-policy": CHECKOUT_CSP,
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "x-frame-options": "DENY",
  "cache-control": "no-store",
};

function otherLocale(locale: Locale): Locale {
  return LOCALES.find((candidate) => candidate !== locale)!;
}

function shell(options: { locale: Locale; title: string; entry: string; body: string; data: unknown; switchHref: string }): string {
  const { locale } = options;
  return `<!doctype html>
<html lang="${locale}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(options.title)}</title>
<link rel="stylesheet" href="/checkout/assets/checkout.css">
<script type="module" src="/checkout/assets/${options.entry}.js"></script>
</head>
<body>
<main id="checkout" class="checkout" data-locale="${locale}">
<nav class="lang" aria-label="${escapeHtml(t(locale, "lang.label"))}"><a href="${escapeHtml(options.switchHref)}" hreflang="${otherLocale(locale)}" lang="${otherLocale(locale)}">${escapeHtml(t(locale, "lang.switch"))}</a></nav>
${options.body}
</main>
<script type="application/json" id="chainbill-data">${embedJson(options.data)}</script>
</body>
</html>`;
}

/** `/pay/{id}`: the invoice page. */
export function checkoutPage(view: CheckoutView, locale: Locale): string {
  const title = t(locale, "page.title", { merchant: view.merchant.name });
  const noscript = view.transfer
    ? `<noscript><p>${escapeHtml(t(locale, "page.noscript", { amount: view.amount, currency: view.currency, address: view.transfer.address }))}</p></noscript>`
    : "";
  const body = `<header class="merchant"><h1>${escapeHtml(t(locale, "invoice.heading", { merchant: view.merchant.name }))}</h1></header>
<p class="total-line"><span class="amount">${escapeHtml(view.amount)}</span> <span class="currency">${escapeHtml(view.currency)}</span></p>
${noscript}
<div id="app" aria-busy="true"><p>${escapeHtml(t(locale, "page.loading"))}</p></div>`;
  return shell({ locale, title, entry: "checkout", body, data: { view, locale }, switchHref: `?lang=${otherLocale(locale)}` });
}

/** `/l/{id}`: a payment link's page (its details come from `GET /links/{id}`). */
export function linkPage(linkId: string, name: string, locale: Locale): string {
  const body = `<header class="merchant"><h1>${escapeHtml(name)}</h1></header>
<div id="app" aria-busy="true"><p>${escapeHtml(t(locale, "page.loading"))}</p></div>`;
  return shell({ locale, title: name, entry: "link", body, data: { linkId, locale }, switchHref: `?lang=${otherLocale(locale)}` });
}
