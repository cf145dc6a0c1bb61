import { createRequire } from 'node:module'
import { defineConfig } from 'vitest/config'

const require = createRequire(import.meta.url)

export default defineConfig({
  resolve: {
    // graphql 16 ships CommonJS (main) and ESM (module). Node, and so graphql-ws, Yoga and the
    // gateway at run time, load the CommonJS build; Vite would give test-transformed sources the
    // ESM one, and errors from one copy fail `instanceof` checks in the other.
    alias: [{ find: /^graphql$/, replacement: require.resolve('graphql') }],
  },
  test: {
    include: ['test/**/*.test.ts'],
    // Checks PostgreSQL and Redis once: a missing one skips its suites (fails the run under CI=true).
    globalSetup: ['test/helpers/preflight.ts'],
    // Tests start real servers, databases and child processes: give them room on a 2-core machine.
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: 'forks',
  },
})
