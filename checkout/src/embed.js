/*
 * chainbill checkout embed: one line on a merchant's page.
 *
 *   <script src="https://pay.example.com/embed.js" data-link="plink_…" data-label="Donate" async></script>
 *
 * puts a "Pay with crypto" button where the script is; or use the element anywhere after loading the script:
 *
 *   <chainbill-pay link="plink_…"></chainbill-pay>   <chainbill-pay invoice="inv_…" label="Pay now"></chainbill-pay>
 *
 * The button opens the hosted checkout (this script's own origin) in a new tab. It sets no cookies, loads
 * nothing else and reads nothing from the merchant's page. Plain JavaScript, no build step: served as is.
 */
(function () {
  "use strict";
  var script = document.currentScript;
  var origin = script && script.src ? new URL(script.src).origin : "";
  var ID = /^[A-Za-z0-9_-]{1,64}$/;

  function checkoutUrl(element) {
    var link = element.getAttribute("link");
    var invoice = element.getAttribute("invoice");
    var lang = element.getAttribute("lang");
    var path = link && ID.test(link) ? "/l/" + link : invoice && ID.test(invoice) ? "/pay/" + invoice : null;
    if (!path) return null;
    return origin + path + (lang ? "?lang=" + encodeURIComponent(lang) : "");
  }

  if (!window.customElements || customElements.get("chainbill-pay")) return;

  class ChainbillPay extends HTMLElement {
    connectedCallback() {
      if (this.shadowRoot) return;
      var root = this.attachShadow({ mode: "open" });
      var style = document.createElement("style");
      style.textContent =
        "button{font:inherit;font-weight:600;padding:.7em 1.3em;min-height:44px;border-radius:8px;border:0;background:#1d4ed8;color:#fff;cursor:pointer}" +
        "button:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}button:hover{background:#1e40af}";
      var button = document.createElement("button");
      button.type = "button";
      button.part = "button";
      button.textContent = this.getAttribute("label") || "Pay with crypto";
      var element = this;
      button.addEventListener("click", function () {
        var url = checkoutUrl(element);
        if (url) window.open(url, "_blank", "noopener");
      });
      root.append(style, button);
    }
  }
  customElements.define("chainbill-pay", ChainbillPay);

  if (script && (script.dataset.link || script.dataset.invoice)) {
    var element = document.createElement("chainbill-pay");
    if (script.dataset.link) element.setAttribute("link", script.dataset.link);
    if (script.dataset.invoice) element.setAttribute("invoice", script.dataset.invoice);
    if (script.dataset.label) element.setAttribute("label", script.dataset.label);
    if (script.dataset.lang) element.setAttribute("lang", script.dataset.lang);
    script.after(element);
  }
})();
