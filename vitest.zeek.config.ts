import { defineConfig } from "vitest/config";

// The real-Zeek suite, part of `npm test`: ten Zeek processes at a time take both cores of a
// small machine while they start, which would turn other files' tight waits into spurious
// timeouts. So it runs on its own, after the rest.
export default defineConfig({
  test: {
    include: ["test/zeek-cluster.test.ts"],
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 180_000,
    hookTimeout: 120_000,
    // The JSON report feeds the CI summary line (.ci/summary.mjs).
    reporters: ["default", ["json", { outputFile: "test-results-zeek.json" }]],
  },
});
