/**
 * The checkout's words in English and Simplified Chinese. The server picks the language from `Accept-Language`
 * (or `?lang=`) and renders the page shell in it; the page's script reads the same table. `{name}` placeholders
 * are filled by `t()`; no string is ever built by concatenating translated fragments.
 */
export const LOCALES = ["en", "zh-CN"] as const;
export type Locale = (typeof LOCALES)[number];

const en = {
  "page.title": "Pay {merchant}",
  "page.loading": "Loading the invoice…",
  "page.noscript": "This page needs JavaScript for wallet payments. You can still pay by sending exactly {amount} {currency} to {address}.",
  "lang.switch": "中文",
  "lang.label": "Language",
  "invoice.heading": "Invoice from {merchant}",
  "invoice.total": "Total",
  "invoice.quantity": "× {quantity}",
  "invoice.network": "Network",
  "invoice.expiresIn": "Expires in {time}",
  "invoice.expired": "This invoice has expired.",
  "invoice.fiat": "{fiat} {fiatCurrency} at 1 {currency} = {rate} {fiatCurrency}",
  "invoice.rateLocked": "Rate locked until {time}",
  "wallet.heading": "Pay with a browser wallet",
  "wallet.none": "No browser wallet found. Install one, or pay by transfer below.",
  "wallet.connect": "Pay with {wallet}",
  "wallet.step.connect": "Connect {wallet} in its window…",
  "wallet.step.switch-chain": "Switch your wallet to {chain}…",
  "wallet.step.approve": "Approve {amount} {currency} in your wallet (step 1 of 2)…",
  "wallet.step.permit-signature": "Sign the permit in your wallet (one confirmation)…",
  "wallet.step.pay": "Confirm the payment in your wallet…",
  "wallet.step.sent": "Payment sent. Waiting for the chain…",
  "wallet.error.rejected": "You rejected the request in your wallet. Nothing was sent.",
  "wallet.error.chain": "Your wallet is on another network and did not switch to {chain}. Switch it, then try again.",
  "wallet.error.failed": "The payment did not go through: {reason}",
  "transfer.heading": "Pay by transfer",
  "transfer.instructions": "Send exactly {amount} {currency} to this address on {chain}, from any wallet or exchange.",
  "transfer.qr": "QR code of the payment link",
  "transfer.copy": "Copy address",
  "transfer.copied": "Address copied",
  "transfer.open": "Open in a wallet app",
  "status.heading": "Status",
  "status.open": "Waiting for your payment.",
  "status.pending": "Payment detected. It is being collected.",
  "status.underpaid": "Received {received} {currency}: {due} {currency} still missing. Send the rest to the same address.",
  "status.paid": "Paid. Thank you!",
  "status.overpaid": "Paid. You sent more than the amount; the extra will be returned.",
  "status.released": "Paid. Thank you!",
  "status.refunded": "Refunded: {refunded} {currency} went back to you.",
  "status.partially_refunded": "Paid, then partly refunded: {refunded} {currency} went back to you.",
  "status.disputed": "Paid, and in dispute.",
  "status.expired": "This invoice expired before it was paid. Nothing more can be sent to it.",
  "status.void": "The merchant cancelled this invoice.",
  "status.confirmations": "Confirmations: {count} of {required}",
  "status.updated": "Chain data as of block {block}",
  "receipt.heading": "Receipt",
  "receipt.transaction": "Transaction",
  "receipt.explorer": "View on the block explorer",
  "receipt.paidAt": "Paid at {time}",
  "return.success": "Return to {merchant}",
  "return.cancel": "Cancel and return to {merchant}",
  "link.heading": "{name}",
  "link.amount": "Amount ({currency})",
  "link.minimum": "At least {minimum} {currency}",
  "link.maximum": "At most {maximum} {currency}",
  "link.quantity": "Quantity",
  "link.payIn": "Pay in",
  "link.continue": "Continue to payment",
  "link.inactive": "This payment link is no longer active.",
  "link.used": "This payment link has already been paid.",
  "link.price": "{amount} {currency} each",
  "error.generic": "Something went wrong: {reason}",
} as const;

export type MessageKey = keyof typeof en;

const zhCN: Record<MessageKey, string> = {
  "page.title": "向 {merchant} 付款",
  "page.loading": "正在加载账单…",
  "page.noscript": "钱包付款需要启用 JavaScript。您仍可直接向 {address} 转账 {amount} {currency}（金额须完全一致）。",
  "lang.switch": "English",
  "lang.label": "语言",
  "invoice.heading": "{merchant} 的账单",
  "invoice.total": "合计",
  "invoice.quantity": "× {quantity}",
  "invoice.network": "网络",
  "invoice.expiresIn": "{time} 后过期",
  "invoice.expired": "此账单已过期。",
  "invoice.fiat": "{fiat} {fiatCurrency}，汇率 1 {currency} = {rate} {fiatCurrency}",
  "invoice.rateLocked": "汇率锁定至 {time}",
  "wallet.heading": "使用浏览器钱包付款",
  "wallet.none": "未检测到浏览器钱包。请安装钱包，或使用下方的转账方式付款。",
  "wallet.connect": "使用 {wallet} 付款",
  "wallet.step.connect": "请在 {wallet} 窗口中连接…",
  "wallet.step.switch-chain": "请将钱包切换到 {chain}…",
  "wallet.step.approve": "请在钱包中授权 {amount} {currency}（第 1 步，共 2 步）…",
  "wallet.step.permit-signature": "请在钱包中签署授权许可（只需确认一次）…",
  "wallet.step.pay": "请在钱包中确认付款…",
  "wallet.step.sent": "付款已发送，正在等待链上确认…",
  "wallet.error.rejected": "您在钱包中拒绝了请求，未发送任何资金。",
  "wallet.error.chain": "您的钱包在其他网络上，未切换到 {chain}。请切换后重试。",
  "wallet.error.failed": "付款未成功：{reason}",
  "transfer.heading": "转账付款",
  "transfer.instructions": "请从任意钱包或交易所，在 {chain} 上向此地址转账 {amount} {currency}（金额须完全一致）。",
  "transfer.qr": "付款链接二维码",
  "transfer.copy": "复制地址",
  "transfer.copied": "地址已复制",
  "transfer.open": "在钱包应用中打开",
  "status.heading": "状态",
  "status.open": "等待您付款。",
  "status.pending": "已检测到付款，正在归集。",
  "status.underpaid": "已收到 {received} {currency}，仍差 {due} {currency}。请将差额转入同一地址。",
  "status.paid": "付款成功，谢谢！",
  "status.overpaid": "付款成功。您多付的部分将被退回。",
  "status.released": "付款成功，谢谢！",
  "status.refunded": "已退款：{refunded} {currency} 已退回给您。",
  "status.partially_refunded": "已付款，部分退款：{refunded} {currency} 已退回给您。",
  "status.disputed": "已付款，争议处理中。",
  "status.expired": "此账单在付款前已过期，请勿再向其付款。",
  "status.void": "商家已取消此账单。",
  "status.confirmations": "确认数：{count} / {required}",
  "status.updated": "链上数据截至区块 {block}",
  "receipt.heading": "收据",
  "receipt.transaction": "交易",
  "receipt.explorer": "在区块浏览器中查看",
  "receipt.paidAt": "付款时间 {time}",
  "return.success": "返回 {merchant}",
  "return.cancel": "取消并返回 {merchant}",
  "link.heading": "{name}",
  "link.amount": "金额（{currency}）",
  "link.minimum": "最少 {minimum} {currency}",
  "link.maximum": "最多 {maximum} {currency}",
  "link.quantity": "数量",
  "link.payIn": "支付币种",
  "link.continue": "继续付款",
  "link.inactive": "此付款链接已停用。",
  "link.used": "此付款链接已完成付款。",
  "link.price": "单价 {amount} {currency}",
  "error.generic": "出错了：{reason}",
};

const TABLES: Record<Locale, Record<MessageKey, string>> = { en, "zh-CN": zhCN };

/** The message `key` in `locale` with `{name}` placeholders filled. */
export function t(locale: Locale, key: MessageKey, values: Record<string, string | number> = {}): string {
  return TABLES[locale][key].replace(/\{(\w+)\}/g, (whole, name: string) => (name in values ? String(values[name]) : whole));
}

/** The locale for an explicit choice (`?lang=`) or an `Accept-Language` header: Chinese for any `zh`, else English. */
export function pickLocale(explicit: string | null | undefined, acceptLanguage: string | null | undefined): Locale {
  if (explicit) return /^zh\b/i.test(explicit) ? "zh-CN" : "en";
  const ranked = (acceptLanguage ?? "")
    .split(",")
    .map((part, index) => {
      const [tag, ...params] = part.trim().split(";");
      const q = params.map((param) => param.trim()).find((param) => param.startsWith("q="));
      return { tag: tag.toLowerCase(), q: q ? Number(q.slice(2)) : 1, index };
    })
    .filter((entry) => entry.tag && Number.isFinite(entry.q) && entry.q > 0)
    .sort((a, b) => b.q - a.q || a.index - b.index);
  for (const entry of ranked) {
    if (entry.tag.startsWith("zh")) return "zh-CN";
    if (entry.tag.startsWith("en")) return "en";
  }
  return "en";
}
