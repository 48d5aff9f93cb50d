/**
 * API configuration, read and validated once from the environment. The rest of the API receives `ApiConfig`.
 *
 * Secrets: `ADMIN_API_KEY` and `OPERATOR_KEY_SECRET` are generated once and kept in the data directory
 * (`admin-api-key`, `operator-key-secret`, mode 600) when they are not set, so a local stack keeps them across
 * restarts and never writes them to a log. Against a chain that is not local, generated secrets are refused
 * unless `ALLOW_GENERATED_SECRETS=true`: real money needs secrets the operator chose and backs up.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";

const flag = z
  .enum(["true", "false", "1", "0", ""])
  .optional()
  .transform((value) => value === "true" || value === "1");

const EnvSchema = z.object({
  ADMIN_API_KEY: z.string().min(24, "ADMIN_API_KEY must be at least 24 characters").optional(),
  DATABASE_URL: z.string().url().optional(),
  API_STORE_DIR: z.string().default(".data/api-store"),
  /** 64 hex characters: encrypts merchants' operator (signer) keys at rest. */
  OPERATOR_KEY_SECRET: z.string().regex(/^[0-9a-fA-F]{64}$/, "OPERATOR_KEY_SECRET must be 64 hex characters").optional(),
  ALLOW_GENERATED_SECRETS: flag,
  API_PORT: z.coerce.number().int().min(0).max(65_535).default(8787),
  API_HOST: z.string().min(1).default("127.0.0.1"),
  RATE_LIMIT_PER_MINUTE: z.coerce.number().int().positive().default(600),
  RATE_LIMIT_PER_CLIENT_PER_MINUTE: z.coerce.number().int().positive().default(3_000),
  AUTH_FAILURES_PER_CLIENT_PER_MINUTE: z.coerce.number().int().positive().default(60),
  TRUST_PROXY: flag,
  CORS_ORIGINS: z.string().optional(),
  BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(64 * 1024),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  INVOICE_DEFAULT_EXPIRY_SECONDS: z.coerce.number().int().positive().default(3600),
  INVOICE_DEFAULT_HOLD_SECONDS: z.coerce.number().int().nonnegative().default(0),
  INDEX_STALL_SECONDS: z.coerce.number().int().positive().default(15),
  INDEX_RESTART_SECONDS: z.coerce.number().int().nonnegative().default(60),
  INDEX_MAX_LAG_BLOCKS: z.coerce.number().int().nonnegative().default(5),
  INDEXER_QUERY_API: flag,
  DATA_DIR: z.string().default(".data"),
  /** Let webhook endpoints be private, loopback or plain-http URLs (local development only). */
  WEBHOOK_ALLOW_PRIVATE_URLS: flag,
  /** Seconds between attempts after each failure, comma-separated (default: about three days in 10 attempts). */
  WEBHOOK_RETRY_SCHEDULE: z
    .string()
    .regex(/^\d+(\.\d+)?(,\d+(\.\d+)?)*$/, "WEBHOOK_RETRY_SCHEDULE must be seconds separated by commas, e.g. 5,300,1800")
    .optional(),
  WEBHOOK_DISABLE_AFTER_SECONDS: z.coerce.number().positive().default(5 * 86_400),
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Run the delivery worker in this process (false: only `npm run webhooks:worker` processes deliver). */
  WEBHOOK_WORKER: z
    .enum(["true", "false", "1", "0", ""])
    .optional()
    .transform((value) => value === undefined || value === "" || value === "true" || value === "1"),
  WEBHOOK_BATCH_SIZE: z.coerce.number().int().positive().max(1_000).default(100),
  WEBHOOK_REORG_WINDOW_BLOCKS: z.coerce.number().int().positive().default(64),
  /** Payment links: invoices one client address may create through the public link endpoints per minute. */
  LINK_INVOICES_PER_CLIENT_PER_MINUTE: z.coerce.number().int().positive().default(10),
  /** Payment links: invoices one link may create per minute, whoever asks. */
  LINK_INVOICES_PER_LINK_PER_MINUTE: z.coerce.number().int().positive().default(30),
  /** Bitcoin: off unless a chain source is set (an Esplora base URL or a Bitcoin Core RPC URL). */
  BITCOIN_NETWORK: z.enum(["mainnet", "testnet", "signet", "regtest"]).default("mainnet"),
  BITCOIN_ESPLORA_URL: z.string().url().optional(),
  BITCOIN_RPC_URL: z.string().url().optional(),
  BITCOIN_RPC_USER: z.string().optional(),
  BITCOIN_RPC_PASSWORD: z.string().optional(),
  BITCOIN_POLL_MS: z.coerce.number().int().positive().default(2_000),
  /** An expired invoice's address, if nothing ever arrived on it, goes to a new invoice this long after expiry. */
  BITCOIN_ADDRESS_REUSE_AFTER_SECONDS: z.coerce.number().int().nonnegative().default(86_400),
});

/** Every environment variable the API reads (npm start's --help lists them; a test keeps the two in step). */
export const API_ENVIRONMENT: readonly string[] = Object.keys(EnvSchema.shape);

export type Secret = "admin-api-key" | "operator-key-secret" | "keeper-key";

export interface ApiConfig {
  adminApiKey: string;
  databaseUrl?: string;
  storeDirectory: string;
  operatorKeySecret: Buffer;
  /** Secrets that were generated (and are kept in the data directory) rather than configured. */
  generatedSecrets: Secret[];
  port: number;
  host: string;
  rateLimitPerMinute: number;
  rateLimitPerClientPerMinute: number;
  authFailuresPerClientPerMinute: number;
  /** Take the client address from X-Forwarded-For (only behind a proxy that sets it). */
  trustProxy: boolean;
  /** Origins allowed to call the API from a browser; empty: no CORS headers at all. */
  corsOrigins: string[];
  bodyLimitBytes: number;
  logLevel: z.infer<typeof EnvSchema>["LOG_LEVEL"];
  defaultExpirySeconds: number;
  defaultHoldSeconds: number;
  /** Behind the head without indexing a new block for this many seconds: the index stalled. */
  indexStallSeconds: number;
  /** Stalled this long: the process exits (code 75) for its supervisor to restart it; 0 never. */
  indexRestartSeconds: number;
  /** Behind the head by more than this many blocks: not ready. */
  indexMaxLagBlocks: number;
  /** Serve Ponder's /graphql and /sql on the indexer's internal (loopback) port. */
  indexerQueryApi: boolean;
  dataDirectory: string;
  webhooks: WebhookConfig;
  /** Abuse limits of the public payment-link endpoints (each use signs an invoice). */
  paymentLinks: { invoicesPerClientPerMinute: number; invoicesPerLinkPerMinute: number };
  /** Undefined: BTC invoices are off. */
  bitcoin?: BitcoinConfig;
}

export interface BitcoinConfig {
  network: "mainnet" | "testnet" | "signet" | "regtest";
  source: { kind: "esplora"; url: string } | { kind: "core"; url: string; auth?: { username: string; password: string } };
  pollMs: number;
  addressReuseAfterSeconds: number;
}

function bitcoinConfig(values: z.infer<typeof EnvSchema>): BitcoinConfig | undefined {
  if (values.BITCOIN_ESPLORA_URL && values.BITCOIN_RPC_URL) {
    throw new ConfigError("Set BITCOIN_ESPLORA_URL or BITCOIN_RPC_URL, not both: the Bitcoin watcher reads one chain source.");
  }
  const common = { network: values.BITCOIN_NETWORK, pollMs: values.BITCOIN_POLL_MS, addressReuseAfterSeconds: values.BITCOIN_ADDRESS_REUSE_AFTER_SECONDS };
  if (values.BITCOIN_ESPLORA_URL) return { ...common, source: { kind: "esplora", url: values.BITCOIN_ESPLORA_URL } };
  if (values.BITCOIN_RPC_URL) {
    const auth = values.BITCOIN_RPC_USER !== undefined ? { username: values.BITCOIN_RPC_USER, password: values.BITCOIN_RPC_PASSWORD ?? "" } : undefined;
    return { ...common, source: { kind: "core", url: values.BITCOIN_RPC_URL, auth } };
  }
  return undefined;
}

export interface WebhookConfig {
  allowPrivateUrls: boolean;
  retrySchedule: number[];
  disableAfterSeconds: number;
  timeoutMs: number;
  runWorker: boolean;
  batchSize: number;
  reorgWindowBlocks: number;
}

export class ConfigError extends Error {}

/**
 * A secret kept in `<dataDirectory>/<name>`: read when the file exists, else generated (mode 600). The same
 * file serves `npm start` (which prints the admin key) and the API process (which never logs it).
 */
export function localSecret(dataDirectory: string, name: Secret, generate: () => string): string {
  const file = path.join(path.resolve(dataDirectory), name);
  if (existsSync(file)) return readFileSync(file, "utf8").trim();
  mkdirSync(path.dirname(file), { recursive: true });
  const secret = generate();
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return secret;
}

export const generateAdminKey = () => `admin_${randomBytes(24).toString("base64url")}`;
export const generateOperatorSecret = () => randomBytes(32).toString("hex");

const DEFAULT_RETRY_SCHEDULE = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 72_000];

function webhookConfig(values: z.infer<typeof EnvSchema>): WebhookConfig {
  return {
    allowPrivateUrls: values.WEBHOOK_ALLOW_PRIVATE_URLS,
    retrySchedule: values.WEBHOOK_RETRY_SCHEDULE ? values.WEBHOOK_RETRY_SCHEDULE.split(",").map(Number) : DEFAULT_RETRY_SCHEDULE,
    disableAfterSeconds: values.WEBHOOK_DISABLE_AFTER_SECONDS,
    timeoutMs: values.WEBHOOK_TIMEOUT_MS,
    runWorker: values.WEBHOOK_WORKER,
    batchSize: values.WEBHOOK_BATCH_SIZE,
    reorgWindowBlocks: values.WEBHOOK_REORG_WINDOW_BLOCKS,
  };
}

/** The webhook settings alone (the standalone delivery worker reads only these). */
export function loadWebhookConfig(env: NodeJS.ProcessEnv = process.env): WebhookConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("\n"));
  return webhookConfig(parsed.data);
}

/**
 * @param remoteChains chain ids served that are not local development chains: generated secrets are refused
 * for them unless ALLOW_GENERATED_SECRETS is set.
 */
export function loadApiConfig(env: NodeJS.ProcessEnv = process.env, remoteChains: number[] = []): ApiConfig {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`).join("\n");
    throw new ConfigError(`Invalid API configuration:\n${problems}`);
  }
  const values = parsed.data;
  const dataDirectory = path.resolve(values.DATA_DIR);
  const generatedSecrets: Secret[] = [];
  if (values.ADMIN_API_KEY === undefined) generatedSecrets.push("admin-api-key");
  if (values.OPERATOR_KEY_SECRET === undefined) generatedSecrets.push("operator-key-secret");
  if (generatedSecrets.length > 0 && remoteChains.length > 0 && !values.ALLOW_GENERATED_SECRETS) {
    const names = generatedSecrets.map((secret) => (secret === "admin-api-key" ? "ADMIN_API_KEY" : "OPERATOR_KEY_SECRET"));
    throw new ConfigError(
      `${names.join(" and ")} ${names.length > 1 ? "are" : "is"} not set, and chain ${remoteChains.join(", ")} is not a local chain. ` +
        `Set ${names.join(" and ")} (OPERATOR_KEY_SECRET: 64 hex characters, e.g. \`openssl rand -hex 32\`; keep a backup: without it the merchants' operator keys cannot be opened), ` +
        `or set ALLOW_GENERATED_SECRETS=true to generate them into ${dataDirectory} (only for throwaway test deployments).`,
    );
  }
  return {
    adminApiKey: values.ADMIN_API_KEY ?? localSecret(dataDirectory, "admin-api-key", generateAdminKey),
    databaseUrl: values.DATABASE_URL,
    storeDirectory: path.resolve(values.API_STORE_DIR),
    operatorKeySecret: Buffer.from(values.OPERATOR_KEY_SECRET ?? localSecret(dataDirectory, "operator-key-secret", generateOperatorSecret), "hex"),
    generatedSecrets,
    port: values.API_PORT,
    host: values.API_HOST,
    rateLimitPerMinute: values.RATE_LIMIT_PER_MINUTE,
    rateLimitPerClientPerMinute: values.RATE_LIMIT_PER_CLIENT_PER_MINUTE,
    authFailuresPerClientPerMinute: values.AUTH_FAILURES_PER_CLIENT_PER_MINUTE,
    trustProxy: values.TRUST_PROXY,
    corsOrigins: (values.CORS_ORIGINS ?? "").split(",").map((origin) => origin.trim()).filter(Boolean),
    bodyLimitBytes: values.BODY_LIMIT_BYTES,
    logLevel: values.LOG_LEVEL,
    defaultExpirySeconds: values.INVOICE_DEFAULT_EXPIRY_SECONDS,
    defaultHoldSeconds: values.INVOICE_DEFAULT_HOLD_SECONDS,
    indexStallSeconds: values.INDEX_STALL_SECONDS,
    indexRestartSeconds: values.INDEX_RESTART_SECONDS,
    indexMaxLagBlocks: values.INDEX_MAX_LAG_BLOCKS,
    indexerQueryApi: values.INDEXER_QUERY_API,
    dataDirectory,
    webhooks: webhookConfig(values),
    paymentLinks: { invoicesPerClientPerMinute: values.LINK_INVOICES_PER_CLIENT_PER_MINUTE, invoicesPerLinkPerMinute: values.LINK_INVOICES_PER_LINK_PER_MINUTE },
    bitcoin: bitcoinConfig(values),
  };
}
