/**
 * The database's readiness check: it answers, and it has the schema the gateway serves (every
 * model's table). A database that accepts connections but lost its tables (dropped, or never
 * migrated) is not ready: every model call would fail.
 */
import type { DataModel } from '../models/data-model.ts'
import { activeProvider, type PrismaClientLike } from '../prisma/client.ts'

const tableQueries = {
  sqlite: `SELECT name FROM sqlite_master WHERE type = 'table'`,
  postgresql: `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`,
} as const

const isKnown = (provider: string | undefined): provider is keyof typeof tableQueries =>
  provider !== undefined && provider in tableQueries

/**
 * Resolves when the database answers and holds a table for every model; rejects naming what is
 * missing. On a provider it does not know how to list tables of, it only checks the database answers.
 */
export function databaseCheck(prisma: PrismaClientLike, dataModel: DataModel): () => Promise<void> {
  const expected = dataModel.models.map((model) => model.dbName ?? model.name)
  const provider = activeProvider(prisma)
  return async () => {
    if (!isKnown(provider)) {
      await prisma.$queryRawUnsafe('SELECT 1')
      return
    }
    const rows = (await prisma.$queryRawUnsafe(tableQueries[provider])) as { name: string }[]
    const present = new Set(rows.map((row) => row.name))
    const missing = expected.filter((table) => !present.has(table))
    if (missing.length) throw new Error(`the database lacks the migrated schema: no table ${missing.join(', ')}`)
  }
}
