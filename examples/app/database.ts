/**
 * The example app's database, for this repository's tests and benchmarks: the Prisma Client
 * generated from `prisma/schema.prisma` for the provider `DATABASE_URL` names (SQLite, or the
 * derived PostgreSQL variant), with the example migrations applied. The library never does
 * this on its own: a gateway serves the client it is given.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createAdapterFactory } from '../../src/db/adapter.ts'
import { applyMigrations } from '../../src/db/migrations.ts'
import { databaseProvider, type DatabaseProvider } from '../../src/db/provider.ts'
import type { PrismaClient } from './generated/prisma/client.ts'
import { dataModel } from './generated/mizzen/index.js'
import { projectRoot, sourceSchemaPath } from './schema-variants.ts'

export type { PrismaClient }
export { dataModel }

/** The example's schema file for `provider`: the source, or the PostgreSQL variant `npm run generate` derives. */
export const exampleSchemaPath = (provider: DatabaseProvider) =>
  provider === 'sqlite'
    ? sourceSchemaPath
    : join(projectRoot, 'examples', 'app', 'generated', 'postgres', 'schema.prisma')

/** The example's migrations for `provider`. */
export const exampleMigrationsDir = (provider: DatabaseProvider) => join(projectRoot, 'prisma', 'migrations', provider)

export interface ExampleDatabase {
  readonly provider: DatabaseProvider
  /** The plain client (no realtime extension). Both providers' clients share the SQLite one's types. */
  readonly prisma: PrismaClient
  /** The migrations this open applied (empty when the database was up to date). */
  readonly appliedMigrations: readonly string[]
  close(): Promise<void>
}

async function loadClientClass(provider: DatabaseProvider): Promise<typeof PrismaClient> {
  if (provider === 'sqlite') return (await import('./generated/prisma/client.ts')).PrismaClient
  const postgres = await import('./generated/postgres/client/client.ts')
  return postgres.PrismaClient as unknown as typeof PrismaClient
}

export interface OpenExampleDatabaseOptions {
  /** Apply pending migrations before returning. @default true */
  migrate?: boolean
  /**
   * PostgreSQL: how long connecting and each query of the returned client may take, in ms; past
   * it the call fails (Prisma P1008 / a driver timeout). Migrations are not bounded.
   * @default 10000
   */
  timeoutMs?: number | undefined
}

/** Opens the example database at `url`, applying the example migrations first unless `migrate` is false. */
export async function openExampleDatabase(
  url: string,
  options: OpenExampleDatabaseOptions = {},
): Promise<ExampleDatabase> {
  const provider = databaseProvider(url)
  const schemaPath = exampleSchemaPath(provider)
  const appliedMigrations =
    options.migrate === false
      ? []
      : await applyMigrations({
          schema: [{ path: schemaPath, content: await readFile(schemaPath, 'utf8') }],
          migrationsDir: exampleMigrationsDir(provider),
          adapterFactory: await createAdapterFactory(url),
        })
  const Client = await loadClientClass(provider)
  const prisma = new Client({ adapter: await createAdapterFactory(url, { timeoutMs: options.timeoutMs ?? 10_000 }) })
  return { provider, prisma, appliedMigrations, close: () => prisma.$disconnect() }
}
