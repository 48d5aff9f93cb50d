/**
 * The delivery worker: claims due deliveries, signs each per Standard Webhooks and posts it, and records the
 * answer. Runs in every API process; several workers share one store safely:
 *
 * - a claim takes a **lease** on a batch (`FOR UPDATE SKIP LOCKED`: two workers never claim the same delivery),
 *   and a worker killed mid-batch loses only its lease, after which another worker sends the delivery again,
 *   with the same `webhook-id` (delivery is at least once; receivers dedupe on the id);
 * - per endpoint, events about one thing (an invoice, a subscription) go **in order**: a delivery waits while an
 *   earlier one with the same order key is pending (so a long outage drains in order);
 * - a failed attempt is retried on the schedule (about three days by default), then the delivery is `failed`;
 *   an endpoint failing continuously for `disableAfterSeconds` is disabled, with a notice.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { sql } from "drizzle-orm";
import type { Logger } from "pino";
import { Webhook } from "standardwebhooks";
import type { Store } from "../store";
import { webhookAttempts } from "../store/schema";
import { rowsOf } from "./events";
import { openSecret } from "./secrets";
import type { SendResult, Sender } from "./send";

export interface WorkerOptions {
  store: Store;
  sender: Sender;
  logger: Logger;
  /** Key that opens the endpoints' stored secrets. */
  secretKey: Buffer;
  /** Seconds before each retry: attempt n+1 comes `retrySchedule[n-1]` seconds after attempt n failed. */
  retrySchedule: number[];
  disableAfterSeconds: number;
  batchSize: number;
  pollMs: number;
  timeoutMs: number;
  /** Told when an endpoint is disabled after a long run of failures. */
  onEndpointDisabled?: (endpoint: { id: string; merchantId: string; url: string; reason: string }) => Promise<void>;
}

interface Claimed {
  id: string;
  event_id: string;
  endpoint_id: string;
  merchant_id: string;
  attempts: number;
  url: string;
  secret_encrypted: string;
  previous_secret_encrypted: string | null;
  previous_valid: boolean;
  payload: Record<string, unknown>;
}

export interface Worker {
  id: string;
  wake(): void;
  /** Claims and sends one batch; returns how many deliveries it attempted. */
  runOnce(): Promise<number>;
  stop(): Promise<void>;
}

export function createWorker(options: WorkerOptions): Worker {
  const { store, sender, logger } = options;
  const db = store.db;
  const id = `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  const signers = new Map<string, Webhook>();
  // Long enough for a whole batch, even when one slow host's requests queue behind its 128 connections.
  const lease = Math.ceil(options.timeoutMs / 1000) * Math.ceil(options.batchSize / 128) + 30;
  let stopped = false;
  let wakeUp: (() => void) | undefined;
  let loop: Promise<void> | undefined;

  const signer = (sealed: string) => {
    let webhook = signers.get(sealed);
    if (!webhook) {
      webhook = new Webhook(openSecret(sealed, options.secretKey));
      if (signers.size > 1_000) signers.clear();
      signers.set(sealed, webhook);
    }
    return webhook;
  };

  async function claim(): Promise<Claimed[]> {
    const result = await db.execute(sql`
      WITH due AS (
        SELECT d.id FROM chainbill_api.webhook_deliveries d
        JOIN chainbill_api.webhook_endpoints e ON e.id = d.endpoint_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          AND (d.locked_until IS NULL OR d.locked_until < now())
          AND e.disabled_at IS NULL
          AND NOT EXISTS (
            SELECT 1 FROM chainbill_api.webhook_deliveries p
            WHERE p.endpoint_id = d.endpoint_id AND p.order_key = d.order_key AND p.status = 'pending' AND p.event_sequence < d.event_sequence
          )
        ORDER BY d.next_attempt_at, d.event_sequence
        LIMIT ${options.batchSize}
        FOR UPDATE OF d SKIP LOCKED
      )
      UPDATE chainbill_api.webhook_deliveries d
      SET locked_until = now() + make_interval(secs => ${lease}), locked_by = ${id}
      FROM due, chainbill_api.webhook_events ev, chainbill_api.webhook_endpoints e
      WHERE d.id = due.id AND ev.id = d.event_id AND e.id = d.endpoint_id
      RETURNING d.id::text AS id, d.event_id, d.endpoint_id, d.merchant_id, d.attempts, e.url, e.secret_encrypted,
        e.previous_secret_encrypted, (e.previous_secret_expires_at IS NOT NULL AND e.previous_secret_expires_at > now()) AS previous_valid,
        ev.payload`);
    return rowsOf<Claimed>(result);
  }

  async function attempt(delivery: Claimed) {
    const body = JSON.stringify(delivery.payload);
    const now = new Date();
    const signatures: string[] = [];
    try {
      signatures.push(signer(delivery.secret_encrypted).sign(delivery.event_id, now, body));
      if (delivery.previous_valid && delivery.previous_secret_encrypted) {
        signatures.push(signer(delivery.previous_secret_encrypted).sign(delivery.event_id, now, body));
      }
    } catch (error) {
      // A secret that cannot be opened fails this attempt only (thrown, it would abort the batch's bookkeeping).
      const result: SendResult = { statusCode: null, latencyMs: 0, excerpt: null, error: `could not sign: ${(error as Error).message}`, ok: false };
      return { delivery, result };
    }
    const headers = {
      "webhook-id": delivery.event_id,
      "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
      "webhook-signature": signatures.join(" "),
    };
    const result = await sender.send(delivery.url, headers, body);
    return { delivery, result };
  }

  async function record(outcomes: Awaited<ReturnType<typeof attempt>>[]) {
    if (outcomes.length === 0) return;
    await db.insert(webhookAttempts).values(
      outcomes.map(({ delivery, result }) => ({
        deliveryId: Number(delivery.id),
        endpointId: delivery.endpoint_id,
        eventId: delivery.event_id,
        attempt: delivery.attempts + 1,
        statusCode: result.statusCode,
        latencyMs: result.latencyMs,
        responseExcerpt: result.excerpt,
        error: result.error,
        worker: id,
      })),
    );
    const succeeded = outcomes.filter(({ result }) => result.ok);
    if (succeeded.length > 0) {
      const values = sql.join(
        succeeded.map(({ delivery, result }) => sql`(${delivery.id}::bigint, ${result.statusCode}::int)`),
        sql`, `,
      );
      await db.execute(sql`
        UPDATE chainbill_api.webhook_deliveries d
        SET status = 'succeeded', attempts = d.attempts + 1, completed_at = now(), locked_until = NULL, last_status_code = v.code, last_error = NULL
        FROM (VALUES ${values}) AS v(id, code)
        WHERE d.id = v.id AND d.status = 'pending'`);
      const endpoints = [...new Set(succeeded.map(({ delivery }) => delivery.endpoint_id))];
      await db.execute(sql`
        UPDATE chainbill_api.webhook_endpoints SET consecutive_failures = 0, failing_since = NULL
        WHERE id IN (${sql.join(endpoints.map((endpoint) => sql`${endpoint}`), sql`, `)}) AND (consecutive_failures <> 0 OR failing_since IS NOT NULL)`);
    }
    for (const { delivery, result } of outcomes.filter(({ result }) => !result.ok)) {
      const attempts = delivery.attempts + 1;
      const exhausted = attempts > options.retrySchedule.length;
      const delay = exhausted ? 0 : options.retrySchedule[attempts - 1];
      await db.execute(sql`
        UPDATE chainbill_api.webhook_deliveries
        SET attempts = attempts + 1, locked_until = NULL, last_status_code = ${result.statusCode}, last_error = ${result.error},
          status = ${exhausted ? "failed" : "pending"}, completed_at = ${exhausted ? sql`now()` : sql`NULL`},
          next_attempt_at = now() + make_interval(secs => ${delay})
        WHERE id = ${delivery.id}::bigint AND status = 'pending' AND locked_by = ${id}`);
      const [endpoint] = rowsOf<{ failing_for: number; disabled: boolean; url: string }>(
        await db.execute(sql`
          UPDATE chainbill_api.webhook_endpoints
          SET consecutive_failures = consecutive_failures + 1, failing_since = COALESCE(failing_since, now())
          WHERE id = ${delivery.endpoint_id}
          RETURNING EXTRACT(EPOCH FROM now() - failing_since)::float8 AS failing_for, disabled_at IS NOT NULL AS disabled, url`),
      );
      if (endpoint && !endpoint.disabled && endpoint.failing_for >= options.disableAfterSeconds) {
        const reason = `every delivery failed for ${Math.round(endpoint.failing_for)} s (last: ${result.error ?? "no answer"}); re-enable it with PATCH /v1/webhook-endpoints/${delivery.endpoint_id} {"enabled": true} once it answers, then redeliver the failed events`;
        const disabled = rowsOf(
          await db.execute(sql`
            UPDATE chainbill_api.webhook_endpoints SET disabled_at = now(), disabled_reason = ${reason}
            WHERE id = ${delivery.endpoint_id} AND disabled_at IS NULL RETURNING id`),
        );
        if (disabled.length > 0) {
          logger.warn({ endpointId: delivery.endpoint_id, merchantId: delivery.merchant_id, reason }, "webhook endpoint disabled");
          await options.onEndpointDisabled?.({ id: delivery.endpoint_id, merchantId: delivery.merchant_id, url: endpoint.url, reason }).catch((error: unknown) =>
            logger.error({ err: error }, "could not raise the endpoint-disabled notice"),
          );
        }
      }
    }
  }

  async function runOnce(): Promise<number> {
    const claimed = await claim();
    if (claimed.length === 0) return 0;
    const outcomes = await Promise.all(claimed.map(attempt));
    await record(outcomes);
    for (const { delivery, result } of outcomes) {
      logger.debug({ eventId: delivery.event_id, endpointId: delivery.endpoint_id, status: result.statusCode, latencyMs: result.latencyMs, error: result.error }, "webhook attempt");
    }
    return claimed.length;
  }

  function sleep(ms: number) {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wakeUp = undefined;
        resolve();
      }
      wakeUp = done;
    });
  }

  async function run() {
    while (!stopped) {
      let attempted = 0;
      try {
        attempted = await runOnce();
      } catch (error) {
        if (stopped) break;
        logger.error({ err: error }, "webhook delivery pass failed; retrying");
        await sleep(1_000);
        continue;
      }
      if (attempted < options.batchSize) await sleep(options.pollMs);
    }
  }

  return {
    id,
    wake() {
      if (!loop) loop = run();
      wakeUp?.();
    },
    runOnce,
    async stop() {
      stopped = true;
      wakeUp?.();
      await loop?.catch(() => undefined);
      sender.close();
    },
  };
}
