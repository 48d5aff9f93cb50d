/**
 * Refund links: how a customer who paid a BTC invoice from a wallet (or an exchange) gives the address a refund
 * should go to, without an account. The merchant asks for a link (`POST /v1/invoices/{id}/refund-link`) and
 * sends it; whoever holds it can read what it is about and set the invoice's refund address, until a refund
 * has been prepared or the link expires. The token is the invoice id and expiry under an HMAC keyed from the
 * server's secret, so a link cannot be made up, moved to another invoice or extended.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";

const VERSION = "r1";
export const DEFAULT_LINK_SECONDS = 30 * 86_400;

function linkKey(secret: Buffer): Buffer {
  return createHash("sha256").update("chainbill refund link v1\0").update(secret).digest();
}

function mac(secret: Buffer, invoiceId: string, expiresAt: number): Buffer {
  return createHmac("sha256", linkKey(secret)).update(`${invoiceId}\0${expiresAt}`).digest();
}

export function refundLinkToken(secret: Buffer, invoiceId: string, expiresAt: number): string {
  return `${VERSION}.${Buffer.from(invoiceId).toString("base64url")}.${expiresAt}.${mac(secret, invoiceId, expiresAt).toString("base64url")}`;
}

/** The invoice a token is for, or why it is not accepted. */
export function readRefundLinkToken(secret: Buffer, token: string, nowSeconds: number): { invoiceId: string; expiresAt: number } | { error: "invalid" | "expired" } {
  const parts = token.split(".");
  if (parts.length !== 4 || parts[0] !== VERSION || !/^\d{1,12}$/.test(parts[2]) || token.length > 300) return { error: "invalid" };
  const invoiceId = Buffer.from(parts[1], "base64url").toString("utf8");
  const expiresAt = Number(parts[2]);
  const given = Buffer.from(parts[3], "base64url");
  const expected = mac(secret, invoiceId, expiresAt);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { error: "invalid" };
  if (nowSeconds >= expiresAt) return { error: "expired" };
  return { invoiceId, expiresAt };
}
