/**
 * The API process lives inside Ponder's: the chainbill API reads the indexed tables in-process through Ponder's
 * read-only `db` (no extra hop) and is served on its own HTTP server (API_HOST:API_PORT, see api/server.ts).
 *
 * What Ponder serves itself (`/health`, `/ready`, `/status`, `/metrics`, with `Access-Control-Allow-Origin: *`)
 * stays on Ponder's own port, which npm start and the tests bind to loopback only. Its query APIs (`/graphql`,
 * `/sql/*`) hand out every indexed row, so they are mounted only with INDEXER_QUERY_API=true.
 */
import { Hono } from "hono";
import { db } from "ponder:api";
import schema from "ponder:schema";
import { client, graphql } from "ponder";
import { startApiServer } from "../../../api/server";

const deps = await startApiServer(db);

const app = new Hono();
if (deps.config.indexerQueryApi) {
  app.use("/sql/*", client({ db, schema }));
  app.use("/graphql", graphql({ db, schema }));
}

export default app;
