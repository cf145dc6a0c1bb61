/**
 * From a validated configuration to what `createGateway` needs, for `mizzen serve` (and any
 * command that serves from the environment): the gateway settings the variables map to, a check
 * of the database, and the services they name (Redis bus and rooms registry, metrics), opened
 * after checking that each answers (`checkServices` checks them all first). A service that does not answer stops startup with a
 * `StartupError` naming the setting, the address and the reason (never a password), which the
 * command prints in one line.
 */
import type { Bus } from './bus/bus.ts'
import { createMemoryBus } from './bus/memory.ts'
import { createRedisBus } from './bus/redis.ts'
import type { Config } from './config.ts'
import { CAPTURE_SETTING, CaptureRefusedError, checkCaptureSupport } from './capture/setup.ts'
import { databaseProvider } from './db/provider.ts'
import { ConfigError, StartupError } from './errors.ts'
import type { GatewayOptions } from './gateway.ts'
import type { Logger } from './logger.ts'
import { createMetrics, type Metrics } from './metrics.ts'
import { createRedisRoomRegistry } from './rooms/redis.ts'
import { SharedRedis } from './redis/shared.ts'
import type { RoomsOptions } from './rooms/rooms.ts'
import { addressOf, checkPostgres, checkRedis, checkSqliteFile, reasonOf } from './service-checks.ts'

export { StartupError }

/** The gateway options the environment sets (the rest: policies, data model, logger, services, are the caller's). */
export function gatewaySettings(config: Config) {
  return {
    port: config.port,
    host: config.host,
    nodeEnv: config.nodeEnv,
    auth: config.auth,
    allowOpen: config.allowOpen,
    allowedOrigins: config.allowedOrigins,
    introspection: config.introspection,
    limits: config.limits,
    trustProxy: config.trustProxy,
    capture:
      config.capture === 'database'
        ? {
            mode: 'database' as const,
            url: config.databaseUrl,
            name: config.captureName,
            replicaIdentityFull: config.captureReplicaIdentityFull,
          }
        : ('extension' as const),
    liveThrottleMs: config.liveThrottleMs,
  } satisfies Partial<GatewayOptions>
}

/** Checks the database `DATABASE_URL` names: PostgreSQL answers, or the SQLite file's folder is writable. */
export async function checkDatabase(url: string): Promise<void> {
  if (databaseProvider(url) === 'sqlite') {
    const reason = checkSqliteFile(url)
    if (reason)
      throw new StartupError(
        'DATABASE_URL',
        `cannot create or write the SQLite file ${url.slice('file:'.length)} (${reason})`,
      )
    return
  }
  const reason = await checkPostgres(url)
  if (reason) throw new StartupError('DATABASE_URL', `cannot use PostgreSQL at ${addressOf(url)} (${reason})`)
}

/** Checks Redis at `url` (`REDIS_URL`). */
export async function checkRedisUrl(url: string): Promise<void> {
  const reason = await checkRedis(url)
  if (reason) throw new StartupError('REDIS_URL', `cannot reach Redis at ${addressOf(url)} (${reason})`)
}

/**
 * With `MIZZEN_CAPTURE=database`: the database is PostgreSQL with `wal_level=logical` and the
 * role may replicate (docs/capture.md), or a ConfigError naming MIZZEN_CAPTURE says what to change.
 */
export async function checkCapture(config: Config): Promise<void> {
  if (config.capture !== 'database') return
  if (databaseProvider(config.databaseUrl) === 'sqlite')
    throw new ConfigError(
      CAPTURE_SETTING,
      `capture mode database needs PostgreSQL (wal_level=logical), and DATABASE_URL names SQLite: set ${CAPTURE_SETTING}=extension, or use PostgreSQL`,
    )
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: config.databaseUrl })
  client.on('error', () => {})
  try {
    await client.connect()
    await checkCaptureSupport(client)
  } catch (error) {
    if (error instanceof CaptureRefusedError) throw new ConfigError(CAPTURE_SETTING, error.message)
    throw new StartupError(
      'DATABASE_URL',
      `cannot use PostgreSQL at ${addressOf(config.databaseUrl)} (${reasonOf(error)})`,
    )
  } finally {
    await client.end().catch(() => {})
  }
}

/** Checks the Redis Cluster `MIZZEN_REDIS_CLUSTER` names: at least one seed node answers. */
export async function checkRedisCluster(seeds: readonly string[]): Promise<void> {
  const reasons: string[] = []
  for (const seed of seeds) {
    const reason = await checkRedis(`redis://${seed}`)
    if (!reason) return
    reasons.push(`${seed}: ${reason}`)
  }
  throw new StartupError('MIZZEN_REDIS_CLUSTER', `cannot reach any seed node (${reasons.join('; ')})`)
}

/** Checks every service the configuration names (the database, Redis) before anything is done with them. */
export async function checkServices(config: Config): Promise<void> {
  await checkDatabase(config.databaseUrl)
  await checkCapture(config)
  if (config.redisUrl) await checkRedisUrl(config.redisUrl)
  if (config.redisCluster) await checkRedisCluster(config.redisCluster)
}

/** Gateway options, ready to spread into `createGateway`. */
export interface Services {
  /** The Redis bus (`REDIS_URL`, or `MIZZEN_REDIS_CLUSTER`), or an in-memory one keeping the configured history. */
  readonly bus: Bus
  /** The Redis rooms registry (`REDIS_URL` or `MIZZEN_REDIS_CLUSTER`; undefined: the gateway's in-memory one) and the cluster's timeout. */
  readonly rooms: RoomsOptions
  /** What /metrics serves (`MIZZEN_METRICS`); Redis errors count in it. */
  readonly metrics: Metrics
}

/**
 * Checks the Redis the configuration names, then opens the Redis bus and rooms registry (under
 * `MIZZEN_REDIS_PREFIX`) and the metrics. Throws StartupError when Redis does not answer. (Check
 * the database first, with `checkDatabase`, before migrating or opening it.)
 */
export async function openServices(config: Config, logger: Logger): Promise<Services> {
  const metrics = createMetrics({ enabled: config.metrics })
  const rooms = { clusterTimeoutMs: config.cluster.redisTimeoutMs, presence: config.presence }
  if (!config.redisUrl && !config.redisCluster) {
    const bus = createMemoryBus({
      history: config.history,
      onListenerError: (err, topic) => {
        metrics.busError()
        logger.error({ err, topic }, 'bus listener failed')
      },
    })
    return { bus, rooms, metrics }
  }
  const url = config.redisUrl
  const cluster = config.redisCluster
  if (url) await checkRedisUrl(url)
  if (cluster) await checkRedisCluster(cluster)
  // The bus and the registry on the one Redis, or both on the cluster (sharded pub/sub; each
  // topic, and each gateway's share of the registry, in a slot of its own).
  const target = cluster ? { cluster } : { url: url! }
  let shared: SharedRedis | undefined
  let bus
  try {
    // One command and one subscriber connection for the gateway, shared by the bus and the
    // registry: one heartbeat, one lost/back signal each follows (docs/architecture.md §14).
    shared = await SharedRedis.open({
      ...target,
      epochKey: `${config.redisPrefix}epoch`,
      onError: (err, context) => {
        metrics.busError()
        logger.error({ err, context }, 'redis error')
      },
    })
    bus = await createRedisBus({
      shared,
      prefix: config.redisPrefix,
      history: config.history,
      outbox: config.outbox,
      replayWindowMs: config.busReplayWindowMs,
      onError: (err, context) => {
        metrics.busError()
        logger.error({ err, context }, 'redis bus error')
      },
    })
    // Room membership shared by every gateway on this Redis; the gateway closes it on shutdown.
    const registry = await createRedisRoomRegistry({
      shared,
      keyPrefix: `${config.redisPrefix}rooms:`,
      ...config.cluster,
      onError: (err, context) => logger.error({ err, context }, 'redis rooms registry error'),
      onHealed: ({ brokenForMs }) =>
        logger.info({ brokenForMs }, 'redis rooms registry healed: Redis rewritten from this instance’s connections'),
    })
    return { bus, rooms: { ...rooms, registry }, metrics }
  } catch (error) {
    await bus?.close()
    await shared?.close()
    if (cluster) throw new StartupError('MIZZEN_REDIS_CLUSTER', `cannot use the Redis Cluster (${reasonOf(error)})`)
    throw new StartupError('REDIS_URL', `cannot reach Redis at ${addressOf(url!)} (${reasonOf(error)})`)
  }
}
