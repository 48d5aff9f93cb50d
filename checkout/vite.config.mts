/**
 * Builds the hosted checkout's scripts (checkout/src/main.ts → checkout.js, link.ts → link.js) into
 * checkout/dist, which the API serves at /checkout/assets/. Run by `npm run build` (before `npm start` and
 * `npm test`). The SDK is bundled from its source, so the page always uses the SDK of this checkout.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = path.dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  root: here,
  logLevel: "warn",
  resolve: { alias: { "@chainbill/sdk": path.join(here, "..", "sdk", "src", "index.ts") } },
  build: {
    outDir: path.join(here, "dist"),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    modulePreload: false,
    rollupOptions: {
      input: { checkout: path.join(here, "src", "main.ts"), link: path.join(here, "src", "link.ts") },
      output: { entryFileNames: "[name].js", chunkFileNames: "[name]-[hash].js", assetFileNames: "[name][extname]" },
      preserveEntrySignatures: false,
    },
  },
});
