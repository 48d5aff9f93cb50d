/**
 * Baseline for the API benchmark: a bare Hono route on @hono/node-server returning a small JSON body, measured
 * with the same load generator in the same run. Usage: tsx bench/bare-hono.ts <port>
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";

const app = new Hono();
app.get("/invoice", (c) => c.json({ id: "inv_baseline", status: "paid", amount: "25.00", amountBaseUnits: "25000000" }));
serve({ fetch: app.fetch, port: Number(process.argv[2] ?? 8788), hostname: "127.0.0.1" });
