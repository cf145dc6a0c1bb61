import { defineConfig } from 'prisma/config'

// Prisma's CLI downloads a Rust schema-engine binary before every command, even `generate`,
// which never runs it. Pointing the variable at any existing file skips that download, so
// `npm install` works with no network but the npm registry. Migrations are applied with the
// wasm engine instead (src/db/migrate.ts).
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= process.execPath

export default defineConfig({
  schema: 'prisma/schema.prisma',
})
