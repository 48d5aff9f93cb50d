/**
 * Alerts: built-in rules that notice unusual activity of a merchant and raise an alert — an `alerts` row and an
 * `alert.raised` event (delivered to webhooks and listed by `GET /v1/events` like any other event).
 *
 * Every rule is on by default with the defaults in `ALERT_RULES`; an `alert_rules` row overrides whether it is
 * enabled and any of its settings. Rules about events are evaluated by `evaluateEventAlerts` right after an
 * event is stored, from the merchant's stored events (`webhook_events`): windows are measured in the events'
 * own time (`payload.timestamp`, the block time of chain events), so evaluating again — or late, after a
 * restart — gives the same answer. `apiKeyUsedFrom` watches the client addresses each API key is used from.
 *
 * Alert ids are a hash of the merchant, the rule and what triggered it, so the same trigger never raises twice.
 * The counting rules (`refunds_per_hour`, `payer_failures`) stay quiet for one window after they fired (for
 * `payer_failures`: per payer), so a burst raises one alert, not one per event past the threshold.
 *
 * Money is compared as bigint base units; the median of an even number of payments is compared as twice the
 * median (the sum of the two middle ones), so nothing is rounded.
 */
import { createHash } from "node:crypto";
import { z } from "@hono/zod-openapi";
import { and, desc, eq, inArray, isNull, ne, sql, type SQL } from "drizzle-orm";
import type { StoreTx } from "./idempotency";
import type { StoreDb } from "./store";
import { alertRules, alerts, apiKeyClients, webhookEvents } from "./store/schema";
import { eventId, recordEvent } from "./webhooks/events";

export interface AlertRuleDefinition {
  description: string;
  defaults: Readonly<Record<string, number>>;
  /** The settings a merchant may set (each optional: one not set takes its default). */
  settings: z.ZodType<Record<string, number | undefined>>;
}

export const ALERT_RULES = {
  refunds_per_hour: {
    description: "More than `maxCount` refunds (`invoice.refunded`) within one hour.",
    defaults: { maxCount: 10 },
    settings: z.object({ maxCount: z.number().int().min(1).max(10_000).optional() }).strict(),
  },
  payer_failures: {
    description:
      "More than `maxCount` failed subscription payments (`subscription.payment_failed`) and reverted invoice payments (`invoice.payment_reverted`) from one payer within `windowSeconds`.",
    defaults: { maxCount: 3, windowSeconds: 3_600 },
    settings: z
      .object({
        maxCount: z.number().int().min(1).max(1_000).optional(),
        windowSeconds: z.number().int().min(60).max(30 * 86_400).optional(),
      })
      .strict(),
  },
  payment_above_median: {
    description:
      "A payment (`invoice.paid`) of more than `multiple` times the median of the merchant's previous payments (the last 100) in the same currency on the same chain, once there are at least `minSamples` of them.",
    defaults: { multiple: 10, minSamples: 5 },
    settings: z
      .object({
        multiple: z.number().int().min(2).max(1_000_000).optional(),
        minSamples: z.number().int().min(1).max(100).optional(),
      })
      .strict(),
  },
  api_key_new_client: {
    description: "An API key used from a client address it was never used from before (the first address of a key raises nothing).",
    defaults: {},
    settings: z.object({}).strict(),
  },
  endpoint_disabled: {
    description: "A webhook endpoint was disabled because its deliveries kept failing.",
    defaults: {},
    settings: z.object({}).strict(),
  },
} as const satisfies Record<string, AlertRuleDefinition>;

export type AlertRuleName = keyof typeof ALERT_RULES;
export const ALERT_RULE_NAMES = Object.keys(ALERT_RULES) as AlertRuleName[];

export function isAlertRule(name: string): name is AlertRuleName {
  return Object.hasOwn(ALERT_RULES, name);
}

export interface EffectiveAlertRule {
  rule: AlertRuleName;
  enabled: boolean;
  /** The defaults with the merchant's own settings over them. */
  settings: Record<string, number>;
  /** Whether the merchant changed the rule (an `alert_rules` row exists). */
  customized: boolean;
}

type Db = StoreDb | StoreTx;
type AlertRuleRow = typeof alertRules.$inferSelect;

function effective(rule: AlertRuleName, row: AlertRuleRow | undefined): EffectiveAlertRule {
  const definition: AlertRuleDefinition = ALERT_RULES[rule];
  const parsed = definition.settings.safeParse(row?.settings ?? {});
  // Settings stored under an older definition that no longer parse: the defaults (never a crash).
  const own = parsed.success ? Object.fromEntries(Object.entries(parsed.data).filter(([, value]) => value !== undefined)) : {};
  return { rule, enabled: row?.enabled ?? true, settings: { ...definition.defaults, ...own } as Record<string, number>, customized: row !== undefined };
}

/** One rule of a merchant as it applies now. */
export async function alertRuleFor(db: Db, merchantId: string, rule: AlertRuleName): Promise<EffectiveAlertRule> {
  const [row] = await (db as StoreDb)
    .select()
    .from(alertRules)
    .where(and(eq(alertRules.merchantId, merchantId), eq(alertRules.rule, rule)))
    .limit(1);
  return effective(rule, row);
}

/** Every rule of a merchant as it applies now, in `ALERT_RULES` order. */
export async function alertRulesFor(db: Db, merchantId: string): Promise<EffectiveAlertRule[]> {
  const rows = await (db as StoreDb).select().from(alertRules).where(eq(alertRules.merchantId, merchantId));
  const byRule = new Map(rows.map((row) => [row.rule, row]));
  return ALERT_RULE_NAMES.map((rule) => effective(rule, byRule.get(rule)));
}

export function alertIdFor(merchantId: string, rule: string, dedupeKey: string): string {
  return `alr_${createHash("sha256").update([merchantId, rule, dedupeKey].join("\u0000")).digest("hex").slice(0, 32)}`;
}

/** Stores the alert and its `alert.raised` event together; the alert id when new, undefined when it existed. */
async function insertAlert(
  db: Db,
  merchantId: string,
  rule: AlertRuleName,
  message: string,
  details: Record<string, unknown>,
  dedupeKey: string,
): Promise<string | undefined> {
  const alertId = alertIdFor(merchantId, rule, dedupeKey);
  return (db as StoreDb).transaction(async (tx) => {
    const inserted = await tx.insert(alerts).values({ id: alertId, merchantId, rule, message, details }).onConflictDoNothing().returning({ id: alerts.id });
    if (inserted.length === 0) return undefined;
    await recordEvent(tx, eventId("alert", alertId), {
      merchantId,
      type: "alert.raised",
      orderKey: `alerts:${merchantId}`,
      occurredAt: new Date(),
      data: { object: "alert", alertId, rule, message, details },
    });
    return alertId;
  });
}

/**
 * Raises an alert unless the merchant disabled the rule or the same (rule, `dedupeKey`) was raised before.
 * `details` must be plain JSON (amounts as decimal strings). Returns the alert id when it raised one.
 */
export async function raiseAlert(
  db: Db,
  merchantId: string,
  rule: AlertRuleName,
  message: string,
  details: Record<string, unknown>,
  dedupeKey: string,
): Promise<string | undefined> {
  if (!(await alertRuleFor(db, merchantId, rule)).enabled) return undefined;
  return insertAlert(db, merchantId, rule, message, details, dedupeKey);
}

// ------------------------------------------------------------------------------------------------ event rules

export interface StoredEvent {
  id: string;
  merchantId: string;
  type: string;
  /** The event body as stored: `{ id, type, timestamp, data }`. */
  payload: Record<string, unknown>;
}

const RULE_OF_EVENT: Partial<Record<string, AlertRuleName>> = {
  "invoice.refunded": "refunds_per_hour",
  "subscription.payment_failed": "payer_failures",
  "invoice.payment_reverted": "payer_failures",
  "invoice.paid": "payment_above_median",
};

const HOUR_SECONDS = 3_600;
const MEDIAN_SAMPLES = 100;
const BASE_UNITS = /^\d{1,78}$/;

/** `payload.timestamp` as stored (ISO, from `Date.toISOString`): compared as text, byte by byte. */
const eventTimestamp = sql`(${webhookEvents.payload} ->> 'timestamp') COLLATE "C"`;
const eventData = (field: string) => sql`(${webhookEvents.payload} -> 'data' ->> ${field})`;

function occurredAt(payload: Record<string, unknown>): Date | undefined {
  if (typeof payload.timestamp !== "string") return undefined;
  const at = new Date(payload.timestamp);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

function dataOf(payload: Record<string, unknown>): Record<string, unknown> {
  const data = payload.data;
  return data !== null && typeof data === "object" && !Array.isArray(data) ? (data as Record<string, unknown>) : {};
}

/** Events of the merchant in the window `(at - seconds, at]` matching `where`. */
async function countInWindow(db: StoreDb, merchantId: string, at: Date, seconds: number, where: SQL): Promise<number> {
  const from = new Date(at.getTime() - seconds * 1000).toISOString();
  const [{ total }] = await db
    .select({ total: sql<number>`count(*)::int` })
    .from(webhookEvents)
    .where(
      and(
        eq(webhookEvents.merchantId, merchantId),
        isNull(webhookEvents.revertedAt),
        sql`${eventTimestamp} > ${from}`,
        sql`${eventTimestamp} <= ${at.toISOString()}`,
        where,
      ),
    );
  return Number(total);
}

/**
 * Whether the rule already fired within `seconds` of `at` (before or after: events may be evaluated out of
 * order) for this merchant, and for this payer when given. Alerts of counting rules carry `at` in details.
 */
async function firedNear(db: StoreDb, merchantId: string, rule: AlertRuleName, at: Date, seconds: number, payer?: string): Promise<boolean> {
  const from = new Date(at.getTime() - seconds * 1000).toISOString();
  const to = new Date(at.getTime() + seconds * 1000).toISOString();
  const alertAt = sql`(${alerts.details} ->> 'at') COLLATE "C"`;
  const [found] = await db
    .select({ id: alerts.id })
    .from(alerts)
    .where(
      and(
        eq(alerts.merchantId, merchantId),
        eq(alerts.rule, rule),
        sql`${alertAt} > ${from}`,
        sql`${alertAt} < ${to}`,
        payer === undefined ? undefined : sql`lower(${alerts.details} ->> 'payer') = ${payer.toLowerCase()}`,
      ),
    )
    .limit(1);
  return found !== undefined;
}

async function refundsPerHour(db: StoreDb, event: StoredEvent, at: Date, settings: Record<string, number>): Promise<void> {
  const { maxCount } = settings;
  const refunds = await countInWindow(db, event.merchantId, at, HOUR_SECONDS, eq(webhookEvents.type, "invoice.refunded"));
  if (refunds <= maxCount) return;
  if (await firedNear(db, event.merchantId, "refunds_per_hour", at, HOUR_SECONDS)) return;
  await insertAlert(
    db,
    event.merchantId,
    "refunds_per_hour",
    `${refunds} refunds within the hour up to ${at.toISOString()}: more than the ${maxCount} the refunds_per_hour rule allows.`,
    { eventId: event.id, at: at.toISOString(), count: refunds, maxCount, windowSeconds: HOUR_SECONDS },
    event.id,
  );
}

async function payerFailures(db: StoreDb, event: StoredEvent, at: Date, settings: Record<string, number>): Promise<void> {
  const { maxCount, windowSeconds } = settings;
  const data = dataOf(event.payload);
  const payer = event.type === "subscription.payment_failed" ? data.subscriber : data.payer;
  if (typeof payer !== "string" || payer.length === 0) return;
  const samePayer = sql`lower(CASE WHEN ${webhookEvents.type} = 'subscription.payment_failed' THEN ${eventData("subscriber")} ELSE ${eventData("payer")} END) = ${payer.toLowerCase()}`;
  const failures = await countInWindow(
    db,
    event.merchantId,
    at,
    windowSeconds,
    and(inArray(webhookEvents.type, ["subscription.payment_failed", "invoice.payment_reverted"]), samePayer)!,
  );
  if (failures <= maxCount) return;
  if (await firedNear(db, event.merchantId, "payer_failures", at, windowSeconds, payer)) return;
  await insertAlert(
    db,
    event.merchantId,
    "payer_failures",
    `${failures} failed or reverted payments from ${payer} within ${windowSeconds} s: more than the ${maxCount} the payer_failures rule allows.`,
    { eventId: event.id, at: at.toISOString(), payer, count: failures, maxCount, windowSeconds },
    event.id,
  );
}

/** Twice the median (the sum of the two middle values for an even count), so it stays an integer. */
export function twiceMedian(values: readonly bigint[]): bigint {
  if (values.length === 0) throw new Error("twiceMedian: no values");
  const sorted = [...values].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? 2n * sorted[middle] : sorted[middle - 1] + sorted[middle];
}

const halfOf = (twice: bigint) => (twice % 2n === 0n ? (twice / 2n).toString() : `${twice / 2n}.5`);

async function paymentAboveMedian(db: StoreDb, event: StoredEvent, settings: Record<string, number>): Promise<void> {
  const { multiple, minSamples } = settings;
  const data = dataOf(event.payload);
  const { amountBaseUnits, currency, chainId } = data;
  if (typeof amountBaseUnits !== "string" || !BASE_UNITS.test(amountBaseUnits) || typeof currency !== "string") return;
  const amount = BigInt(amountBaseUnits);
  // Payments stored before this one (all of them when it is not stored).
  const before = sql`${webhookEvents.sequence} < coalesce((SELECT e.sequence FROM chainbill_api.webhook_events e WHERE e.id = ${event.id}), 9223372036854775807)`;
  const rows = await db
    .select({ amount: eventData("amountBaseUnits").mapWith(String) })
    .from(webhookEvents)
    .where(
      and(
        eq(webhookEvents.merchantId, event.merchantId),
        eq(webhookEvents.type, "invoice.paid"),
        isNull(webhookEvents.revertedAt),
        ne(webhookEvents.id, event.id),
        sql`${eventData("currency")} = ${currency}`,
        typeof chainId === "number" ? sql`${eventData("chainId")} = ${String(chainId)}` : sql`${eventData("chainId")} IS NULL`,
        before,
      ),
    )
    .orderBy(desc(webhookEvents.sequence))
    .limit(MEDIAN_SAMPLES);
  const samples = rows.map((row) => row.amount).filter((value): value is string => typeof value === "string" && BASE_UNITS.test(value)).map(BigInt);
  if (samples.length < minSamples) return;
  const twice = twiceMedian(samples);
  // amount > multiple × median  ⇔  2 × amount > multiple × (2 × median)
  if (2n * amount <= BigInt(multiple) * twice) return;
  const median = halfOf(twice);
  const shown = typeof data.amount === "string" ? `${data.amount} ${currency}` : `${amountBaseUnits} base units of ${currency}`;
  const invoice = typeof data.invoiceId === "string" ? ` (invoice ${data.invoiceId})` : "";
  await insertAlert(
    db,
    event.merchantId,
    "payment_above_median",
    `A payment of ${shown}${invoice} is more than ${multiple} times the median of the previous ${samples.length} payments (${median} base units).`,
    {
      eventId: event.id,
      invoiceId: typeof data.invoiceId === "string" ? data.invoiceId : null,
      chainId: typeof chainId === "number" ? chainId : null,
      currency,
      amountBaseUnits,
      medianBaseUnits: median,
      multiple,
      samples: samples.length,
    },
    event.id,
  );
}

/**
 * Evaluates the rules the event concerns (after it is stored: it counts itself). At most one alert per rule and
 * event, however often the same event is evaluated; `alert.raised` events are never evaluated.
 */
export async function evaluateEventAlerts(db: StoreDb, event: StoredEvent): Promise<void> {
  if (event.type === "alert.raised") return;
  const rule = RULE_OF_EVENT[event.type];
  if (!rule) return;
  const at = occurredAt(event.payload);
  if (!at) return;
  const config = await alertRuleFor(db, event.merchantId, rule);
  if (!config.enabled) return;
  if (rule === "refunds_per_hour") await refundsPerHour(db, event, at, config.settings);
  else if (rule === "payer_failures") await payerFailures(db, event, at, config.settings);
  else if (rule === "payment_above_median") await paymentAboveMedian(db, event, config.settings);
}

// ------------------------------------------------------------------------------------------------ API key clients

/** (key, client) pairs known to be stored: on the hot path, a known pair costs no query. */
const knownClients = new Set<string>();
const KNOWN_CLIENTS_MAX = 50_000;
/** Client addresses are stored up to this length (an IPv6 address is at most 45 characters). */
const CLIENT_MAX_LENGTH = 100;

/** Forgets the pairs known in this process (tests). */
export function forgetKnownClients(): void {
  knownClients.clear();
}

/**
 * Records that the key was used from `client` (an address); the first use from a new address, when the key was
 * used from another address before, raises `api_key_new_client`. The pair and its alert commit together.
 */
export async function apiKeyUsedFrom(db: StoreDb, key: { id: string; merchantId: string }, client: string): Promise<void> {
  const address = client.slice(0, CLIENT_MAX_LENGTH);
  const pair = `${key.id}\u0000${address}`;
  if (knownClients.has(pair)) return;
  await db.transaction(async (tx) => {
    const inserted = await tx
      .insert(apiKeyClients)
      .values({ apiKeyId: key.id, client: address })
      .onConflictDoNothing()
      .returning({ firstSeenAt: apiKeyClients.firstSeenAt });
    if (inserted.length === 0) return;
    const [earlier] = await tx
      .select({ client: apiKeyClients.client })
      .from(apiKeyClients)
      .where(and(eq(apiKeyClients.apiKeyId, key.id), ne(apiKeyClients.client, address)))
      .limit(1);
    if (!earlier) return;
    await raiseAlert(
      tx,
      key.merchantId,
      "api_key_new_client",
      `API key ${key.id} was used from ${address}, an address it was never used from before.`,
      { apiKeyId: key.id, client: address, firstSeenAt: inserted[0].firstSeenAt.toISOString() },
      `${key.id}\u0000${address}`,
    );
  });
  if (knownClients.size >= KNOWN_CLIENTS_MAX) knownClients.clear();
  knownClients.add(pair);
}
