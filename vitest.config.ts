import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The fault-injection suite has its own config and script (npm run test:chaos); the
    // real-Zeek suite runs alone after this one (vitest.zeek.config.ts, also `npm test`).
    exclude: ["test/chaos/**", "test/zeek-cluster.test.ts", "node_modules/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests spawn real process trees; running too many files at once on a small
    // machine turns scheduling delays into spurious timeouts.
    maxWorkers: 2,
    // The JSON report feeds the CI summary line (.ci/summary.mjs).
    reporters: ["default", ["json", { outputFile: "test-results.json" }]],
  },
});
