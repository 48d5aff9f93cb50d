/**
 * Writes the OpenAPI 3.1 document of the API to `api/openapi.json` and regenerates the typed client's types
 * (`api/client/schema.ts`, by openapi-typescript). Run after changing a route: `npm run openapi`.
 * `--check` exits 1 when the committed files are stale (used by the test suite).
 *
 * The document comes from the route definitions alone, so no chain, indexer or database is needed.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import pino from "pino";
import { createApp, OPENAPI_CONFIG } from "../api/app";
import { loadApiConfig } from "../api/config";
import type { ApiDeps } from "../api/env";

const ROOT = path.join(__dirname, "..");
const DOCUMENT = path.join(ROOT, "api", "openapi.json");
const TYPES = path.join(ROOT, "api", "client", "schema.ts");

export function renderOpenApiDocument(): string {
  // Route registration reads no dependency; requests are never served from this app.
  const config = loadApiConfig({ ADMIN_API_KEY: "unused-admin-key-for-the-document", OPERATOR_KEY_SECRET: "00".repeat(32) });
  const deps = { config, logger: pino({ level: "silent" }), store: {}, chains: new Map() } as unknown as ApiDeps;
  const app = createApp(deps);
  const document = app.getOpenAPI31Document(OPENAPI_CONFIG);
  return `${JSON.stringify(document, null, 2)}\n`;
}

function renderTypes(documentFile: string): string {
  const bin = path.join(ROOT, "node_modules", ".bin", "openapi-typescript");
  return execFileSync(bin, [documentFile], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function main(): void {
  const check = process.argv.includes("--check");
  const document = renderOpenApiDocument();
  if (check) {
    const stale: string[] = [];
    if (readFileSync(DOCUMENT, "utf8") !== document) stale.push("api/openapi.json");
    if (readFileSync(TYPES, "utf8") !== renderTypes(DOCUMENT)) stale.push("api/client/schema.ts");
    if (stale.length > 0) {
      console.error(`${stale.join(" and ")} out of date: run \`npm run openapi\` and commit the result.`);
      process.exit(1);
    }
    console.log("OpenAPI document and client types are current");
    return;
  }
  writeFileSync(DOCUMENT, document);
  writeFileSync(TYPES, renderTypes(DOCUMENT));
  console.log("wrote api/openapi.json and api/client/schema.ts");
}

main();
