/**
 * The hosted checkout (no API key; an invoice's id is the customer's capability, as in a Stripe Checkout URL):
 *
 *   GET /pay/{id}          the page, in English or Simplified Chinese (`?lang=`, else `Accept-Language`)
 *   GET /pay/{id}/view     the customer's view as JSON (checkout/src/types.ts)
 *   GET /pay/{id}/events   the same view as Server-Sent Events, sent whenever it changes
 *   GET /pay/{id}/qr.svg   a QR code of the transfer link (EIP-681, or BIP21 for Bitcoin)
 *   GET /l/{id}            a payment link's page (it calls `GET /links/{id}` and `POST /links/{id}/invoices`)
 *   GET /embed.js          the one-line embed: a `<chainbill-pay>` button that opens the checkout
 *   GET /checkout/assets/* the page's script and styles, built from checkout/ by `npm run build`
 *
 * Nothing loads from another origin and nothing tracks the customer: the page's Content-Security-Policy allows
 * this server only.
 */
import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import path from "node:path";
import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { streamSSE } from "hono/streaming";
import QRCode from "qrcode";
import { pickLocale } from "../../checkout/src/i18n";
import type { ApiDeps, AppEnv } from "../env";
import { problem } from "../problems";
import { paymentLinks } from "../store/schema";
import { CHECKOUT_HEADERS, checkoutPage, linkPage } from "./html";
import { createCheckoutLive, type CheckoutLive } from "./live";
import { loadCheckoutView } from "./view";

/** Built by `npm run build` (vite, checkout/vite.config.ts); the stylesheet and the embed are served from the source. */
export const CHECKOUT_DIST = path.join(__dirname, "..", "..", "checkout", "dist");
const CHECKOUT_SOURCE = path.join(__dirname, "..", "..", "checkout", "src");

const ASSET_TYPES: Record<string, string> = { ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml" };
const ASSET_NAME = /^[A-Za-z0-9_.-]{1,100}$/;
/** A stream is closed after this long; the browser's EventSource reconnects by itself. */
const STREAM_MAX_MS = 30 * 60_000;
const HEARTBEAT_MS = 15_000;

interface Asset {
  raw: Buffer;
  gzip: Buffer;
}

/** Assets read once and kept with their gzip encoding (the page's script is served compressed). */
const assetCache = new Map<string, Asset>();

async function readAsset(file: string): Promise<Asset | undefined> {
  const cached = assetCache.get(file);
  if (cached) return cached;
  const fromSource: Record<string, string> = { "checkout.css": "styles.css", "embed.js": "embed.js" };
  const location = fromSource[file] ? path.join(CHECKOUT_SOURCE, fromSource[file]) : path.join(CHECKOUT_DIST, file);
  let raw: Buffer;
  try {
    raw = await readFile(location);
  } catch {
    return undefined;
  }
  const asset = { raw, gzip: gzipSync(raw, { level: 9 }) };
  // A missing asset is not remembered (a build while the API runs is picked up); a found one is, until restart.
  assetCache.set(file, asset);
  return asset;
}

/** The asset's body, gzip-encoded when the client accepts it. */
function assetBody(asset: Asset, acceptEncoding: string | undefined): { body: Uint8Array<ArrayBuffer>; headers: Record<string, string> } {
  const gzip = /\bgzip\b/.test(acceptEncoding ?? "");
  const bytes = gzip ? asset.gzip : asset.raw;
  return { body: new Uint8Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer), headers: gzip ? { "content-encoding": "gzip", vary: "accept-encoding" } : { vary: "accept-encoding" } };
}

export function checkoutRoutes(deps: ApiDeps, live: CheckoutLive = createCheckoutLive((id) => loadCheckoutView(deps, id))) {
  const app = new Hono<AppEnv>();
  const locale = (c: { req: { query(name: string): string | undefined; header(name: string): string | undefined } }) => pickLocale(c.req.query("lang"), c.req.header("accept-language"));

  app.get("/pay/:id", async (c) => {
    const view = await loadCheckoutView(deps, c.req.param("id"));
    return c.html(checkoutPage(view, locale(c)), 200, { ...CHECKOUT_HEADERS, "content-language": locale(c) });
  });

  app.get("/pay/:id/view", async (c) => c.json(await loadCheckoutView(deps, c.req.param("id")), 200, { "cache-control": "no-store" }));

  app.get("/pay/:id/qr.svg", async (c) => {
    const view = await loadCheckoutView(deps, c.req.param("id"));
    if (!view.transfer) throw problem.notFound(`A transfer address for invoice ${view.id}`);
    const svg = await QRCode.toString(view.transfer.uri, { type: "svg", errorCorrectionLevel: "M", margin: 2 });
    return c.body(svg, 200, { "content-type": "image/svg+xml", "cache-control": "public, max-age=3600", "x-content-type-options": "nosniff" });
  });

  app.get("/pay/:id/events", async (c) => {
    const id = c.req.param("id");
    await loadCheckoutView(deps, id); // 404 before the stream opens
    if (!live.hasRoom()) throw problem.unavailable("Too many live checkout pages are open right now. The page falls back to reloading; retry in a minute.");
    return streamSSE(c, async (stream) => {
      let sequence = 0;
      const closed = new Promise<void>((resolve) => {
        stream.onAbort(() => resolve());
        setTimeout(resolve, STREAM_MAX_MS);
      });
      await stream.writeSSE({ event: "hello", data: "{}", retry: 2_000 });
      const unsubscribe = live.subscribe(
        id,
        (view) => void stream.writeSSE({ event: "invoice", id: String(++sequence), data: JSON.stringify(view) }).catch(() => undefined),
        () => undefined,
      );
      const heartbeat = setInterval(() => void stream.write(": keep-alive\n\n").catch(() => undefined), HEARTBEAT_MS);
      try {
        await closed;
      } finally {
        clearInterval(heartbeat);
        unsubscribe();
      }
    });
  });

  app.get("/l/:id", async (c) => {
    const id = c.req.param("id");
    if (id.length > 64) throw problem.notFound("Payment link");
    const [link] = await deps.store.db.select({ name: paymentLinks.name }).from(paymentLinks).where(eq(paymentLinks.id, id)).limit(1);
    if (!link) throw problem.notFound(`Payment link ${id}`);
    return c.html(linkPage(id, link.name, locale(c)), 200, { ...CHECKOUT_HEADERS, "content-language": locale(c) });
  });

  app.get("/embed.js", async (c) => {
    const asset = await readAsset("embed.js");
    if (!asset) throw problem.notFound("embed.js");
    const { body, headers } = assetBody(asset, c.req.header("accept-encoding"));
    return c.body(body, 200, {
      ...headers,
      "content-type": ASSET_TYPES[".js"],
      "access-control-allow-origin": "*",
      "cache-control": "public, max-age=300",
      "x-content-type-options": "nosniff",
    });
  });

  app.get("/checkout/assets/:file", async (c) => {
    const file = c.req.param("file");
    const type = ASSET_TYPES[path.extname(file)];
    if (!ASSET_NAME.test(file) || !type || file.startsWith(".")) throw problem.notFound(`Asset ${file.slice(0, 100)}`);
    const asset = await readAsset(file);
    if (!asset) {
      if (file === "checkout.js" || file === "link.js") throw problem.unavailable("The checkout's assets are not built: run `npm run build`.");
      throw problem.notFound(`Asset ${file}`);
    }
    const { body, headers } = assetBody(asset, c.req.header("accept-encoding"));
    return c.body(body, 200, { ...headers, "content-type": type, "cache-control": "public, max-age=300", "x-content-type-options": "nosniff" });
  });

  return app;
}
