import { defineConfig } from "vitest/config";

// Real peers (slapd, Postfix, Dovecot, Redis) are started once per test file;
// files run in parallel on two cores, so keep the pool small and timeouts
// generous enough for daemon start-up, never for the assertions themselves.
export default defineConfig({
  test: {
    include: [
      "core/**/*.test.ts",
      "cli/**/*.test.ts",
      "test/**/*.test.ts",
      "verifyd/**/*.test.ts",
      "policyd/**/*.test.ts",
      "quotad/**/*.test.ts",
      "sieve-tools/**/*.test.ts",
      "sync-agent/**/*.test.ts",
    ],
    pool: "forks",
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ["default"],
  },
});
