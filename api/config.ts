/**
 * API configuration, read and validated once from the environment. The rest of the API receives `ApiConfig`.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";

const EnvSchema = z.object({
  ADMIN_API_KEY: z.string().min(24, "ADMIN_API_KEY must be at least 24 characters").optional(),
  DATABASE_URL: z.string().url().optional(),
  API_STORE_DIR: z.string().default(".data/api-store"),
  /** 64 hex characters: encrypts merchants' operator (signer) keys at rest. Generated under .data/ when unset. */
  OPERATOR_KEY_SECRET: z.string().regex(/^[0-9a-fA-F]{64}$/, "OPERATOR_KEY_SECRET must be 64 hex characters").optional(),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(600),
  BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(64 * 1024),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  INVOICE_DEFAULT_EXPIRY_SECONDS: z.coerce.number().int().positive().default(3600),
  INVOICE_DEFAULT_HOLD_SECONDS: z.coerce.number().int().nonnegative().default(0),
  DATA_DIR: z.string().default(".data"),
});

export interface ApiConfig {
  adminApiKey: string;
  /** True when the admin key was generated for this run (and printed once). */
  adminApiKeyGenerated: boolean;
  databaseUrl?: string;
  storeDirectory: string;
  operatorKeySecret: Buffer;
  rateLimitPerMinute: number;
  bodyLimitBytes: number;
  logLevel: z.infer<typeof EnvSchema>["LOG_LEVEL"];
  defaultExpirySeconds: number;
  defaultHoldSeconds: number;
}

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`).join("\n");
    throw new Error(`Invalid API configuration:\n${problems}`);
  }
  const values = parsed.data;
  const dataDirectory = path.resolve(values.DATA_DIR);
  return {
    adminApiKey: values.ADMIN_API_KEY ?? `admin_${randomBytes(24).toString("base64url")}`,
    adminApiKeyGenerated: values.ADMIN_API_KEY === undefined,
    databaseUrl: values.DATABASE_URL,
    storeDirectory: path.resolve(values.API_STORE_DIR),
    operatorKeySecret: Buffer.from(values.OPERATOR_KEY_SECRET ?? localSecret(dataDirectory), "hex"),
    rateLimitPerMinute: values.RATE_LIMIT_PER_MINUTE,
    bodyLimitBytes: values.BODY_LIMIT_BYTES,
    logLevel: values.LOG_LEVEL,
    defaultExpirySeconds: values.INVOICE_DEFAULT_EXPIRY_SECONDS,
    defaultHoldSeconds: values.INVOICE_DEFAULT_HOLD_SECONDS,
  };
}

/** A per-installation secret kept beside the local data, so a restart can still decrypt operator keys. */
function localSecret(dataDirectory: string): string {
  const file = path.join(dataDirectory, "operator-key-secret");
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(dataDirectory, { recursive: true });
  const secret = randomBytes(32).toString("hex");
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}
