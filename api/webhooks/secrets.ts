/**
 * Endpoint signing secrets: `whsec_` + base64 of 24 random bytes (Standard Webhooks), encrypted at rest with
 * AES-256-GCM under OPERATOR_KEY_SECRET (they must be readable to sign, so they cannot be hashed).
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

export function newSigningSecret(): string {
  return `whsec_${randomBytes(24).toString("base64")}`;
}

export function sealSecret(secret: string, key: Buffer): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv("aes-256-gcm", key, iv);
  const ciphertext = Buffer.concat([cipher.update(secret, "utf8"), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ciphertext]).toString("base64");
}

export function openSecret(sealed: string, key: Buffer): string {
  const raw = Buffer.from(sealed, "base64");
  const decipher = createDecipheriv("aes-256-gcm", key, raw.subarray(0, 12));
  decipher.setAuthTag(raw.subarray(12, 28));
  return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString("utf8");
}
