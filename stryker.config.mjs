// Mutation testing of the API's pure logic with StrykerJS: `npm run mutation` (not part of `npm test` or CI).
// It mutates the modules below one small change at a time and runs the unit tests (test/unit) that cover each
// change; a mutant that no test notices is a gap in the tests (or an equivalent change, see bench/mutation.md).
// Reports go to coverage/mutation/ (ignored by git), the sandboxes to coverage/mutation/tmp/.
/** @type {import("@stryker-mutator/api/core").PartialStrykerOptions} */
export default {
  mutate: [
    "api/status.ts",
    "api/money.ts",
    "api/cursor.ts",
    "api/canonical-json.ts",
    "api/invoices/details.ts",
    "api/statements/period.ts",
    "api/statements/csv.ts",
    "api/statements/ledger.ts",
    "api/idempotency.ts",
    "api/auth.ts",
    "api/middleware.ts",
    "api/problems.ts",
  ],
  testRunner: "mocha",
  mochaOptions: {
    // The unit tests of code only: test/unit/docs checks the documentation and is left out.
    spec: ["test/unit/*.test.ts"],
    require: ["ts-node/register/transpile-only"],
  },
  coverageAnalysis: "perTest",
  concurrency: 2,
  timeoutMS: 20000,
  reporters: ["clear-text", "json", "progress"],
  jsonReporter: { fileName: "coverage/mutation/mutation.json" },
  clearTextReporter: { allowColor: false, logTests: false, reportScoreTable: true },
  tempDirName: "coverage/mutation/tmp",
  cleanTempDir: true,
  // Copy only what the unit tests load into the sandboxes (node_modules is linked, not copied).
  ignorePatterns: ["/*", "!/api", "!/test", "/test/*", "!/test/unit", "!/indexer", "/indexer/.ponder", "!/contracts", "/contracts/**/*.sol", "!/package.json", "!/tsconfig.json"],
  thresholds: { high: 90, low: 85, break: null },
};
