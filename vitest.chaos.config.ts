import { defineConfig } from "vitest/config";

// The fault-injection suite (npm run test:chaos): real process trees killed, cut off and
// fed garbage. One file at a time, since the scenarios measure timing-sensitive recovery
// and a second file's process trees would skew it on a small machine.
export default defineConfig({
  test: {
    include: ["test/chaos/**/*.test.ts"],
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // The JSON report feeds the CI summary line (.ci/summary.mjs).
    reporters: ["default", ["json", { outputFile: "test-results-chaos.json" }]],
  },
});
