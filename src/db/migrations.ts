/**
 * Prisma-layout migrations (`prisma/migrations/<provider>/<timestamp>_<name>/migration.sql` and
 * `migration_lock.toml`), applied with the wasm schema engine exactly as `prisma migrate deploy`
 * would, so `_prisma_migrations` stays compatible with Prisma's own tooling.
 */
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils'
import type { DatabaseProvider } from './provider.ts'
import { noSchemaFilter, withSchemaEngine } from './schema-engine.ts'
import { projectRoot, readSourceSchema, schemaVariant, sourceSchemaPath } from './schema-variants.ts'

export const migrationsRoot = join(projectRoot, 'prisma', 'migrations')
export const migrationsDir = (provider: DatabaseProvider) => join(migrationsRoot, provider)

async function readMigrationList(provider: DatabaseProvider) {
  const baseDir = migrationsDir(provider)
  const lockPath = join(baseDir, 'migration_lock.toml')
  const names = (await readdir(baseDir, { withFileTypes: true }))
    .filter((entry) => entry.isDirectory())
    .map((entry) => entry.name)
    .sort()
  const migrationDirectories = await Promise.all(
    names.map(async (name) => ({
      path: name,
      migrationFile: {
        path: 'migration.sql',
        content: { tag: 'ok' as const, value: await readFile(join(baseDir, name, 'migration.sql'), 'utf8') },
      },
    })),
  )
  return {
    baseDir,
    lockfile: { path: 'migration_lock.toml', content: await readFile(lockPath, 'utf8') },
    shadowDbInitScript: '',
    migrationDirectories,
  }
}

/**
 * Brings the database behind `adapterFactory` to the current schema by applying every migration
 * it has not run yet. Returns the names of the migrations applied now.
 */
export async function applyMigrations(
  provider: DatabaseProvider,
  adapterFactory: SqlMigrationAwareDriverAdapterFactory,
): Promise<string[]> {
  const schema = schemaVariant(await readSourceSchema(), provider)
  const migrationsList = await readMigrationList(provider)
  return withSchemaEngine(sourceSchemaPath, schema, adapterFactory, async (engine) => {
    const { appliedMigrationNames } = await engine.applyMigrations({ migrationsList, filters: noSchemaFilter })
    return appliedMigrationNames
  })
}

/**
 * Whether `prisma/schema.prisma` is the schema the migrations bring a database to (recorded in
 * `prisma/migrations/schema.prisma` by `npm run db:migration`).
 */
export async function migrationsCoverSchema(): Promise<boolean> {
  const migrated = await readFile(join(migrationsRoot, 'schema.prisma'), 'utf8').catch(() => undefined)
  return migrated === (await readSourceSchema())
}
