/**
 * The fault suite: two gateway processes (as an operator runs them) on a Redis and a PostgreSQL
 * database reached through TCP proxies, real graphql-ws clients in a room on each, and a backend
 * broadcasting numbered messages to gateway A while faults are injected: Redis killed and
 * restarted, Redis partitioned (connections cut, or black-holed) while it keeps its data,
 * PostgreSQL cut off and black-holed, gateway B SIGKILLed. Per client it counts the messages
 * lost, duplicated and reordered (none, on either gateway: the outages here are well within the
 * bus's outbox bound); it checks what mutations answer, that no ghost member is left once the
 * cluster healed, and that nothing but JSON log lines reaches stdout or stderr.
 *
 * Timings are short through the gateways' environment (heartbeat 1.5 s, Redis waits 800 ms,
 * database waits 1 s), so the suite runs in well under a minute.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Client } from 'graphql-ws'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectWs, executeWs, subscribeWs, type GraphQLResponse } from '../helpers/clients.ts'
import { adminPostgresUrl, databaseKinds, type TestDatabase } from '../helpers/databases.ts'
import { settled } from '../helpers/gateway.ts'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts'
import { missing } from '../helpers/services.ts'
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts'
import { startGatewayProcess, type GatewayProcess } from '../helpers/gateway-process.ts'

const postgres = databaseKinds.find((kind) => kind.provider === 'postgresql')!
const timings = {
  // Not shorter: on a loaded 2-core machine Redis answers take a few hundred ms at times.
  MIZZEN_REDIS_TIMEOUT_MS: '800',
  MIZZEN_ROOMS_PEER_TIMEOUT_MS: '1000',
  MIZZEN_ROOMS_HEARTBEAT_TTL_MS: '1500',
  MIZZEN_ROOMS_SWEEP_INTERVAL_MS: '500',
  MIZZEN_DATABASE_TIMEOUT_MS: '1000',
}

let redis: RedisServer
let redisLink: TcpProxy
let pgLink: TcpProxy
let database: TestDatabase
let a: GatewayProcess
let b: GatewayProcess
/** Every graphql-ws client opened, disposed after the suite. */
const clients: Client[] = []

/** POSTs an operation; a gateway that does not answer within 10 s fails the test (nothing may hang). */
async function call<T = Record<string, any>>(
  gateway: GatewayProcess,
  query: string,
  variables?: Record<string, unknown>,
): Promise<GraphQLResponse<T>> {
  const response = await fetch(gateway.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(10_000),
  })
  return (await response.json()) as GraphQLResponse<T>
}

async function ready(gateway: GatewayProcess): Promise<{ status: number; body: { checks: Record<string, string> } }> {
  const response = await fetch(new URL('/ready', gateway.url), { signal: AbortSignal.timeout(10_000) })
  return { status: response.status, body: (await response.json()) as { checks: Record<string, string> } }
}

const codeOf = (result: GraphQLResponse) => result.errors?.[0]?.extensions?.code

const MEMBERS = 'query($room: String!) { roomMembers(room: $room) }'
const BROADCAST =
  'mutation($room: String!, $seq: Int!) { broadcast(rooms: [$room], event: "tick", data: { seq: $seq }) { recipients complete } }'

/** A graphql-ws client in a room, keeping the sequence numbers it receives, in order. */
interface Member {
  readonly id: string
  readonly client: Client
  readonly gateway: GatewayProcess
  readonly seqs: number[]
  close(): Promise<void>
}

async function join(gateway: GatewayProcess, room: string): Promise<Member> {
  const { client, ack } = connectWs(gateway.wsUrl)
  clients.push(client)
  const payload = await ack
  const id = String(payload?.connectionId)
  const subscription = subscribeWs<{ room: { data: { seq: number } } }>(
    client,
    'subscription($room: String!) { room(name: $room) { data } }',
    { room },
  )
  const seqs: number[] = []
  const received = subscription.received
  // Read through `received` as it grows, so the order is the order of arrival.
  const member = {
    id,
    client,
    gateway,
    get seqs() {
      seqs.length = 0
      for (const result of received) if (result.data) seqs.push(result.data.room.data.seq)
      return seqs
    },
    close: async () => void (await client.dispose()),
  }
  return member
}

async function joinMany(gateway: GatewayProcess, room: string, count: number): Promise<Member[]> {
  return Promise.all(Array.from({ length: count }, () => join(gateway, room)))
}

/** Waits until both gateways list exactly `members` in `room` (no ghost, nobody missing). */
async function membersAre(room: string, members: Member[]): Promise<void> {
  const ids = members.map((member) => member.id).sort()
  await settled(async () => {
    for (const gateway of [a, b].filter((g) => !g.exited))
      expect((await call(gateway, MEMBERS, { room })).data?.roomMembers).toEqual(ids)
  })
}

interface Sent {
  readonly seq: number
  readonly complete: boolean | undefined
  readonly recipients: number | undefined
  readonly code: unknown
}

/**
 * Broadcasts numbered messages to `room` through `gateway`, one after the other, while `fault`
 * runs (and a few more after it), and returns what each broadcast answered.
 */
async function traffic(gateway: GatewayProcess, room: string, fault: () => Promise<void>): Promise<Sent[]> {
  const sent: Sent[] = []
  let done = false
  let seq = 0
  const sending = (async () => {
    for (let after = 0; after < 5; after += done ? 1 : 0) {
      const result = await call<{ broadcast: { recipients: number; complete: boolean } }>(gateway, BROADCAST, {
        room,
        seq: ++seq,
      })
      sent.push({
        seq,
        complete: result.data?.broadcast.complete,
        recipients: result.data?.broadcast.recipients,
        code: codeOf(result),
      })
      await sleep(15)
    }
  })()
  await sleep(150)
  await fault()
  done = true
  await sending
  return sent
}

/** Lost (of `expected`), duplicated and reordered messages of one member. */
function tally(seqs: readonly number[], expected: readonly number[]) {
  const got = new Set(seqs)
  let max = -Infinity
  let reordered = 0
  for (const seq of seqs) {
    if (seq < max) reordered++
    max = Math.max(max, seq)
  }
  return { lost: expected.filter((seq) => !got.has(seq)).length, duplicated: seqs.length - got.size, reordered }
}

/** Both gateways healed: /ready answers 200 on each. */
const healed = () =>
  settled(async () => {
    for (const gateway of [a, b].filter((g) => !g.exited)) expect((await ready(gateway)).status).toBe(200)
  })

/**
 * One Redis fault with traffic: 4 members on each gateway; during the fault 2 of each close and
 * one joins A. Checks what each member received and that the cluster heals to the live members.
 */
async function redisFault(room: string, inject: () => Promise<void>, lift: () => Promise<void>) {
  const onA = await joinMany(a, room, 4)
  const onB = await joinMany(b, room, 4)
  await membersAre(room, [...onA, ...onB])
  let newcomer: Member | undefined
  let readyDuring: Awaited<ReturnType<typeof ready>> | undefined
  let unavailableDuring: { errors?: readonly { message: string; extensions?: Record<string, unknown> }[] }[] = []
  const started = Date.now()
  let liftedAt = 0
  const sent = await traffic(a, room, async () => {
    await inject()
    await Promise.all([...onA.slice(0, 2), ...onB.slice(0, 2)].map((member) => member.close()))
    // A client connecting now is acknowledged, and joins at once on its gateway.
    newcomer = await join(a, room)
    readyDuring = await ready(a)
    // Cluster reads need Redis: UNAVAILABLE naming it, over HTTP and WebSocket alike.
    unavailableDuring = [await call(b, MEMBERS, { room }), await executeWs(newcomer.client, MEMBERS, { room })]
    await sleep(800)
    await lift()
    liftedAt = Date.now()
    await healed()
  })
  const healedAfterMs = Date.now() - liftedAt
  // When each gateway's rooms registry logged that it had rewritten its share (after the lift).
  const registryHealedAfterMs = [a, b].map((gateway) =>
    Math.min(
      ...gateway
        .logs(/rooms registry healed/)
        .map((log) => Number(log.time) - liftedAt)
        .filter((ms) => ms >= 0),
    ),
  )
  const live = [...onA.slice(2), ...onB.slice(2), newcomer!]
  await membersAre(room, live)
  const ghostsGoneAfterMs = Date.now() - liftedAt

  // Every broadcast answered: none failed, none hung (call() times out at 10 s).
  expect(sent.filter((s) => s.code !== undefined)).toEqual([])
  const all = sent.map((s) => s.seq)
  const confirmed = sent.filter((s) => s.complete).map((s) => s.seq)
  // While Redis was out of reach, broadcasts said their cluster part was not complete.
  expect(confirmed.length).toBeLessThan(all.length)
  // Local members (on A, where the broadcasts are sent): nothing lost, duplicated or reordered.
  for (const member of onA.slice(2)) expect(tally(member.seqs, all)).toEqual({ lost: 0, duplicated: 0, reordered: 0 })
  // The newcomer has everything from its first message on.
  const first = newcomer!.seqs[0]!
  expect(
    tally(
      newcomer!.seqs,
      all.filter((seq) => seq >= first),
    ),
  ).toEqual({ lost: 0, duplicated: 0, reordered: 0 })
  // Remote members: nothing lost within the outbox's bound (the bus queues what Redis could not
  // take and sends it in order once Redis is back), duplicated or reordered.
  await settled(() => {
    for (const member of onB.slice(2)) expect(member.seqs.at(-1)).toBe(all.at(-1))
  })
  const remote = onB.slice(2).map((member) => tally(member.seqs, all))
  for (const counts of remote) expect(counts).toEqual({ lost: 0, duplicated: 0, reordered: 0 })
  // After healing, a broadcast counts exactly the live members, and is complete.
  const after = await call(b, BROADCAST, { room, seq: 0 })
  expect(after.data?.broadcast).toEqual({ recipients: live.length, complete: true })
  for (const result of unavailableDuring) {
    expect(result.errors?.[0]).toMatchObject({
      message: expect.stringMatching(/^Redis /),
      extensions: { code: 'UNAVAILABLE', service: 'redis', retryable: true },
    })
  }
  // While Redis was out of reach, /ready said so, naming what and why.
  expect(readyDuring?.status).toBe(503)
  expect(
    Object.values(readyDuring!.body.checks)
      .filter((state) => state !== 'ok')
      .every((state) => /^unavailable: \S/.test(state)),
  ).toBe(true)

  await Promise.all(live.map((member) => member.close()))
  await membersAre(room, [])
  const summary = {
    room,
    sent: all.length,
    incomplete: all.length - confirmed.length,
    remote,
    faultMs: liftedAt - started,
    registryHealedAfterMs,
    healedAfterMs,
    ghostsGoneAfterMs,
  }
  console.info(`fault summary ${JSON.stringify(summary)}`)
}

describe.skipIf(missing('redis-server', 'postgresql'))(
  'faults: two gateway processes, Redis and PostgreSQL behind proxies',
  () => {
    beforeAll(async () => {
      redis = await startRedisServer()
      redisLink = await startTcpProxy({ port: redis.port })
      database = await postgres.create()
      const server = new URL(adminPostgresUrl)
      pgLink = await startTcpProxy({ host: server.hostname, port: Number(server.port || 5432) })
      const databaseUrl = new URL(database.url)
      databaseUrl.host = `127.0.0.1:${pgLink.port}`
      const env = {
        NODE_ENV: 'production',
        MIZZEN_ALLOW_OPEN: 'true',
        REDIS_URL: redisLink.url('redis'),
        DATABASE_URL: databaseUrl.toString(),
        MIZZEN_MAX_CONNECTIONS_PER_IP: '10000',
        MIZZEN_MAX_MESSAGES_PER_SECOND: '10000',
        ...timings,
      }
      // One after the other: the first applies the migrations.
      a = await startGatewayProcess('A', env)
      b = await startGatewayProcess('B', env)
    })

    afterAll(async () => {
      await Promise.all(clients.splice(0).map((client) => client.dispose()))
      await Promise.all([a?.kill('SIGTERM'), b?.kill('SIGTERM')])
      await Promise.all([redisLink?.close(), pgLink?.close()])
      await redis?.stop()
      await database?.drop()
    })

    it('should answer a broadcast across gateways when nothing is wrong', async () => {
      const [onA, onB] = [await join(a, 'calm'), await join(b, 'calm')]
      await membersAre('calm', [onA, onB])
      expect((await call(a, BROADCAST, { room: 'calm', seq: 1 })).data?.broadcast).toEqual({
        recipients: 2,
        complete: true,
      })
      await settled(() => expect([onA.seqs, onB.seqs]).toEqual([[1], [1]]))
      await Promise.all([onA.close(), onB.close()])
    })

    it('Redis killed and restarted with its data: local members lose nothing, nothing is lost silently, no ghost stays', async () => {
      await redisFault(
        'killed',
        () => redis.kill(),
        () => redis.restart(),
      )
    })

    it('Redis restarted empty: every gateway writes its members back', async () => {
      await redisFault(
        'emptied',
        () => redis.kill(),
        () => redis.restart({ data: 'empty' }),
      )
    })

    it('Redis partitioned (connections cut) while it keeps its data: the same', async () => {
      await redisFault(
        'cut',
        async () => redisLink.cut(),
        async () => redisLink.restore(),
      )
    })

    it('Redis black-holed (connections hang) while it keeps its data: the same, every wait bounded', async () => {
      await redisFault(
        'black-hole',
        async () => redisLink.blackHole(),
        async () => redisLink.restore(),
      )
    })

    for (const fault of ['cut', 'black-hole'] as const) {
      it(`PostgreSQL ${fault}: model operations answer UNAVAILABLE naming the database, /ready says why, rooms go on`, async () => {
        const create = (email: string) =>
          call(a, 'mutation($email: String!) { createUser(data: { email: $email, name: "x" }) { id } }', { email })
        expect((await create(`before-${fault}@faults.test`)).errors).toBeUndefined()
        const [onA, onB] = [await join(a, `pg-${fault}`), await join(b, `pg-${fault}`)]
        await membersAre(`pg-${fault}`, [onA, onB])
        if (fault === 'cut') pgLink.cut()
        else pgLink.blackHole()
        const failed = await create(`during-${fault}@faults.test`)
        expect(failed.errors?.[0]).toMatchObject({ extensions: { code: 'UNAVAILABLE', service: 'database' } })
        expect(failed.errors?.[0]?.message).toMatch(/^the database \S/)
        expect(codeOf(await call(b, '{ users { id } }'))).toBe('UNAVAILABLE')
        expect((await executeWs(onA.client, '{ users { id } }')).errors?.[0]?.extensions).toMatchObject({
          code: 'UNAVAILABLE',
          service: 'database',
        })
        const during = await ready(a)
        expect(during.status).toBe(503)
        expect(during.body.checks.database).toMatch(/^unavailable: \S/)
        // Rooms do not need the database.
        expect((await call(a, BROADCAST, { room: `pg-${fault}`, seq: 1 })).data?.broadcast).toEqual({
          recipients: 2,
          complete: true,
        })
        await settled(() => expect([onA.seqs, onB.seqs]).toEqual([[1], [1]]))
        pgLink.restore()
        await settled(async () =>
          expect((await create(`after-${fault}-${Date.now()}@faults.test`)).errors).toBeUndefined(),
        )
        await healed()
        await Promise.all([onA.close(), onB.close()])
      })
    }

    it('gateway B SIGKILLed: its connections answer UNAVAILABLE (retryable) until it is known dead, then NOT_FOUND; members and recipients are the live ones', async () => {
      const room = 'crash'
      const onA = await joinMany(a, room, 3)
      const onB = await joinMany(b, room, 3)
      await membersAre(room, [...onA, ...onB])
      const killedAt = Date.now()
      const codes = new Set<unknown>()
      let notFoundAfterMs = 0
      const sent = await traffic(a, room, async () => {
        await b.kill('SIGKILL')
        await settled(async () => {
          const code = codeOf(
            await call(a, 'mutation($id: ID!) { join(connectionId: $id, room: "elsewhere") { memberCount } }', {
              id: onB[0]!.id,
            }),
          )
          codes.add(code)
          expect(code).toBe('NOT_FOUND')
        })
        notFoundAfterMs = Date.now() - killedAt
      })
      expect([...codes].every((code) => code === 'UNAVAILABLE' || code === 'NOT_FOUND')).toBe(true)
      expect(sent.filter((s) => s.code !== undefined)).toEqual([])
      for (const member of onA)
        expect(
          tally(
            member.seqs,
            sent.map((s) => s.seq),
          ),
        ).toEqual({ lost: 0, duplicated: 0, reordered: 0 })
      await membersAre(room, onA)
      expect((await call(a, BROADCAST, { room, seq: 0 })).data?.broadcast).toEqual({ recipients: 3, complete: true })
      console.info(`fault summary ${JSON.stringify({ room, codes: [...codes], notFoundAfterMs })}`)
    })

    it('should have written nothing but JSON log lines, on stdout and stderr', () => {
      expect(a.unstructured()).toEqual([])
      expect(b.unstructured()).toEqual([])
      expect(a.stderr).toEqual([])
    })
  },
)
