/**
 * Opens the database a `DATABASE_URL` names, brings it to the current schema, and returns a
 * Prisma Client for it. A generated client is bound to one provider, so SQLite and PostgreSQL
 * each have theirs (see scripts/generate.ts); both share the SQLite client's types.
 */
import type { PrismaClient } from '../generated/prisma/client.ts'
import { createAdapterFactory } from './adapter.ts'
import { applyMigrations } from './migrations.ts'
import { databaseProvider, type DatabaseProvider } from './provider.ts'

export type { PrismaClient }

export interface Database {
  readonly provider: DatabaseProvider
  /** The plain client; the gateway extends it with the realtime extension. */
  readonly prisma: PrismaClient
  /** The migrations this open applied (empty when the database was up to date). */
  readonly appliedMigrations: readonly string[]
  /** Resolves when the database answers a query. */
  ping(): Promise<void>
  close(): Promise<void>
}

export interface OpenDatabaseOptions {
  /** Apply pending migrations before returning. @default true */
  migrate?: boolean
  /**
   * PostgreSQL: how long connecting and each query of the returned client may take, in ms;
   * past it the call fails (Prisma P1008 / a driver timeout). Migrations are not bounded.
   * @default 10000
   */
  timeoutMs?: number
}

async function loadClientClass(provider: DatabaseProvider): Promise<typeof PrismaClient> {
  if (provider === 'sqlite') return (await import('../generated/prisma/client.ts')).PrismaClient
  const postgres = await import('../generated/postgres/client/client.ts')
  return postgres.PrismaClient as unknown as typeof PrismaClient
}

export async function openDatabase(url: string, options: OpenDatabaseOptions = {}): Promise<Database> {
  const provider = databaseProvider(url)
  const appliedMigrations = options.migrate === false ? [] : await applyMigrations(provider, createAdapterFactory(url))
  const Client = await loadClientClass(provider)
  const prisma = new Client({ adapter: createAdapterFactory(url, { timeoutMs: options.timeoutMs ?? 10_000 }) })
  return {
    provider,
    prisma,
    appliedMigrations,
    ping: async () => {
      await prisma.$queryRawUnsafe('SELECT 1')
    },
    close: () => prisma.$disconnect(),
  }
}
