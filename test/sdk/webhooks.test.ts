/**
 * The SDK's webhook verification (sdk/src/webhooks.ts, WebCrypto) against real deliveries: signed by the server's
 * own delivery worker (api/webhooks/worker.ts on a real PGlite store, its sender replaced by one that records the
 * request), including the two signatures it sends during a secret rotation. Then everything it must refuse: a
 * wrong secret, a changed body, timestamps beyond the tolerance, missing headers, malformed signature entries,
 * NUL bytes.
 */
import { expect } from "chai";
import { Webhook } from "standardwebhooks";
import { and, inArray, sql } from "drizzle-orm";
import type { Store } from "../../api/store";
import { webhookEndpoints } from "../../api/store/schema";
import { eventId, recordEvent } from "../../api/webhooks/events";
import { newSigningSecret, sealSecret } from "../../api/webhooks/secrets";
import type { Sender } from "../../api/webhooks/send";
import { createWorker } from "../../api/webhooks/worker";
import { signWebhook, verifyWebhook, WebhookVerificationError, type WebhookVerificationFailure } from "../../sdk/src/webhooks";
import { recordingLogger } from "../unit/helpers/logger";
import { sharedStore, uniqueId } from "../unit/helpers/store";

const KEY = Buffer.alloc(32, 11);

interface Sent {
  headers: Record<string, string>;
  body: string;
}

async function refusal(promise: Promise<unknown>): Promise<WebhookVerificationFailure> {
  try {
    await promise;
  } catch (error) {
    expect(error).to.be.instanceOf(WebhookVerificationError);
    return (error as WebhookVerificationError).reason;
  }
  throw new Error("the delivery was accepted");
}

describe("sdk: verifyWebhook (Standard Webhooks, WebCrypto)", function () {
  this.timeout(60_000);
  let store: Store;
  const merchants: string[] = [];
  let single: Sent;
  let rotated: Sent;
  let secret: string;
  let previousSecret: string;
  let rotatedSecret: string;

  /** One delivery of one event, signed and "sent" by the server's worker. */
  async function deliver(merchantId: string, endpoint: Partial<typeof webhookEndpoints.$inferInsert> & { secretEncrypted: string }): Promise<Sent> {
    await store.db.insert(webhookEndpoints).values({ id: uniqueId("we"), merchantId, url: "https://receiver.example/hook", eventTypes: [], ...endpoint });
    const id = eventId(uniqueId("src"), "invoice.paid");
    await recordEvent(store.db, id, { merchantId, type: "invoice.paid", orderKey: uniqueId("inv"), occurredAt: new Date(), data: { amount: "12.50", currency: "USDC", note: "ünïcödé ✓" } });
    const sent: Sent[] = [];
    const sender: Sender = {
      async send(_url, headers, body) {
        sent.push({ headers, body });
        return { statusCode: 200, latencyMs: 1, excerpt: "ok", error: null, ok: true };
      },
      close() {},
    };
    const worker = createWorker({ store, sender, logger: recordingLogger().logger, secretKey: KEY, retrySchedule: [1], disableAfterSeconds: 3_600, batchSize: 25, pollMs: 20, timeoutMs: 2_000 });
    try {
      for (let round = 0; round < 50 && !sent.some((each) => each.headers["webhook-id"] === id); round += 1) {
        if ((await worker.runOnce()) === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      }
    } finally {
      await worker.stop();
    }
    const delivery = sent.find((each) => each.headers["webhook-id"] === id);
    if (!delivery) throw new Error("the worker sent nothing");
    return delivery;
  }

  before(async function () {
    this.timeout(120_000);
    store = await sharedStore();
    secret = newSigningSecret();
    const first = uniqueId("mer");
    merchants.push(first);
    single = await deliver(first, { secretEncrypted: sealSecret(secret, KEY) });

    previousSecret = newSigningSecret();
    rotatedSecret = newSigningSecret();
    const second = uniqueId("mer");
    merchants.push(second);
    rotated = await deliver(second, {
      secretEncrypted: sealSecret(rotatedSecret, KEY),
      previousSecretEncrypted: sealSecret(previousSecret, KEY),
      previousSecretExpiresAt: new Date(Date.now() + 86_400_000),
    });
  });

  after(async () => {
    if (!store) return;
    await store.db
      .update(webhookEndpoints)
      .set({ disabledAt: new Date(), disabledReason: "test over" })
      .where(and(inArray(webhookEndpoints.merchantId, merchants), sql`${webhookEndpoints.disabledAt} IS NULL`));
  });

  it("accepts the server's delivery and returns its body: from a Headers object, a plain object (any case), text or bytes", async () => {
    const event = await verifyWebhook({ secret, headers: single.headers, body: single.body });
    expect(event).to.deep.equal(JSON.parse(single.body));
    expect(event.id).to.equal(single.headers["webhook-id"]);
    expect(event.type).to.equal("invoice.paid");
    expect(event.data).to.include({ amount: "12.50", note: "ünïcödé ✓" });

    const upper = Object.fromEntries(Object.entries(single.headers).map(([name, value]) => [name.toUpperCase(), value]));
    expect(await verifyWebhook({ secret, headers: upper, body: new TextEncoder().encode(single.body) })).to.deep.equal(event);
    expect(await verifyWebhook({ secret, headers: new Headers(single.headers), body: Buffer.from(single.body, "utf8") })).to.deep.equal(event);
    // Node's IncomingHttpHeaders may carry arrays.
    expect(await verifyWebhook({ secret, headers: { ...single.headers, "webhook-id": [single.headers["webhook-id"]] }, body: single.body })).to.deep.equal(event);
    // The secret without its whsec_ prefix works too (as in standardwebhooks).
    expect(await verifyWebhook({ secret: secret.slice("whsec_".length), headers: single.headers, body: single.body })).to.deep.equal(event);
  });

  it("accepts both signatures of a rotation: the new secret and the previous one each verify the delivery", async () => {
    const entries = rotated.headers["webhook-signature"].split(" ");
    expect(entries).to.have.length(2);
    for (const each of [rotatedSecret, previousSecret]) {
      expect((await verifyWebhook({ secret: each, headers: rotated.headers, body: rotated.body })).id).to.equal(rotated.headers["webhook-id"]);
    }
    expect(await refusal(verifyWebhook({ secret, headers: rotated.headers, body: rotated.body }))).to.equal("signature-mismatch");
  });

  it("signs exactly as the server's library does (signWebhook = standardwebhooks' sign)", async () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const expected = new Webhook(secret).sign("evt_1", new Date(timestamp * 1000), single.body);
    expect(await signWebhook(secret, "evt_1", timestamp, single.body)).to.equal(expected);
  });

  it("refuses a wrong secret and a changed body", async () => {
    expect(await refusal(verifyWebhook({ secret: newSigningSecret(), headers: single.headers, body: single.body }))).to.equal("signature-mismatch");
    expect(await refusal(verifyWebhook({ secret, headers: single.headers, body: single.body.replace("12.50", "12.51") }))).to.equal("signature-mismatch");
    expect(await refusal(verifyWebhook({ secret, headers: single.headers, body: `${single.body} ` }))).to.equal("signature-mismatch");
    expect(await refusal(verifyWebhook({ secret, headers: { ...single.headers, "webhook-id": "evt_other" }, body: single.body }))).to.equal("signature-mismatch");
    expect(await refusal(verifyWebhook({ secret: "whsec_not base64!", headers: single.headers, body: single.body }))).to.equal("invalid-secret");
  });

  it("refuses timestamps beyond the tolerance, both ways, and honours a custom tolerance", async () => {
    const sentAt = Number(single.headers["webhook-timestamp"]) * 1000;
    const at = (seconds: number) => sentAt + seconds * 1000;
    expect((await verifyWebhook({ secret, headers: single.headers, body: single.body, now: at(300) })).id).to.be.a("string");
    expect((await verifyWebhook({ secret, headers: single.headers, body: single.body, now: new Date(at(-300)) })).id).to.be.a("string");
    expect(await refusal(verifyWebhook({ secret, headers: single.headers, body: single.body, now: at(301) }))).to.equal("timestamp-too-old");
    expect(await refusal(verifyWebhook({ secret, headers: single.headers, body: single.body, now: at(-301) }))).to.equal("timestamp-too-new");
    expect(await refusal(verifyWebhook({ secret, headers: single.headers, body: single.body, now: at(61), toleranceSeconds: 60 }))).to.equal("timestamp-too-old");
    // A replay with a fresh timestamp but the old signature does not verify either.
    const replay = { ...single.headers, "webhook-timestamp": String(Math.floor(Date.now() / 1000) + 1) };
    expect(await refusal(verifyWebhook({ secret, headers: replay, body: single.body }))).to.equal("signature-mismatch");
    for (const timestamp of ["", "12.5", "-1", "1e9", "0x10", "9999999999999999"]) {
      const reason = await refusal(verifyWebhook({ secret, headers: { ...single.headers, "webhook-timestamp": timestamp }, body: single.body }));
      expect(reason, timestamp).to.be.oneOf(["missing-header", "invalid-timestamp"]);
    }
  });

  it("refuses missing headers", async () => {
    for (const name of ["webhook-id", "webhook-timestamp", "webhook-signature"]) {
      const headers: Record<string, string> = { ...single.headers };
      delete headers[name];
      expect(await refusal(verifyWebhook({ secret, headers, body: single.body })), name).to.equal("missing-header");
      expect(await refusal(verifyWebhook({ secret, headers: { ...single.headers, [name]: "" }, body: single.body })), name).to.equal("missing-header");
    }
  });

  it("refuses malformed signature entries, and finds the valid one among them", async () => {
    const valid = single.headers["webhook-signature"];
    const digest = valid.slice("v1,".length);
    for (const signature of ["v1", "v1,", "v2," + digest, digest, "v1,***", "v1a," + digest, "v1,abc", ","]) {
      const reason = await refusal(verifyWebhook({ secret, headers: { ...single.headers, "webhook-signature": signature }, body: single.body }));
      expect(reason, signature).to.equal("malformed-signature");
    }
    // A well-formed but shorter or longer signature is a mismatch, not a crash.
    for (const signature of ["v1,AAAA", `v1,${Buffer.alloc(33, 1).toString("base64")}`]) {
      expect(await refusal(verifyWebhook({ secret, headers: { ...single.headers, "webhook-signature": signature }, body: single.body }))).to.equal("signature-mismatch");
    }
    const mixed = `v2,${digest} v1,*** v1,AAAA ${valid}`;
    expect((await verifyWebhook({ secret, headers: { ...single.headers, "webhook-signature": mixed }, body: single.body })).id).to.equal(single.headers["webhook-id"]);
  });

  it("refuses NUL bytes and other control characters in the headers", async () => {
    for (const [name, value] of [
      ["webhook-id", `${single.headers["webhook-id"]}\u0000`],
      ["webhook-timestamp", `${single.headers["webhook-timestamp"]}\u0000`],
      ["webhook-signature", `${single.headers["webhook-signature"]}\u0000`],
      ["webhook-signature", `\u0000${single.headers["webhook-signature"]}`],
      ["webhook-id", `evt\n_1`],
    ] as const) {
      expect(await refusal(verifyWebhook({ secret, headers: { ...single.headers, [name]: value }, body: single.body })), JSON.stringify(value)).to.equal("invalid-header");
    }
    // A NUL byte added to the body changes what was signed.
    expect(await refusal(verifyWebhook({ secret, headers: single.headers, body: `${single.body}\u0000` }))).to.equal("signature-mismatch");
  });

  it("refuses a correctly signed body that is not JSON", async () => {
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = { "webhook-id": "evt_x", "webhook-timestamp": String(timestamp), "webhook-signature": await signWebhook(secret, "evt_x", timestamp, "not json") };
    expect(await refusal(verifyWebhook({ secret, headers, body: "not json" }))).to.equal("invalid-body");
  });
});
