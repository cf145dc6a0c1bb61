/**
 * The one test fixture: everything a test file (or a describe block) needs around a gateway,
 * started in beforeAll and disposed in afterAll, in the describe block that calls `useFixture`.
 *
 *   describe.skipIf(missing('redis', 'postgresql'))('two gateways', () => {
 *     const env = useFixture({ database: 'postgresql', bus: 'redis', gateways: 2, backend: true })
 *     it('…', async () => { const ws = env.connect(env.gateways[1]) … })
 *   })
 *
 * - one fresh database (SQLite file or PostgreSQL database), dropped after;
 * - a bus: in memory, or Redis on a fresh channel prefix; a Redis rooms registry on the same
 *   prefix (`<prefix>rooms:`), whose keys are deleted after;
 * - `gateways` gateways on them (memory: each gateway has its own bus; Redis: they form a cluster,
 *   each gateway's bus and registry on one pair of shared connections, as `mizzen serve` opens
 *   them: src/startup.ts);
 * - a backend service (a Prisma client with the realtime extension on the gateways' bus);
 * - clients: graphql-ws and raw sockets. Those opened while a test runs (or in a beforeEach) are
 *   closed after that test; those opened in a beforeAll, at the end of the block.
 *
 * A block that needs PostgreSQL or Redis is declared with `describe.skipIf(missing(…))` or
 * `eachDatabase`, so that it is reported as skipped when the preflight found the service missing.
 */
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, beforeEach } from 'vitest'
import type { Bus } from '../../src/bus/bus.ts'
import { createMemoryBus } from '../../src/bus/memory.ts'
import { createRedisBus } from '../../src/bus/redis.ts'
import { SharedRedis } from '../../src/redis/shared.ts'
import type { DatabaseProvider } from '../../src/db/provider.ts'
import {
  createRedisRoomRegistry,
  type RedisRoomRegistry,
  type RedisRoomRegistryOptions,
} from '../../src/rooms/redis.ts'
import { connectWs, type WsClient } from './clients.ts'
import { databaseKinds, type TestDatabase } from './databases.ts'
import { startGateway, type TestGateway, type TestGatewayOptions } from './gateway.ts'
import {
  attemptUpgrade,
  connectRaw,
  openRaw,
  type RawClient,
  trackServerSockets,
  type UpgradeOutcome,
} from './raw-socket.ts'
import { openRealtime, type RealtimeFixture } from './realtime.ts'
import { describeEach, redisUrl } from './services.ts'

export { describeEach, missing, redisUrl, type Needing } from './services.ts'

export interface FixtureOptions {
  /** The database every gateway and the backend share (one per fixture); false for none (bus or registry tests). @default "sqlite" */
  database?: DatabaseProvider | false
  /** The bus: in memory, or Redis on a fresh channel prefix. @default "memory" */
  bus?: 'memory' | 'redis'
  /** Where room membership lives: in memory, or Redis on the fixture's prefix. @default the bus's kind */
  registry?: 'memory' | 'redis'
  /** Options of the Redis rooms registries (timeouts, sweep interval). */
  registryOptions?: Partial<Omit<RedisRoomRegistryOptions, 'url' | 'keyPrefix'>>
  /** Gateways started in beforeAll. @default 1 (0 with no database) */
  gateways?: number
  /** Options of those gateways (the fixture supplies database, bus and registry). */
  gateway?: TestGatewayOptions
  /** Open a backend service's Prisma client with the realtime extension, on the first gateway's bus (memory) or the cluster's (Redis). @default false */
  backend?: boolean
}

export interface Fixture {
  readonly database: TestDatabase
  /** The first gateway. */
  readonly gateway: TestGateway
  readonly gateways: readonly TestGateway[]
  readonly backend: RealtimeFixture
  /** This fixture's Redis prefix: bus channels under it, registry keys and channels under `<prefix>rooms:`. */
  readonly prefix: string
  /**
   * What the Redis gateways' shared connections, buses and registries reported through their
   * `onError` since the last call (what `mizzen serve` logs as errors), with its context.
   */
  takeRedisErrors(): { readonly error: unknown; readonly context: string }[]
  /** The server side of every upgrade the first gateway received (see trackServerSockets). */
  readonly servers: ReturnType<typeof trackServerSockets>
  /** A plain Redis client on the run's Redis, to look at or plant keys (quit after the block). */
  readonly redis: Redis
  /** Another plain Redis client, connected (ready for SUBSCRIBE), closed with the other cleanups. */
  connectRedis(): Promise<Redis>
  /** Starts one more gateway on the fixture's database, bus kind and registry kind, closed after the block. */
  startGateway(options?: TestGatewayOptions): Promise<TestGateway>
  /** One more bus of the fixture's kind (Redis: on its prefix, so it hears the gateways), closed after the block. */
  createBus(): Promise<Bus>
  /** One more Redis rooms registry on the fixture's prefix, closed after the block. */
  createRegistry(options?: FixtureOptions['registryOptions']): Promise<RedisRoomRegistry>
  /** A graphql-ws client (connecting now, never retrying) to `gateway`, or the first gateway. */
  connect(connectionParams?: Record<string, unknown>, gateway?: TestGateway): WsClient
  /** A raw graphql-transport-ws socket, acknowledged, from `localAddress` (any 127.x.y.z reaches a loopback gateway). */
  connectRaw(options?: {
    payload?: Record<string, unknown>
    localAddress?: string
    headers?: Record<string, string>
    gateway?: TestGateway
  }): Promise<RawClient>
  /** A raw socket, open but not initialised. */
  openRaw(gateway?: TestGateway): Promise<RawClient>
  /** An upgrade attempt that may be refused; a socket it opens is closed like the others. */
  attempt(options?: {
    path?: string
    localAddress?: string
    origin?: string
    headers?: Record<string, string>
    protocol?: string | string[]
    gateway?: TestGateway
  }): Promise<UpgradeOutcome>
  /** Runs `dispose` with the other cleanups: after the test if called during one, else after the block. */
  defer(dispose: () => unknown): void
}

/** A value set in beforeAll; reading it earlier is a mistake in the test, said plainly. */
function late<T>(name: string, get: () => T | undefined): T {
  const value = get()
  if (value === undefined)
    throw new Error(
      `fixture.${name} is not there: read it inside a test or hook of the block that called useFixture (with backend: true for backend)`,
    )
  return value
}

export function useFixture(options: FixtureOptions = {}): Fixture {
  const busKind = options.bus ?? 'memory'
  const registryKind = options.registry ?? busKind
  const prefix = `mizzen-test-${randomUUID()}:`
  const kind =
    options.database === false
      ? undefined
      : databaseKinds.find((candidate) => candidate.provider === (options.database ?? 'sqlite'))!
  let database: TestDatabase | undefined
  let backend: RealtimeFixture | undefined
  let servers: ReturnType<typeof trackServerSockets> | undefined
  let inspector: Redis | undefined
  const gateways: TestGateway[] = []
  /** Cleanups of the block, run last first. */
  const blockCleanups: (() => unknown)[] = []
  /** Cleanups of the running test; undefined between tests. */
  let testCleanups: (() => unknown)[] | undefined

  const defer = (dispose: () => unknown) => (testCleanups ?? blockCleanups).push(dispose)
  const runAll = async (cleanups: (() => unknown)[]) => {
    const errors: unknown[] = []
    for (const cleanup of cleanups.splice(0).reverse())
      await Promise.resolve()
        .then(cleanup)
        .catch((error: unknown) => errors.push(error))
    if (errors.length) throw errors.length === 1 ? errors[0] : new AggregateError(errors, 'fixture cleanup failed')
  }

  const createBus = async (): Promise<Bus> => {
    // Closed by the gateway or backend that gets it; closing twice is harmless.
    const bus = busKind === 'redis' ? await createRedisBus({ url: redisUrl, prefix }) : createMemoryBus()
    blockCleanups.push(() => bus.close())
    return bus
  }
  const createRegistry = async (registryOptions: FixtureOptions['registryOptions'] = {}) => {
    const registry = await createRedisRoomRegistry({
      url: redisUrl,
      keyPrefix: `${prefix}rooms:`,
      ...options.registryOptions,
      ...registryOptions,
    })
    blockCleanups.push(() => registry.close())
    return registry
  }
  const redisErrors: { error: unknown; context: string }[] = []
  const onError = (error: unknown, context: string) => redisErrors.push({ error, context })
  /** A bus and a registry on one pair of connections, as src/startup.ts opens them for a gateway. */
  const createShared = async () => {
    const shared = await SharedRedis.open({ url: redisUrl, epochKey: `${prefix}epoch`, onError })
    const bus = await createRedisBus({ shared, prefix, onError })
    const registry = await createRedisRoomRegistry({
      shared,
      keyPrefix: `${prefix}rooms:`,
      onError,
      ...options.registryOptions,
    })
    // Run last first: each gives its share back, the last one closes the connections (closing
    // twice is harmless).
    blockCleanups.push(
      () => shared.close(),
      () => registry.close(),
      () => bus.close(),
    )
    return { bus, registry }
  }
  const start = async (gatewayOptions: TestGatewayOptions = {}) => {
    if (!database) throw new Error('useFixture({ database: false }) has no database to start a gateway on')
    // A gateway on Redis whose bus and registry the fixture makes gets both on shared connections.
    const shares =
      busKind === 'redis' && registryKind === 'redis' && !gatewayOptions.bus && !gatewayOptions.rooms?.registry
    const { bus, registry } = shares
      ? await createShared()
      : {
          registry:
            registryKind === 'redis' && !gatewayOptions.rooms?.registry
              ? await createRegistry()
              : gatewayOptions.rooms?.registry,
          bus: gatewayOptions.bus ?? (await createBus()),
        }
    const gateway = await startGateway(database, {
      ...gatewayOptions,
      bus,
      rooms: { ...gatewayOptions.rooms, registry },
    })
    blockCleanups.push(() => gateway.close())
    return gateway
  }
  const redis = () => {
    if (!inspector) {
      inspector = new Redis(redisUrl)
      inspector.on('error', () => {}) // a failing command rejects; this only silences reconnect noise
    }
    return inspector
  }
  const track = <T extends { close(): Promise<void> }>(client: T): T => {
    defer(() => client.close())
    return client
  }

  beforeAll(async () => {
    if (kind) {
      database = await kind.create()
      blockCleanups.push(() => database!.drop())
    }
    for (let i = 0; i < (options.gateways ?? (kind ? 1 : 0)); i++) gateways.push(await start(options.gateway))
    if (gateways[0]) servers = trackServerSockets(gateways[0].server)
    if (options.backend) {
      if (!database) throw new Error('useFixture({ database: false }) has no database for a backend')
      const realtime = await openRealtime(
        database,
        busKind === 'redis' ? await createBus() : (gateways[0]?.bus ?? (await createBus())),
      )
      backend = realtime
      blockCleanups.push(() => realtime.close())
    }
  })
  beforeEach(() => {
    testCleanups = []
  })
  afterEach(async () => {
    const cleanups = testCleanups ?? []
    testCleanups = undefined
    await runAll(cleanups)
  })
  afterAll(async () => {
    await runAll(blockCleanups)
    if (inspector) {
      const keys = await inspector.keys(`${prefix}*`)
      if (keys.length) await inspector.del(...keys)
      await inspector.quit()
    }
  })

  const first = (gateway?: TestGateway) => gateway ?? late('gateway', () => gateways[0])
  return {
    get database() {
      return late('database', () => database)
    },
    get gateway() {
      return late('gateway', () => gateways[0])
    },
    gateways,
    get backend() {
      return late('backend', () => backend)
    },
    prefix,
    takeRedisErrors: () => redisErrors.splice(0),
    get servers() {
      return late('servers', () => servers)
    },
    get redis() {
      return redis()
    },
    async connectRedis() {
      const client = new Redis(redisUrl, { lazyConnect: true })
      client.on('error', () => {})
      defer(() => client.quit())
      await client.connect()
      return client
    },
    startGateway: start,
    createBus,
    createRegistry,
    connect(connectionParams, gateway) {
      const ws = connectWs(first(gateway).wsUrl, connectionParams)
      defer(() => ws.client.dispose())
      return ws
    },
    async connectRaw({ payload, localAddress, headers, gateway } = {}) {
      return track(await connectRaw(first(gateway).wsUrl, payload, { localAddress, headers }))
    },
    async openRaw(gateway) {
      return track(await openRaw(first(gateway).wsUrl))
    },
    async attempt({ path, localAddress, origin, headers, protocol = 'graphql-transport-ws', gateway } = {}) {
      const url = first(gateway).wsUrl.replace('/graphql', path ?? '/graphql')
      const outcome = await attemptUpgrade(url, protocol, { localAddress, origin, headers })
      if (outcome.kind === 'open') track(outcome.client)
      return outcome
    },
    defer,
  }
}

/** `describe.each` over both databases (SQLite, PostgreSQL); `$provider` in `name` names it. */
export function eachDatabase(name: string, body: (provider: DatabaseProvider) => void): void {
  const databases = databaseKinds.map(({ provider }) => ({
    provider,
    needs: provider === 'postgresql' ? (['postgresql'] as const) : [],
  }))
  describeEach(databases, name, ({ provider }) => body(provider))
}
