/**
 * The example app's mizzen config, read by `npm start` (`mizzen serve`) as a user's project
 * would have it. This repository derives a PostgreSQL variant of prisma/schema.prisma (see
 * scripts/generate.ts), so the schema and migrations follow DATABASE_URL.
 */
import { examplePolicies } from './examples/app/policies.ts'
import { defineConfig } from './src/index.ts'

const postgres = /^postgres(ql)?:/.test(process.env.DATABASE_URL ?? '')

export default defineConfig({
  schema: postgres ? 'examples/app/generated/postgres/schema.prisma' : 'prisma/schema.prisma',
  migrations: postgres ? 'prisma/migrations/postgresql' : 'prisma/migrations/sqlite',
  policies: examplePolicies,
})
