/**
 * Change capture (MIZZEN_CAPTURE=database) on a PostgreSQL of this file's own with
 * wal_level=logical: every committed change, made by raw SQL or through the gateway, reaches
 * subscribers once, as the realtime extension's events, in commit and statement order.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { connectWs, postGraphQL, subscribeWs, type Subscription, type WsClient } from './helpers/clients.ts'
import { settled, startGateway, waitForSubscribers, type TestGateway } from './helpers/gateway.ts'
import type { TestDatabase } from './helpers/databases.ts'
import { useLogicalPostgres } from './helpers/logical-postgres.ts'
import { startGatewayProcess } from './helpers/gateway-process.ts'
import { missing, postgresUrl } from './helpers/services.ts'
import { loadConfig } from '../src/config.ts'
import { checkCapture } from '../src/startup.ts'

const EVENT = 'verb recordId updatedFields attribute addedIds removedIds at'

/** One PostgreSQL with wal_level=logical for the whole file. */
const server = useLogicalPostgres()

describe('change capture', () => {
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

  it('delivers UPDATED with previous and updatedFields, and DELETED with previous, for raw SQL', async () => {
    const id = await insertUser('Grace')
    const events = subscribe(
      `subscription ($ids: [ID!]) { userEvents(ids: $ids, verbs: [UPDATED, DELETED]) { ${EVENT} node { id name } previous { name email } } }`,
      { ids: [id] },
    )
    await waitForSubscribers(gateway, 1)
    await sql.query(`UPDATE "User" SET name = 'Grace Hopper' WHERE id = $1`, [id])
    await sql.query(`UPDATE "User" SET name = name WHERE id = $1`, [id]) // changes nothing: no event
    await sql.query(`DELETE FROM "User" WHERE id = $1`, [id])
    const updated = (await events.next()).data!.userEvents
    const deleted = (await events.next()).data!.userEvents
    expect(updated).toMatchObject({
      verb: 'UPDATED',
      recordId: id,
      node: { id, name: 'Grace Hopper' },
      previous: { name: 'Grace' },
      updatedFields: ['name'],
    })
    expect(deleted).toMatchObject({ verb: 'DELETED', recordId: id, node: null, previous: { name: 'Grace Hopper' } })
    await events.completed // every subscribed record is gone
    expect(events.received).toHaveLength(2)
  })

  it('publishes nothing for a rolled-back transaction', async () => {
    const events = subscribe(`subscription { userEvents { ${EVENT} node { name } } }`)
    await waitForSubscribers(gateway, 1)
    await sql.query('BEGIN')
    await sql.query(`INSERT INTO "User" (email, name) VALUES ($1, 'Ghost')`, [email()])
    await sql.query('ROLLBACK')
    await insertUser('After')
    expect((await events.next()).data!.userEvents).toMatchObject({ verb: 'CREATED', node: { name: 'After' } })
    expect(events.received).toHaveLength(1)
    events.stop()
  })

  it('delivers a transaction after its commit, in statement order, and transactions in commit order', async () => {
    const events = subscribe(`subscription { userEvents { ${EVENT} node { name } } }`)
    await waitForSubscribers(gateway, 1)
    const other = new pg.Client({ connectionString: database.url })
    await other.connect()
    try {
      // First begun, last committed.
      await other.query('BEGIN')
      await other.query(`INSERT INTO "User" (email, name) VALUES ($1, 'late 1')`, [email()])
      await sql.query('BEGIN')
      await sql.query(`INSERT INTO "User" (email, name) VALUES ($1, 'early 1')`, [email()])
      await sql.query(`INSERT INTO "User" (email, name) VALUES ($1, 'early 2')`, [email()])
      await sql.query(`UPDATE "User" SET name = 'early 1b' WHERE name = 'early 1'`)
      await sql.query('COMMIT')
      await other.query(`INSERT INTO "User" (email, name) VALUES ($1, 'late 2')`, [email()])
      await other.query('COMMIT')
    } finally {
      await other.end()
    }
    const seen: string[] = []
    for (let i = 0; i < 5; i++) {
      const event = (await events.next()).data!.userEvents
      seen.push(`${event.verb} ${event.node.name}`)
    }
    expect(seen).toEqual(['CREATED early 1', 'CREATED early 2', 'UPDATED early 1b', 'CREATED late 1', 'CREATED late 2'])
    events.stop()
  })

  it('turns a foreign key set, moved and cleared by cascade into ADDED_TO and REMOVED_FROM on the parents', async () => {
    const ada = await insertUser('Ada')
    const bob = await insertUser('Bob')
    const users = subscribe(
      `subscription { userEvents(verbs: [ADDED_TO, REMOVED_FROM, DELETED]) { ${EVENT} node { name } } }`,
    )
    const posts = subscribe(
      `subscription { postEvents { ${EVENT} node { title authorId } previous { title authorId } } }`,
    )
    await waitForSubscribers(gateway, 2)
    const post = String(
      (
        await sql.query<{ id: number }>(`INSERT INTO "Post" (title, "authorId") VALUES ('Notes', $1) RETURNING id`, [
          ada,
        ])
      ).rows[0]!.id,
    )
    await sql.query(`UPDATE "Post" SET "authorId" = $1 WHERE id = $2`, [bob, post])
    await sql.query(`DELETE FROM "User" WHERE id = $1`, [bob]) // cascades to the post

    expect((await posts.next()).data!.postEvents).toMatchObject({
      verb: 'CREATED',
      recordId: post,
      node: { title: 'Notes', authorId: ada },
    })
    expect((await posts.next()).data!.postEvents).toMatchObject({
      verb: 'UPDATED',
      recordId: post,
      node: { authorId: bob },
      previous: { authorId: ada },
      updatedFields: ['authorId'],
    })
    expect((await posts.next()).data!.postEvents).toMatchObject({
      verb: 'DELETED',
      recordId: post,
      previous: { title: 'Notes', authorId: bob },
    })
    const userEvents = []
    for (let i = 0; i < 5; i++) userEvents.push((await users.next()).data!.userEvents)
    expect(userEvents).toMatchObject([
      { verb: 'ADDED_TO', recordId: ada, attribute: 'posts', addedIds: [post], node: { name: 'Ada' } },
      { verb: 'REMOVED_FROM', recordId: ada, attribute: 'posts', removedIds: [post], node: { name: 'Ada' } },
      // Bob's node is read when the event is made: he may be gone by then (he is, soon).
      { verb: 'ADDED_TO', recordId: bob, attribute: 'posts', addedIds: [post] },
      // The cascade: PostgreSQL deletes the author, then (its foreign key's trigger) the post.
      { verb: 'DELETED', recordId: bob },
      { verb: 'REMOVED_FROM', recordId: bob, attribute: 'posts', removedIds: [post], node: null },
    ])
    users.stop()
    posts.stop()
  })

  it('keeps commit order when transactions that read a parent from the database and those that do not arrive together', async () => {
    const ada = await insertUser('Ada')
    const events = subscribe(`subscription { userEvents(verbs: [CREATED, ADDED_TO]) { ${EVENT} node { name } } }`)
    await waitForSubscribers(gateway, 1)
    // Queued on one connection without waiting: the commits reach the gateway back to back, the
    // posts' ADDED_TO needing Ada read while the users after them do not.
    const writes: Promise<unknown>[] = []
    for (let i = 0; i < 20; i++) {
      writes.push(sql.query(`INSERT INTO "Post" (title, "authorId") VALUES ($1, $2)`, [`p${i}`, ada]))
      writes.push(sql.query('INSERT INTO "User" (email, name) VALUES ($1, $2)', [email(), `u${i}`]))
    }
    await Promise.all(writes)
    const seen: string[] = []
    while (seen.length < 40) {
      const event = (await events.next()).data!.userEvents
      // Ada's own CREATED may come after the subscription began.
      if (event.verb !== 'CREATED' || event.node.name !== 'Ada') seen.push(`${event.verb} ${event.node.name}`)
    }
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => [`ADDED_TO Ada`, `CREATED u${i}`]).flat())
    events.stop()
  })

  it('turns a row of an implicit many-to-many table into ADDED_TO and REMOVED_FROM on both sides', async () => {
    const author = await insertUser('Tagger')
    const post = String(
      (
        await sql.query<{ id: number }>(`INSERT INTO "Post" (title, "authorId") VALUES ('Tagged', $1) RETURNING id`, [
          author,
        ])
      ).rows[0]!.id,
    )
    const tag = String(
      (await sql.query<{ id: number }>(`INSERT INTO "Tag" (name) VALUES ('pg') RETURNING id`)).rows[0]!.id,
    )
    const posts = subscribe(
      `subscription ($ids: [ID!]) { postEvents(ids: $ids, verbs: [ADDED_TO, REMOVED_FROM]) { ${EVENT} node { title } } }`,
      {
        ids: [post],
      },
    )
    const tags = subscribe(`subscription { tagEvents(verbs: [ADDED_TO, REMOVED_FROM]) { ${EVENT} node { name } } }`)
    await waitForSubscribers(gateway, 2)
    await sql.query(`INSERT INTO "_PostToTag" ("A", "B") VALUES ($1, $2)`, [post, tag])
    await sql.query(`DELETE FROM "_PostToTag" WHERE "A" = $1 AND "B" = $2`, [post, tag])
    expect((await posts.next()).data!.postEvents).toMatchObject({
      verb: 'ADDED_TO',
      recordId: post,
      attribute: 'tags',
      addedIds: [tag],
      node: { title: 'Tagged' },
    })
    expect((await tags.next()).data!.tagEvents).toMatchObject({
      verb: 'ADDED_TO',
      recordId: tag,
      attribute: 'posts',
      addedIds: [post],
      node: { name: 'pg' },
    })
    expect((await posts.next()).data!.postEvents).toMatchObject({ verb: 'REMOVED_FROM', removedIds: [tag] })
    expect((await tags.next()).data!.tagEvents).toMatchObject({ verb: 'REMOVED_FROM', removedIds: [post] })
    posts.stop()
    tags.stop()
  })

  it('publishes a write made through the gateway once, from the log', async () => {
    const events = subscribe(`subscription { userEvents { ${EVENT} node { name } } }`)
    await waitForSubscribers(gateway, 1)
    const result = await postGraphQL(
      gateway.url,
      'mutation ($data: UserCreateInput!) { createUser(data: $data) { id } }',
      { data: { email: email(), name: 'Through the gateway' } },
    )
    const id = (result.data as { createUser: { id: string } }).createUser.id
    await insertUser('Sentinel')
    const first = (await events.next()).data!.userEvents
    const second = (await events.next()).data!.userEvents
    expect(first).toMatchObject({ verb: 'CREATED', recordId: id, node: { name: 'Through the gateway' } })
    expect(second).toMatchObject({ verb: 'CREATED', node: { name: 'Sentinel' } })
    expect(events.received).toHaveLength(2)
    expect((gateway.prisma as unknown as { $realtimeStats(): { published: number } }).$realtimeStats().published).toBe(
      0,
    )
    events.stop()
  })

  it('resumes after a cursor of a captured event', async () => {
    const events = subscribe(`subscription { userEvents { cursor verb node { name } } }`)
    await waitForSubscribers(gateway, 1)
    await insertUser('One')
    const { cursor } = (await events.next()).data!.userEvents
    events.stop()
    await waitForSubscribers(gateway, 0)
    await insertUser('Two')
    await insertUser('Three')
    const resumed = subscribe(`subscription ($after: String) { userEvents(after: $after) { verb node { name } } }`, {
      after: cursor,
    })
    expect((await resumed.next()).data!.userEvents.node.name).toBe('Two')
    expect((await resumed.next()).data!.userEvents.node.name).toBe('Three')
    resumed.stop()
  })

  it('names the capture check on /ready and reports lag and events on /metrics', async () => {
    const ready = await fetch(gateway.url.replace('/graphql', '/ready'))
    expect(ready.status).toBe(200)
    expect(JSON.stringify(await ready.json())).toContain('capture')
    const text = await (await fetch(gateway.url.replace('/graphql', '/metrics'))).text()
    const lag = /^mizzen_capture_lag_bytes (\d+)$/m.exec(text)
    const events = /^mizzen_capture_events_total (\d+)$/m.exec(text)
    expect(lag, text).not.toBeNull()
    expect(Number(lag![1])).toBeGreaterThanOrEqual(0)
    expect(Number(events![1])).toBe(gateway.capture!.events)
    expect(gateway.capture!.events).toBeGreaterThan(10)
  })
})

describe('change capture refuses to start where it cannot work', () => {
  it('on SQLite, in one line naming MIZZEN_CAPTURE', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mizzen-capture-'))
    try {
      const start = startGatewayProcess('sqlite', {
        DATABASE_URL: `file:${join(dir, 'app.db')}`,
        MIZZEN_CAPTURE: 'database',
      })
      await expect(start).rejects.toThrow(
        /mizzen: invalid configuration: MIZZEN_CAPTURE: capture mode database needs PostgreSQL .*set MIZZEN_CAPTURE=extension/,
      )
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it.skipIf(missing('postgresql'))(
    'on a PostgreSQL whose wal_level is replica (the shared server, untouched)',
    async () => {
      const start = startGatewayProcess('replica', { DATABASE_URL: postgresUrl, MIZZEN_CAPTURE: 'database' })
      await expect(start).rejects.toThrow(
        /MIZZEN_CAPTURE: capture mode database needs wal_level=logical, and this PostgreSQL has wal_level=replica/,
      )
    },
  )

  it('with a role lacking REPLICATION', async () => {
    const database = await server.createDatabase()
    try {
      await server.query('DROP ROLE IF EXISTS mizzen_plain')
      await server.query('CREATE ROLE mizzen_plain LOGIN')
      const url = database.url.replace('postgres@', 'mizzen_plain@')
      const check = checkCapture(loadConfig({ DATABASE_URL: url, MIZZEN_CAPTURE: 'database' }))
      await expect(check).rejects.toThrow(
        /^MIZZEN_CAPTURE: capture mode database needs a role with REPLICATION, and role "mizzen_plain" lacks it: ALTER ROLE/,
      )
    } finally {
      await database.drop()
    }
  })
})

describe('change capture when PostgreSQL invalidates the slot', () => {
  it('ends model subscriptions with RESYNC_REQUIRED, fails /ready, then starts a new slot', async () => {
    const database = await server.createDatabase()
    const name = 'gap_capture'
    const capture = { mode: 'database' as const, name }
    const first = await startGateway(database, { capture })
    const holder = new pg.Client({ connectionString: database.url })
    let second: TestGateway | undefined
    let ws: WsClient | undefined
    try {
      await settled(() => expect(first.capture?.leading).toBe(true))
      await first.close()
      // Nobody reads the slot while the test holds the capture lock.
      await holder.connect()
      await holder.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`mizzen capture ${name}`])
      second = await startGateway(database, { capture })
      ws = connectWs(second.wsUrl)
      await ws.ack
      const events = subscribeWs<any>(ws.client, 'subscription { userEvents { verb } }')
      await waitForSubscribers(second, 1)

      // WAL past max_slot_wal_keep_size, then a checkpoint: PostgreSQL invalidates the slot.
      await server.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '1MB'`)
      await server.query('SELECT pg_reload_conf()')
      await settled(async () => {
        await holder.query(`INSERT INTO "User" (email, name) VALUES ($1, 'lost')`, [`${Date.now()}${Math.random()}@x`])
        await holder.query('SELECT pg_switch_wal()')
        await holder.query('CHECKPOINT')
        const [slot] = await server.query<{ wal_status: string }>(
          `SELECT wal_status FROM pg_replication_slots WHERE slot_name = '${name}'`,
        )
        expect(slot?.wal_status).toBe('lost')
      })

      await events.completed
      expect(events.received.at(-1)?.errors?.[0]).toMatchObject({ extensions: { code: 'RESYNC_REQUIRED' } })
      const ready = await fetch(second.url.replace('/graphql', '/ready'))
      expect(ready.status).toBe(503)
      expect(JSON.stringify(await ready.json())).toMatch(/capture.*invalidated/)

      // The lock released, the gateway replaces the slot and capture goes on.
      await holder.query('SELECT pg_advisory_unlock_all()')
      await settled(() => expect(second!.capture?.leading).toBe(true))
      await settled(async () => expect((await fetch(second!.url.replace('/graphql', '/ready'))).status).toBe(200))
      const after = subscribeWs<any>(ws.client, 'subscription { userEvents { verb node { name } } }')
      await waitForSubscribers(second, 1)
      await holder.query(`INSERT INTO "User" (email, name) VALUES ('again@x', 'again')`)
      expect((await after.next()).data!.userEvents).toEqual({ verb: 'CREATED', node: { name: 'again' } })
      after.stop()
    } finally {
      await server.query('ALTER SYSTEM RESET max_slot_wal_keep_size')
      await server.query('SELECT pg_reload_conf()')
      await ws?.client.dispose()
      await second?.close()
      await holder.end().catch(() => {})
      await database.drop()
    }
  })
})
