/**
 * Change capture (MIZZEN_CAPTURE=database) on a PostgreSQL of this file's own with
 * wal_level=logical: every committed change, made by raw SQL or through the gateway, reaches
 * subscribers once, as the realtime extension's events, in commit and statement order.
 */
import pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { connectWs, subscribeWs, type Subscription, type WsClient } from './helpers/clients.ts'
import { settled, startGateway, waitForSubscribers, type TestGateway } from './helpers/gateway.ts'
import type { TestDatabase } from './helpers/databases.ts'
import { useLogicalPostgres } from './helpers/logical-postgres.ts'

const EVENT = 'verb recordId updatedFields attribute addedIds removedIds at'

describe('change capture', () => {
  const server = useLogicalPostgres()
  let database: TestDatabase
  let gateway: TestGateway
  let ws: WsClient
  let sql: pg.Client
  let n = 0
  const email = () => `c${++n}@example.com`

  beforeAll(async () => {
    database = await server.createDatabase()
    gateway = await startGateway(database, { capture: 'database' })
    ws = connectWs(gateway.wsUrl)
    await ws.ack
    sql = new pg.Client({ connectionString: database.url })
    await sql.connect()
    await settled(() => expect(gateway.capture?.leading).toBe(true))
  })
  afterAll(async () => {
    await sql?.end()
    await ws?.client.dispose()
    await gateway?.close()
    await database?.drop()
  })
  beforeEach(() => waitForSubscribers(gateway, 0))

  const subscribe = (query: string, variables?: Record<string, unknown>): Subscription<any> =>
    subscribeWs(ws.client, query, variables)
  const insertUser = async (name: string) =>
    String(
      (
        await sql.query<{ id: number }>('INSERT INTO "User" (email, name) VALUES ($1, $2) RETURNING id', [
          email(),
          name,
        ])
      ).rows[0]!.id,
    )

  it('delivers a raw SQL INSERT to a userEvents subscriber as CREATED', async () => {
    const events = subscribe(
      `subscription { userEvents { ${EVENT} node { id name email createdAt } previous { name } } }`,
    )
    await waitForSubscribers(gateway, 1)
    const id = await insertUser('Ada')
    const created = (await events.next()).data!.userEvents
    expect(created).toMatchObject({ verb: 'CREATED', recordId: id, node: { id, name: 'Ada' }, previous: null })
    expect(new Date(created.node.createdAt).getTime()).toBeGreaterThan(Date.now() - 60_000)
    events.stop()
  })
})
