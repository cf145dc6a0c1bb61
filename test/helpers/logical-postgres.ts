/**
 * A PostgreSQL server with `wal_level=logical` for the calling test file (or describe block),
 * started in beforeAll and stopped in afterAll; the server itself is `logical-postgres-server.ts`.
 *
 *   const server = useLogicalPostgres()
 *   it('…', async () => { const database = await server.createDatabase() … })
 */
import { afterAll, beforeAll } from 'vitest'
import { startLogicalPostgres, type LogicalPostgres, type LogicalPostgresOptions } from './logical-postgres-server.ts'

export { postgresBinaries, startLogicalPostgres } from './logical-postgres-server.ts'
export type { LogicalPostgres, LogicalPostgresOptions } from './logical-postgres-server.ts'

/** A logical PostgreSQL for the calling test file (or describe block): started in beforeAll, stopped in afterAll. */
export function useLogicalPostgres(options: LogicalPostgresOptions = {}): LogicalPostgres {
  let server: LogicalPostgres | undefined
  beforeAll(async () => {
    server = await startLogicalPostgres(options)
  })
  afterAll(async () => {
    await server?.stop()
  })
  const get = () => {
    if (!server) throw new Error('the logical PostgreSQL starts in beforeAll: use it inside a test or hook')
    return server
  }
  return {
    get url() {
      return get().url
    },
    get port() {
      return get().port
    },
    get pid() {
      return get().pid
    },
    createDatabase: () => get().createDatabase(),
    query: (sql, database) => get().query(sql, database),
    stop: () => get().stop(),
  }
}
