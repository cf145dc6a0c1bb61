/**
 * What `npm start` opens from the environment (src/startup.ts): services that do not answer stop
 * it with an error naming the setting, the address and the reason (never a password);
 * MIZZEN_REDIS_PREFIX keeps deployments on one Redis apart (bus and rooms registry alike); Redis
 * errors count in the metrics.
 */
import { describe, expect, it } from 'vitest'
import { Redis } from 'ioredis'
import { pino } from 'pino'
import { loadConfig } from '../src/config.ts'
import { checkDatabase, openServices, StartupError } from '../src/startup.ts'
import { postGraphQL, subscribeWs } from './helpers/clients.ts'
import { missing, redisUrl, useFixture } from './helpers/fixture.ts'
import { postgresUrl } from './helpers/services.ts'
import { settled, type TestGateway } from './helpers/gateway.ts'
import { metric } from './helpers/metrics.ts'
import { startRedisServer } from './helpers/redis-server.ts'
import { BROADCAST, nextMessage, ROOM } from './helpers/rooms.ts'

const silent = pino({ level: 'silent' })

/** The StartupError `promise` rejects with. */
async function startupError(promise: Promise<unknown>): Promise<StartupError> {
  const error = await promise.then(
    () => undefined,
    (caught: unknown) => caught,
  )
  expect(error).toBeInstanceOf(StartupError)
  return error as StartupError
}

describe('services that do not answer', () => {
  it('should name REDIS_URL, the address and the reason, and never the password', async () => {
    const config = loadConfig({
      REDIS_URL: 'redis://:hunter2@127.0.0.1:1/2',
      DATABASE_URL: 'file:./data/never-opened.db',
    })
    const error = await startupError(openServices(config, silent))
    expect(error.setting).toBe('REDIS_URL')
    expect(error.message).toBe('REDIS_URL: cannot reach Redis at 127.0.0.1:1/2 (connect ECONNREFUSED 127.0.0.1:1)')
  })

  it('should name DATABASE_URL for a PostgreSQL server that does not answer', async () => {
    const error = await startupError(checkDatabase('postgres://app:s3cret@127.0.0.1:1/app'))
    expect(error.message).toBe(
      'DATABASE_URL: cannot use PostgreSQL at 127.0.0.1:1/app (connect ECONNREFUSED 127.0.0.1:1)',
    )
  })

  it('should name DATABASE_URL for an SQLite file that cannot be created', async () => {
    const error = await startupError(checkDatabase('file:/etc/passwd/mizzen.db'))
    expect(error.message).toMatch(
      /^DATABASE_URL: cannot create or write the SQLite file \/etc\/passwd\/mizzen\.db \(EEXIST|ENOTDIR/,
    )
  })

  it.skipIf(missing('postgresql'))('should say what PostgreSQL answered when it refuses', async () => {
    const url = new URL(postgresUrl)
    url.pathname = '/mizzen_no_such_database'
    const error = await startupError(checkDatabase(url.toString()))
    expect(error.message).toMatch(
      /^DATABASE_URL: cannot use PostgreSQL at .*\/mizzen_no_such_database \(.*database "mizzen_no_such_database" does not exist\)$/,
    )
  })
})

describe.skipIf(missing('redis'))('MIZZEN_REDIS_PREFIX', () => {
  const env = useFixture({ gateways: 0 })

  /** A gateway opened as `npm start` opens one, with `prefix`. */
  async function gatewayWithPrefix(prefix: string): Promise<TestGateway> {
    const config = loadConfig({ REDIS_URL: redisUrl, MIZZEN_REDIS_PREFIX: prefix, DATABASE_URL: env.database.url })
    return env.startGateway(await openServices(config, silent))
  }

  it('should keep the bus and the rooms of deployments with different prefixes apart, and join those with the same', async () => {
    const [a1, a2, b] = [
      await gatewayWithPrefix(`${env.prefix}a:`),
      await gatewayWithPrefix(`${env.prefix}a:`),
      await gatewayWithPrefix(`${env.prefix}b:`),
    ]
    const onA2 = env.connect(undefined, a2)
    const onB = env.connect(undefined, b)
    await Promise.all([onA2.ack, onB.ack])
    const inA = subscribeWs(onA2.client, ROOM, { name: 'shared-name' })
    const inB = subscribeWs(onB.client, ROOM, { name: 'shared-name' })
    const members = (gateway: TestGateway) =>
      postGraphQL(gateway.url, '{ roomMembers(room: "shared-name") }').then((r) => r.data?.roomMembers as string[])
    await settled(async () => expect(await members(a1)).toHaveLength(1))
    await settled(async () => expect(await members(b)).toHaveLength(1))
    expect(await members(a1)).not.toEqual(await members(b))

    const sent = await postGraphQL(a1.url, BROADCAST, { rooms: ['shared-name'], event: 'for-a', data: null })
    expect(sent.data?.broadcast.recipients).toBe(1)
    expect((await nextMessage(inA)).event).toBe('for-a')
    // Delivery is in order: B's own later message comes first, so A's never reached B.
    await postGraphQL(b.url, BROADCAST, { rooms: ['shared-name'], event: 'for-b', data: null })
    expect((await nextMessage(inB)).event).toBe('for-b')

    // Every key each deployment wrote is under its own prefix: the registry's under `<prefix>rooms:`.
    const keysA = await env.redis.keys(`${env.prefix}a:*`)
    const keysB = await env.redis.keys(`${env.prefix}b:*`)
    expect(keysA).toContain(`${env.prefix}a:rooms:room:shared-name`)
    expect(keysB).toContain(`${env.prefix}b:rooms:room:shared-name`)
    expect(keysA.some((key) => key.startsWith(`${env.prefix}a:{`) && key.endsWith('}log'))).toBe(true)
    expect(keysB.some((key) => key.startsWith(`${env.prefix}b:{`) && key.endsWith('}log'))).toBe(true)
  })
})

describe.skipIf(missing('redis-server'))('Redis errors in the metrics', () => {
  const env = useFixture({ gateways: 0 })

  it('should count the bus’s Redis errors in mizzen_bus_errors_total', async () => {
    const redis = await startRedisServer()
    env.defer(() => redis.stop())
    const config = loadConfig({ REDIS_URL: redis.url, DATABASE_URL: env.database.url })
    const gateway = await env.startGateway(await openServices(config, silent))
    expect(await metric(gateway.url, 'mizzen_bus_errors_total')).toBe(0)
    await redis.kill()
    await settled(async () => expect(await metric(gateway.url, 'mizzen_bus_errors_total')).toBeGreaterThan(0))
  })
})

describe.skipIf(missing('redis-server'))('the Redis connections of a gateway', () => {
  const env = useFixture({ gateways: 0 })

  it('should open one command and one subscriber connection, shared by the bus and the rooms registry, through a restart of Redis', async () => {
    const redis = await startRedisServer()
    env.defer(() => redis.stop())
    const config = loadConfig({ REDIS_URL: redis.url, DATABASE_URL: env.database.url })
    const gateway = await env.startGateway(await openServices(config, silent))
    const other = await env.startGateway(await openServices(config, silent))
    const { client, ack } = env.connect(undefined, other)
    await ack
    const member = subscribeWs(client, ROOM, { name: 'shared-connections' })
    const members = () =>
      postGraphQL(gateway.url, '{ roomMembers(room: "shared-connections") }').then(
        (r) => r.data?.roomMembers as string[] | undefined,
      )
    await settled(async () => expect(await members()).toHaveLength(1))
    /** The gateways' connections to this Redis (the one asking is left out). */
    const gatewayConnections = async () => {
      const inspector = new Redis(redis.url)
      try {
        const list = String(await inspector.call('CLIENT', 'LIST'))
        return list.trim().split('\n').length - 1
      } finally {
        inspector.disconnect()
      }
    }
    expect(await gatewayConnections()).toBe(4)
    // Both users follow the one signal: after a restart with the data kept, the registry answers
    // again and the bus delivers again, still on two connections per gateway.
    await redis.restart({ data: 'kept' })
    const broadcast =
      'mutation { broadcast(rooms: ["shared-connections"], event: "back", data: null) { recipients complete } }'
    await settled(async () =>
      expect((await postGraphQL(gateway.url, broadcast)).data?.broadcast).toEqual({ recipients: 1, complete: true }),
    )
    await settled(async () => expect((await nextMessage(member)).event).toBe('back'))
    expect(await members()).toHaveLength(1)
    // A membership operation on the other gateway's connection travels over its command channel,
    // subscribed again on the shared subscriber connection.
    const [connectionId] = (await members())!
    const join = `mutation { join(connectionId: "${connectionId}", room: "joined-after") { connectionIds memberCount } }`
    expect((await postGraphQL(gateway.url, join)).data?.join).toEqual({ connectionIds: [connectionId], memberCount: 1 })
    expect(await gatewayConnections()).toBe(4)
  })
})
