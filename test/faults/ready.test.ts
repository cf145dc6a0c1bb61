/**
 * `/ready` when the database is not fit to serve: tables gone, the database dropped, PostgreSQL
 * unreachable or accepting connections and never answering. It answers within its bound
 * (1.5 s per check, all at once), 503, naming the failing check and why, never with an empty reason.
 */
import pg from 'pg'
import { afterEach, describe, expect, it } from 'vitest'
import { databaseKinds, adminPostgresUrl, type TestDatabase } from '../helpers/databases.ts'
import { eachDatabase, missing } from '../helpers/fixture.ts'
import { startGateway, type TestGateway } from '../helpers/gateway.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'

const cleanups: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

async function gatewayOn(database: TestDatabase, url = database.url): Promise<TestGateway> {
  const gateway = await startGateway({ ...database, url }, { databaseTimeoutMs: 1000 })
  cleanups.push(() => gateway.close())
  return gateway
}

async function ready(gateway: TestGateway) {
  const response = await fetch(new URL('/ready', gateway.url), { signal: AbortSignal.timeout(10_000) })
  return {
    status: response.status,
    body: (await response.json()) as { status: string; checks: Record<string, string> },
  }
}

/** Runs SQL on the test database directly (not through the gateway). */
async function sql(database: TestDatabase, provider: string, statement: string): Promise<void> {
  if (provider === 'sqlite') {
    const { default: Sqlite } = await import('better-sqlite3')
    const file = new Sqlite(database.url.slice('file:'.length))
    file.exec(statement)
    file.close()
    return
  }
  const client = new pg.Client({ connectionString: database.url })
  await client.connect()
  await client.query(statement)
  await client.end()
}

eachDatabase('/ready on $provider', (provider) => {
  const { create } = databaseKinds.find((kind) => kind.provider === provider)!
  it('should answer 503 naming the missing tables once the schema is gone, and 200 before', async () => {
    const database = await create()
    cleanups.push(() => database.drop())
    const gateway = await gatewayOn(database)
    expect(await ready(gateway)).toEqual({
      status: 200,
      body: { status: 'ready', checks: { database: 'ok', bus: 'ok' } },
    })
    await sql(
      database,
      provider,
      provider === 'sqlite' ? 'DROP TABLE "Post"; DROP TABLE "_PostToTag"' : 'DROP TABLE "Post" CASCADE',
    )
    const { status, body } = await ready(gateway)
    expect(status).toBe(503)
    expect(body.checks.database).toBe('unavailable: the database lacks the migrated schema: no table Post')
  })
})

describe.skipIf(missing('postgresql'))('/ready on PostgreSQL that fails', () => {
  it('should give a reason once the database was dropped', async () => {
    const database = await databaseKinds[1]!.create()
    const gateway = await gatewayOn(database)
    await database.drop()
    const { status, body } = await ready(gateway)
    expect(status).toBe(503)
    expect(body.checks.database).toMatch(/^unavailable: \S/)
  })

  for (const fault of ['cut', 'black-hole'] as const) {
    it(`should answer 503 within its bound when PostgreSQL is ${fault === 'cut' ? 'unreachable' : 'black-holed (accepts, never answers)'}`, async () => {
      const database = await databaseKinds[1]!.create()
      cleanups.push(() => database.drop())
      const server = new URL(adminPostgresUrl)
      const link: TcpProxy = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) })
      cleanups.push(() => link.close())
      const url = new URL(database.url)
      url.host = `127.0.0.1:${link.port}`
      const gateway = await gatewayOn(database, url.toString())
      expect((await ready(gateway)).status).toBe(200)
      if (fault === 'cut') link.cut()
      else link.blackHole()
      const { status, body } = await ready(gateway)
      expect(status).toBe(503)
      expect(body.checks.database).toMatch(
        fault === 'cut'
          ? /^unavailable: \S/
          : /^unavailable: (the database did not answer in time|database did not answer within 1500 ms)$/,
      )
      expect(body.checks.bus).toBe('ok')
      link.restore()
      await expect.poll(async () => (await ready(gateway)).status, { timeout: 20_000, interval: 100 }).toBe(200)
    })
  }
})
