/**
 * Small build steps of the SDK around tsc. `clean` empties dist/ (nothing stale is packed). `finish` writes
 * dist/cjs/package.json, so Node and TypeScript read dist/cjs/*.js and *.d.ts as CommonJS inside a
 * `"type": "module"` package, and points the declarations' relative imports at `.js` (tsc's
 * rewriteRelativeImportExtensions rewrites the JavaScript only; the sources import `./x.ts`).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const DIST = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "dist");

function declarationFiles(directory) {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(directory, entry.name);
    if (entry.isDirectory()) return declarationFiles(full);
    return entry.name.endsWith(".d.ts") ? [full] : [];
  });
}

const step = process.argv[2];
if (step === "clean") {
  rmSync(DIST, { recursive: true, force: true });
} else if (step === "finish") {
  mkdirSync(path.join(DIST, "cjs"), { recursive: true });
  writeFileSync(path.join(DIST, "cjs", "package.json"), `${JSON.stringify({ type: "commonjs" }, null, 2)}\n`);
  for (const file of declarationFiles(DIST)) {
    const text = readFileSync(file, "utf8");
    const rewritten = text.replace(/(from\s+|import\()(["'])(\.{1,2}\/[^"']+)\.ts\2/g, "$1$2$3.js$2");
    if (rewritten !== text) writeFileSync(file, rewritten);
  }
} else {
  console.error("usage: node scripts/dist.mjs clean | finish");
  process.exit(2);
}
