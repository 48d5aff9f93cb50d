/** drizzle-kit configuration: `npx drizzle-kit generate --config api/store/drizzle.config.ts` after a schema change. */
import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./api/store/schema.ts",
  out: "./api/store/migrations",
  schemaFilter: ["chainbill_api"],
});
