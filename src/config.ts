/**
 * The gateway's configuration from the environment, validated at startup. A bad value stops
 * startup with a `ConfigError` that names the setting.
 */
import { captureName } from './capture/setup.ts'
import { createPublicKey } from 'node:crypto'
import { z } from 'zod'
import type { AuthOptions } from './auth/authenticator.ts'
import { databaseProvider } from './db/provider.ts'
import { ConfigError } from './errors.ts'
import type { HistoryOptions } from './bus/history-options.ts'
import type { OutboxOptions } from './bus/outbox.ts'
import { parseTrustProxy, type TrustProxy } from './http/client-address.ts'
import type { Limits } from './transport/limits.ts'
import type { PresenceOptions } from './presence/presence.ts'

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export interface Config {
  /** TCP port of HTTP and WebSocket. `PORT`. @default 4000 */
  readonly port: number
  /** Interface to listen on. `HOST`. @default "0.0.0.0" (all IPv4 interfaces) */
  readonly host: string
  /** `file:<path>` for SQLite or `postgres://…`. `DATABASE_URL`. @default "file:./data/mizzen.db" */
  readonly databaseUrl: string
  /** Redis for running several gateways as one; unset means the in-memory bus. `REDIS_URL`. */
  readonly redisUrl: string | undefined
  /**
   * Seed nodes (`host:port`) of a Redis Cluster that carries the bus (events, room messages,
   * histories, over sharded pub/sub) and the rooms registry (each gateway's share in its own
   * slot), instead of one Redis: set this or `REDIS_URL`, not both. `MIZZEN_REDIS_CLUSTER`.
   */
  readonly redisCluster: readonly string[] | undefined
  /** pino level. `LOG_LEVEL`. @default "info" */
  readonly logLevel: (typeof logLevels)[number]
  /** `NODE_ENV`: production masks unexpected errors and disables GraphiQL. @default "development" */
  readonly nodeEnv: 'development' | 'production' | 'test'
  /**
   * Credentials: `MIZZEN_API_KEYS` (comma-separated), one of `MIZZEN_JWT_SECRET` (HS256),
   * `MIZZEN_JWT_PUBLIC_KEY` (PEM) or `MIZZEN_JWKS_URL`, and optionally `MIZZEN_JWT_ISSUER`,
   * `MIZZEN_JWT_AUDIENCE`. None set: the gateway is open.
   */
  readonly auth: AuthOptions
  /** `MIZZEN_ALLOW_OPEN=true` lets production run with no credentials. @default false */
  readonly allowOpen: boolean
  /** `MIZZEN_ALLOWED_ORIGINS` (comma-separated) for WebSocket upgrades and CORS. @default any */
  readonly allowedOrigins: string[]
  /** `MIZZEN_INTROSPECTION`. @default true unless production */
  readonly introspection: boolean | undefined
  /** `MIZZEN_MAX_*` limits (see `Limits`). Unset ones keep their defaults. */
  readonly limits: Partial<Limits>
  /**
   * History each model and room keeps for `after:` cursors: `MIZZEN_HISTORY_MAX_EVENTS` (entries
   * per history, default 1000) and `MIZZEN_HISTORY_MAX_AGE_S` (seconds, default 300).
   */
  readonly history: HistoryOptions
  /**
   * The Redis bus's outbox, what waits while Redis is unreachable: `MIZZEN_BUS_OUTBOX_MAX_EVENTS`
   * (default 10000) and `MIZZEN_BUS_OUTBOX_MAX_BYTES` (default 67108864).
   */
  readonly outbox: OutboxOptions
  /**
   * How long a gateway's break from a Redis that comes back without its data may last without
   * losing messages (see `RedisBusOptions.replayWindowMs`), in ms. `MIZZEN_BUS_REPLAY_WINDOW_MS`.
   * Unset: the bus's default (30000).
   */
  readonly busReplayWindowMs: number | undefined
  /** Timings of the Redis rooms registry and of Redis waits (see `RedisRoomRegistryOptions`); unset ones keep their defaults. */
  readonly cluster: ClusterTimings
  /**
   * How long one database call may take, in ms (connecting, and each query), before it fails
   * with UNAVAILABLE. `MIZZEN_DATABASE_TIMEOUT_MS`. Unset: the database layer's default.
   */
  readonly databaseTimeoutMs: number | undefined
  /**
   * Prefix of every Redis key and channel (bus, history, rooms registry under `<prefix>rooms:`),
   * so that deployments can share one Redis. `MIZZEN_REDIS_PREFIX`. @default "mizzen:"
   */
  readonly redisPrefix: string
  /**
   * Which hops in front of the gateway are proxies, so that the client address (per-IP limits,
   * logs) comes from `X-Forwarded-For`: `false`, `true` (all), a hop count, or addresses and CIDR
   * ranges (see http/client-address.ts). `MIZZEN_TRUST_PROXY`. @default false
   */
  readonly trustProxy: TrustProxy
  /** Serve `GET /metrics` (Prometheus). `MIZZEN_METRICS`. @default true */
  readonly metrics: boolean
  /**
   * Where model events come from: the realtime extension, or PostgreSQL's log (docs/capture.md).
   * `MIZZEN_CAPTURE`. @default "extension"
   */
  readonly capture: 'extension' | 'database'
  /**
   * The publication and replication slot change capture uses. `MIZZEN_CAPTURE_NAME`.
   * @default derived from `MIZZEN_REDIS_PREFIX` (`mizzen_capture` for `mizzen:`)
   */
  readonly captureName: string
  /** Set REPLICA IDENTITY FULL on the captured tables. `MIZZEN_CAPTURE_REPLICA_IDENTITY_FULL`. @default true */
  readonly captureReplicaIdentityFull: boolean
  /**
   * Least interval between two executions (so two results) of one group of live queries, in ms:
   * a burst of writes within it costs one execution, and the last state is always sent.
   * `MIZZEN_LIVE_THROTTLE_MS`. Unset: 100.
   */
  readonly liveThrottleMs: number | undefined
  /**
   * Presence (see `PresenceOptions`): `MIZZEN_PRESENCE_LEAVE_GRACE_MS` (default 5000),
   * `MIZZEN_PRESENCE_BATCH_MS` (default 50), `MIZZEN_PRESENCE_META_MAX_BYTES` (default 1024).
   */
  readonly presence: PresenceOptions
}

/** The cluster's timing settings, in ms, each from its variable. */
export interface ClusterTimings {
  /** `MIZZEN_REDIS_TIMEOUT_MS`: longest wait for one Redis call (registry, and a broadcast's cluster part). @default 2000 */
  readonly redisTimeoutMs?: number
  /**
   * `MIZZEN_ROOMS_PEER_TIMEOUT_MS` (formerly `MIZZEN_ROOMS_COMMAND_TIMEOUT_MS`, still read): how
   * long the instance holding a connection gets to apply a membership operation sent to it. @default 5000
   */
  readonly peerTimeoutMs?: number
  /** `MIZZEN_ROOMS_HEARTBEAT_TTL_MS`: how long an instance counts as alive after its last heartbeat. @default 10000 */
  readonly heartbeatTtlMs?: number
  /** `MIZZEN_ROOMS_SWEEP_INTERVAL_MS`: how often dead instances' connections are purged from Redis. @default 5000 */
  readonly sweepIntervalMs?: number
}

/** Environment variable of each cluster timing. */
export const clusterVariables = {
  redisTimeoutMs: 'MIZZEN_REDIS_TIMEOUT_MS',
  peerTimeoutMs: 'MIZZEN_ROOMS_PEER_TIMEOUT_MS',
  heartbeatTtlMs: 'MIZZEN_ROOMS_HEARTBEAT_TTL_MS',
  sweepIntervalMs: 'MIZZEN_ROOMS_SWEEP_INTERVAL_MS',
} as const satisfies Record<keyof ClusterTimings, string>

/** Environment variable of each limit. */
export const limitVariables = {
  maxPayloadBytes: 'MIZZEN_MAX_PAYLOAD_BYTES',
  maxConnections: 'MIZZEN_MAX_CONNECTIONS',
  maxConnectionsPerIp: 'MIZZEN_MAX_CONNECTIONS_PER_IP',
  maxSubscriptionsPerConnection: 'MIZZEN_MAX_SUBSCRIPTIONS_PER_CONNECTION',
  maxDepth: 'MIZZEN_MAX_DEPTH',
  maxAliases: 'MIZZEN_MAX_ALIASES',
  maxTokens: 'MIZZEN_MAX_TOKENS',
  maxMessagesPerSecond: 'MIZZEN_MAX_MESSAGES_PER_SECOND',
  maxBufferedBytes: 'MIZZEN_MAX_BUFFERED_BYTES',
  connectionInitTimeoutMs: 'MIZZEN_CONNECTION_INIT_TIMEOUT_MS',
  keepAliveMs: 'MIZZEN_KEEP_ALIVE_MS',
} as const satisfies Record<keyof Limits, string>

/** `https://app.example.com` or `http://localhost:3000`: what browsers send as `Origin`. */
function isOrigin(value: string): boolean {
  try {
    return new URL(value).origin === value
  } catch {
    return false
  }
}

const list = z.string().transform((value) =>
  value
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean),
)
const flag = z.enum(['true', 'false', '1', '0']).transform((value) => value === 'true' || value === '1')
const positiveInteger = z.coerce.number().int().positive()

const limitsEnv = Object.fromEntries(
  Object.values(limitVariables).map((name) => [name, positiveInteger.optional()]),
) as Record<(typeof limitVariables)[keyof typeof limitVariables], z.ZodOptional<typeof positiveInteger>>
const clusterEnv = Object.fromEntries(
  Object.values(clusterVariables).map((name) => [name, positiveInteger.optional()]),
) as Record<(typeof clusterVariables)[keyof typeof clusterVariables], z.ZodOptional<typeof positiveInteger>>

/** Former names of variables, still read when the new one is unset (docs/configuration.md lists them). */
export const formerVariables = {
  MIZZEN_ROOMS_COMMAND_TIMEOUT_MS: 'MIZZEN_ROOMS_PEER_TIMEOUT_MS',
} as const

const env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z
    .string()
    .default('file:./data/mizzen.db')
    .superRefine((url, ctx) => {
      try {
        databaseProvider(url)
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as ConfigError).message.replace(/^DATABASE_URL: /, '') })
      }
    }),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected redis://… or rediss://…')
    .optional(),
  MIZZEN_REDIS_CLUSTER: list
    .refine(
      (nodes) =>
        nodes.length > 0 &&
        nodes.every((node) => /^[^\s:,]+:\d{1,5}$/.test(node) && Number(node.split(':').pop()) <= 65_535),
      'expected seed nodes as host:port,host:port,…',
    )
    .optional(),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  MIZZEN_API_KEYS: list.optional(),
  MIZZEN_JWT_SECRET: z.string().min(32, 'must be at least 32 characters (256 bits) for HS256').optional(),
  MIZZEN_JWT_PUBLIC_KEY: z
    .string()
    // Environment files often carry a PEM on one line with \n escapes.
    .transform((pem) => pem.replace(/\\n/g, '\n'))
    .refine((pem) => {
      try {
        createPublicKey(pem)
        return true
      } catch {
        return false
      }
    }, 'must be a PEM public key (-----BEGIN PUBLIC KEY-----)')
    .optional(),
  MIZZEN_JWKS_URL: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  MIZZEN_JWT_ISSUER: z.string().optional(),
  MIZZEN_JWT_AUDIENCE: z.string().optional(),
  MIZZEN_ALLOWED_ORIGINS: list
    .refine(
      (origins) => origins.every(isOrigin),
      'must be origins like https://app.example.com (scheme, host and port only)',
    )
    .optional(),
  MIZZEN_ALLOW_OPEN: flag.default(false),
  MIZZEN_INTROSPECTION: flag.optional(),
  MIZZEN_HISTORY_MAX_EVENTS: positiveInteger.optional(),
  MIZZEN_HISTORY_MAX_AGE_S: positiveInteger.optional(),
  MIZZEN_BUS_OUTBOX_MAX_EVENTS: positiveInteger.optional(),
  MIZZEN_BUS_OUTBOX_MAX_BYTES: positiveInteger.optional(),
  MIZZEN_BUS_REPLAY_WINDOW_MS: positiveInteger.optional(),
  MIZZEN_DATABASE_TIMEOUT_MS: positiveInteger.optional(),
  MIZZEN_REDIS_PREFIX: z
    .string()
    .max(128, 'must be at most 128 characters')
    .regex(/^[\x21-\x7e]*$/, 'must be printable ASCII with no spaces (it starts Redis key and channel names)')
    .regex(/^[^{}]*$/, 'must not contain { or } (they would move Redis Cluster hash tags)')
    .default('mizzen:'),
  MIZZEN_TRUST_PROXY: z
    .string()
    .transform((value, ctx) => {
      try {
        return parseTrustProxy(value)
      } catch (error) {
        ctx.addIssue({
          code: 'custom',
          message: `${(error as ConfigError).message.replace(/^MIZZEN_TRUST_PROXY: /, '')} (expected true, false, a hop count, or comma-separated addresses and CIDR ranges)`,
        })
        return z.NEVER
      }
    })
    .default(false),
  MIZZEN_METRICS: flag.default(true),
  MIZZEN_CAPTURE: z.enum(['extension', 'database'], { error: 'must be extension or database' }).default('extension'),
  MIZZEN_CAPTURE_NAME: z
    .string()
    .regex(/^[a-z0-9_]{1,63}$/, 'must be 1 to 63 lower-case letters, digits or _ (a replication slot name)')
    .optional(),
  MIZZEN_CAPTURE_REPLICA_IDENTITY_FULL: flag.default(true),
  MIZZEN_LIVE_THROTTLE_MS: positiveInteger.optional(),
  MIZZEN_PRESENCE_LEAVE_GRACE_MS: z.coerce.number().int().min(0).optional(),
  MIZZEN_PRESENCE_BATCH_MS: positiveInteger.optional(),
  MIZZEN_PRESENCE_META_MAX_BYTES: positiveInteger.optional(),
  ...limitsEnv,
  // Before the cluster timings: a bad value is named as it was set.
  MIZZEN_ROOMS_COMMAND_TIMEOUT_MS: positiveInteger.optional(),
  ...clusterEnv,
})

/**
 * Every environment variable the configuration reads, from the schema's own declarations: what
 * docs/configuration.md lists (test/configuration-doc.test.ts) and what an unknown `MIZZEN_*`
 * variable is compared with (`unknownVariables`).
 */
export const knownVariables: readonly string[] = Object.keys(env.shape)

/** An environment variable that looks like a setting (`MIZZEN_*`) but is none, and the known one nearest to it. */
export interface UnknownVariable {
  readonly name: string
  readonly closest: string
}

const SETTING_PREFIX = 'MIZZEN_'

/**
 * The `MIZZEN_*` variables of `source` that no setting reads (a typo is otherwise silent: the
 * setting keeps its default), each with the known variable closest to it by edit distance.
 * Compared without the `MIZZEN_` prefix, so that `MIZZEN_PORT` points at `PORT`.
 */
export function unknownVariables(source: Record<string, string | undefined> = process.env): UnknownVariable[] {
  const known = new Set(knownVariables)
  const bare = (name: string) => (name.startsWith(SETTING_PREFIX) ? name.slice(SETTING_PREFIX.length) : name)
  return Object.keys(source)
    .filter((name) => name.startsWith(SETTING_PREFIX) && !known.has(name))
    .sort()
    .map((name) => {
      let closest = knownVariables[0]!
      let best = Number.POSITIVE_INFINITY
      for (const candidate of knownVariables) {
        const distance = editDistance(bare(name), bare(candidate))
        if (distance < best) [closest, best] = [candidate, distance]
      }
      return { name, closest }
    })
}

/** Levenshtein distance: the fewest insertions, deletions and substitutions from `a` to `b`. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const current = [i]
    for (let j = 1; j <= b.length; j++) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, substitution)
    }
    previous = current
  }
  return previous[b.length]!
}

/** Settings whose values are secrets: an error names them but never prints their value. */
const secretSettings = new Set(['MIZZEN_API_KEYS', 'MIZZEN_JWT_SECRET'])

/** A bad value as an error message may show it: secrets hidden, URL passwords masked. */
function shown(setting: string, value: string): string {
  if (secretSettings.has(setting)) return `a value of ${value.length} characters`
  return `"${value.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@')}"`
}

/** Reads and validates the configuration; throws a ConfigError naming the first bad setting. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "not set", as shells and .env files often leave them.
  const present: Record<string, string> = Object.fromEntries(
    Object.entries(source).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''),
  )
  for (const [former, current] of Object.entries(formerVariables)) {
    if (!(former in present)) continue
    if (current in present) throw new ConfigError(former, `renamed ${current}, which is set too: remove ${former}`)
    present[current] = present[former]!
  }
  const parsed = env.safeParse(present)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const setting = String(issue.path[0])
    throw new ConfigError(
      setting,
      `${issue.message}${setting in present ? ` (got ${shown(setting, present[setting]!)})` : ''}`,
    )
  }
  const e = parsed.data
  const jwtKeys = (['MIZZEN_JWT_SECRET', 'MIZZEN_JWT_PUBLIC_KEY', 'MIZZEN_JWKS_URL'] as const).filter(
    (name) => e[name] !== undefined,
  )
  if (jwtKeys.length > 1) throw new ConfigError(jwtKeys[1]!, `set only one of ${jwtKeys.join(', ')}`)
  if (e.MIZZEN_REDIS_CLUSTER && e.REDIS_URL)
    throw new ConfigError(
      'MIZZEN_REDIS_CLUSTER',
      'set it or REDIS_URL, not both: the cluster carries the bus and the rooms registry',
    )
  const limits = Object.fromEntries(
    Object.entries(limitVariables).flatMap(([limit, variable]) =>
      e[variable] === undefined ? [] : [[limit, e[variable]]],
    ),
  ) as Partial<Limits>
  const cluster = Object.fromEntries(
    Object.entries(clusterVariables).flatMap(([timing, variable]) =>
      e[variable] === undefined ? [] : [[timing, e[variable]]],
    ),
  ) as ClusterTimings
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisCluster: e.MIZZEN_REDIS_CLUSTER,
    logLevel: e.LOG_LEVEL,
    nodeEnv: e.NODE_ENV,
    auth: {
      apiKeys: e.MIZZEN_API_KEYS ?? [],
      jwtSecret: e.MIZZEN_JWT_SECRET,
      jwtPublicKey: e.MIZZEN_JWT_PUBLIC_KEY,
      jwksUrl: e.MIZZEN_JWKS_URL,
      jwtIssuer: e.MIZZEN_JWT_ISSUER,
      jwtAudience: e.MIZZEN_JWT_AUDIENCE,
    },
    allowOpen: e.MIZZEN_ALLOW_OPEN,
    allowedOrigins: e.MIZZEN_ALLOWED_ORIGINS ?? [],
    introspection: e.MIZZEN_INTROSPECTION,
    limits,
    history: { maxEvents: e.MIZZEN_HISTORY_MAX_EVENTS, maxAgeSeconds: e.MIZZEN_HISTORY_MAX_AGE_S },
    outbox: { maxEvents: e.MIZZEN_BUS_OUTBOX_MAX_EVENTS, maxBytes: e.MIZZEN_BUS_OUTBOX_MAX_BYTES },
    busReplayWindowMs: e.MIZZEN_BUS_REPLAY_WINDOW_MS,
    cluster,
    databaseTimeoutMs: e.MIZZEN_DATABASE_TIMEOUT_MS,
    redisPrefix: e.MIZZEN_REDIS_PREFIX,
    trustProxy: e.MIZZEN_TRUST_PROXY,
    metrics: e.MIZZEN_METRICS,
    capture: e.MIZZEN_CAPTURE,
    captureName: e.MIZZEN_CAPTURE_NAME ?? captureName(e.MIZZEN_REDIS_PREFIX),
    captureReplicaIdentityFull: e.MIZZEN_CAPTURE_REPLICA_IDENTITY_FULL,
    liveThrottleMs: e.MIZZEN_LIVE_THROTTLE_MS,
    presence: {
      leaveGraceMs: e.MIZZEN_PRESENCE_LEAVE_GRACE_MS,
      batchMs: e.MIZZEN_PRESENCE_BATCH_MS,
      maxMetaBytes: e.MIZZEN_PRESENCE_META_MAX_BYTES,
    },
  }
}
