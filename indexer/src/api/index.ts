/**
 * Ponder's HTTP server hosts the chainbill API: it reads the indexed tables in-process through Ponder's
 * read-only `db` (no extra hop), and keeps its own store (merchants, keys, invoices) beside it.
 * Also served: SQL over HTTP at /sql/* and GraphQL at /graphql; Ponder's own /health, /ready, /status, /metrics.
 */
import { Hono } from "hono";
import { db } from "ponder:api";
import schema from "ponder:schema";
import { client, graphql } from "ponder";
import { startApi } from "../../../api/server";

const app = new Hono();
app.use("/sql/*", client({ db, schema }));
app.use("/graphql", graphql({ db, schema }));
app.route("/", await startApi(db));

export default app;
