/**
 * A payment link's page (`/l/{id}`): the customer picks the amount (donations and tips: at least the link's
 * minimum), the quantity and the currency to pay in; `POST /links/{id}/invoices` turns that into a concrete
 * invoice (a fiat price is converted and its rate locked) and the page moves on to its checkout.
 */
import { byId, embedded, h } from "./dom";
import { t, type Locale, type MessageKey } from "./i18n";

interface LinkJson {
  id: string;
  name: string;
  description: string | null;
  merchant: { name: string };
  pricing: "fixed" | "customer_chosen";
  currency: string;
  amount?: string | null;
  minimum?: string | null;
  maximum?: string | null;
  maxQuantity: number;
  accept: { currency: string; chainId: number | null; decimals: number }[];
  active: boolean;
  singleUse?: boolean;
  used?: boolean;
}

interface Problem {
  title?: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}

const { linkId, locale } = embedded<{ linkId: string; locale: Locale }>();
const say = (key: MessageKey, values: Record<string, string | number> = {}) => t(locale, key, values);

function problemText(problem: Problem): string {
  const fields = (problem.errors ?? []).map((error) => `${error.field} ${error.message}`).join("; ");
  return [problem.detail ?? problem.title ?? "", fields].filter(Boolean).join(" ");
}

function render(link: LinkJson): void {
  const app = byId("app");
  app.removeAttribute("aria-busy");
  if (!link.active || link.used) {
    app.replaceChildren(h("p", { role: "alert", id: "link-inactive" }, say(link.used ? "link.used" : "link.inactive")));
    return;
  }
  const form = h("form", { id: "link-form", novalidate: true });
  if (link.description) form.append(h("p", { class: "description" }, link.description));
  form.append(h("p", { class: "muted" }, link.merchant.name));
  if (link.pricing === "fixed" && link.amount) form.append(h("p", { class: "total", id: "link-price" }, say("link.price", { amount: link.amount, currency: link.currency })));
  if (link.pricing === "customer_chosen") {
    const hints = [
      link.minimum ? say("link.minimum", { minimum: link.minimum, currency: link.currency }) : "",
      link.maximum ? say("link.maximum", { maximum: link.maximum, currency: link.currency }) : "",
    ].filter(Boolean);
    form.append(
      h("label", { for: "link-amount" }, say("link.amount", { currency: link.currency })),
      h("input", { id: "link-amount", name: "amount", inputmode: "decimal", autocomplete: "off", required: true, "aria-describedby": "link-amount-hint", value: link.minimum ?? "" }),
      h("p", { id: "link-amount-hint", class: "muted" }, hints.join(" · ")),
    );
  }
  if (link.maxQuantity > 1) {
    form.append(
      h("label", { for: "link-quantity" }, say("link.quantity")),
      h("input", { id: "link-quantity", name: "quantity", type: "number", min: "1", max: String(link.maxQuantity), step: "1", value: "1", inputmode: "numeric" }),
    );
  }
  const select = h("select", { id: "link-currency", name: "currency" });
  for (const option of link.accept) {
    const value = `${option.currency}@${option.chainId ?? ""}`;
    select.append(h("option", { value }, option.chainId === null ? option.currency : `${option.currency}`));
  }
  form.append(h("label", { for: "link-currency" }, say("link.payIn")), select);
  const submit = h("button", { type: "submit", id: "link-continue" }, say("link.continue"));
  form.append(submit, h("p", { id: "link-error", class: "error", role: "alert" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void use(link, form, submit);
  });
  app.replaceChildren(form);
}

async function use(link: LinkJson, form: HTMLFormElement, submit: HTMLButtonElement): Promise<void> {
  const data = new FormData(form);
  const [currency, chain] = String(data.get("currency") ?? "").split("@");
  const body: Record<string, unknown> = { currency };
  if (chain) body.chainId = Number(chain);
  if (link.pricing === "customer_chosen") body.amount = String(data.get("amount") ?? "").trim();
  if (link.maxQuantity > 1) body.quantity = Number(data.get("quantity") ?? 1);
  submit.disabled = true;
  byId("link-error").textContent = "";
  try {
    const response = await fetch(`/links/${encodeURIComponent(link.id)}/invoices`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify(body),
    });
    const json = (await response.json()) as { checkoutUrl?: string } & Problem;
    if (!response.ok || !json.checkoutUrl) {
      byId("link-error").textContent = say("error.generic", { reason: problemText(json) });
      return;
    }
    const next = new URL(json.checkoutUrl, location.href);
    if (next.origin !== location.origin) throw new Error("unexpected checkout address");
    if (locale !== "en") next.searchParams.set("lang", locale);
    location.assign(next.toString());
  } catch (error) {
    byId("link-error").textContent = say("error.generic", { reason: error instanceof Error ? error.message : String(error) });
  } finally {
    submit.disabled = false;
  }
}

async function load(): Promise<void> {
  const response = await fetch(`/links/${encodeURIComponent(linkId)}`, { headers: { accept: "application/json" } });
  const json = (await response.json()) as LinkJson & Problem;
  if (!response.ok) {
    byId("app").replaceChildren(h("p", { role: "alert" }, say("error.generic", { reason: problemText(json) })));
    return;
  }
  render(json);
}

void load();
