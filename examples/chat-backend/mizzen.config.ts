/**
 * What `mizzen serve` and `mizzen migrate` take from code rather than the environment: where the
 * schema is, and who may read what. This example has one schema per database, chosen by
 * DATABASE_URL; a project on one database names its schema once (or keeps prisma/schema.prisma,
 * the default, and needs no `schema` at all).
 */
import { defineConfig } from 'mizzen'

const postgres = /^postgres(ql)?:/.test(process.env.DATABASE_URL ?? '')

export default defineConfig({
  schema: postgres ? 'prisma/postgresql/schema.prisma' : 'prisma/sqlite/schema.prisma',
  // Anyone may read the chat and watch it live; writes come from the backend (or an API key).
  policies: {
    models: {
      Channel: { read: 'anonymous' },
      Message: { read: 'anonymous' },
    },
  },
})
