/**
 * A driver adapter with no database behind it, for schema-engine calls that need none (a diff
 * between two schema files). The PostgreSQL engine still asks the server's version when it
 * starts; this answers that one question and refuses everything else by name.
 */
import { ColumnTypeEnum, mockMigrationAwareAdapterFactory } from '@prisma/driver-adapter-utils'
import type { SqlMigrationAwareDriverAdapterFactory, SqlQuery, SqlResultSet } from '@prisma/driver-adapter-utils'

const refuse = (what: string) => Promise.reject(new Error(`offline schema engine: no database to run ${what}`))

function answerVersionProbe(query: SqlQuery): Promise<SqlResultSet> {
  if (!/\bversion\(\)/.test(query.sql)) return refuse(query.sql)
  return Promise.resolve({
    columnNames: ['exists', 'version', 'numeric_version'],
    columnTypes: [ColumnTypeEnum.Boolean, ColumnTypeEnum.Text, ColumnTypeEnum.Int32],
    rows: [[true, 'PostgreSQL 15.0', 150000]],
  })
}

export function offlineAdapterFactory(provider: 'sqlite' | 'postgres'): SqlMigrationAwareDriverAdapterFactory {
  const mock = mockMigrationAwareAdapterFactory(provider)
  if (provider === 'sqlite') return mock
  const connect = async () => ({
    ...(await mock.connect()),
    queryRaw: answerVersionProbe,
    executeRaw: (query: SqlQuery) => refuse(query.sql),
  })
  return { ...mock, connect, connectToShadowDb: connect }
}
