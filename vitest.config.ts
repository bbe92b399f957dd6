import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests spawn real process trees; running too many files at once on a small
    // machine turns scheduling delays into spurious timeouts.
    maxWorkers: 2,
    fileParallelism: true,
  },
});
