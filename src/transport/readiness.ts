/**
 * The database's readiness check: it answers, and it has the schema the gateway serves (every
 * model's table). A database that accepts connections but lost its tables (dropped, or never
 * migrated) is not ready: every model call would fail.
 */
import type { Database } from '../db/database.ts'
import type { DataModelMeta } from '../models/meta.ts'

const tableQueries = {
  sqlite: `SELECT name FROM sqlite_master WHERE type = 'table'`,
  postgresql: `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`,
} as const

/** Resolves when the database answers and holds a table for every model; rejects naming what is missing. */
export function databaseCheck(database: Database, dataModel: DataModelMeta): () => Promise<void> {
  const expected = dataModel.models.map((model) => model.dbName ?? model.name)
  return async () => {
    const rows = (await database.prisma.$queryRawUnsafe(tableQueries[database.provider])) as { name: string }[]
    const present = new Set(rows.map((row) => row.name))
    const missing = expected.filter((table) => !present.has(table))
    if (missing.length) throw new Error(`the database lacks the migrated schema: no table ${missing.join(', ')}`)
  }
}
