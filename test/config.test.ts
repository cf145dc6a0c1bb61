import { generateKeyPairSync } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { editDistance, knownVariables, loadConfig, unknownVariables } from '../src/config.ts'
import { ConfigError } from '../src/errors.ts'

describe('configuration', () => {
  it('should default to port 4000, an SQLite file, the in-memory bus, no credentials and default limits', () => {
    expect(loadConfig({})).toEqual({
      port: 4000,
      host: '0.0.0.0',
      databaseUrl: 'file:./data/mizzen.db',
      redisUrl: undefined,
      logLevel: 'info',
      nodeEnv: 'development',
      auth: {
        apiKeys: [],
        jwtSecret: undefined,
        jwtPublicKey: undefined,
        jwksUrl: undefined,
        jwtIssuer: undefined,
        jwtAudience: undefined,
      },
      allowOpen: false,
      allowedOrigins: [],
      introspection: undefined,
      limits: {},
      history: { maxEvents: undefined, maxAgeSeconds: undefined },
      outbox: { maxEvents: undefined, maxBytes: undefined },
      busReplayWindowMs: undefined,
      cluster: {},
      databaseTimeoutMs: undefined,
      redisPrefix: 'mizzen:',
      redisCluster: undefined,
      trustProxy: false,
      metrics: true,
      capture: 'extension',
      captureName: 'mizzen_capture',
      captureReplicaIdentityFull: true,
      liveThrottleMs: undefined,
      presence: { leaveGraceMs: undefined, batchMs: undefined, maxMetaBytes: undefined },
    })
  })

  it('should read the change capture settings, the name derived from the Redis prefix by default', () => {
    expect(loadConfig({ MIZZEN_CAPTURE: 'database', MIZZEN_REDIS_PREFIX: 'Staging:eu-1:' })).toMatchObject({
      capture: 'database',
      captureName: 'staging_eu_1_capture',
      captureReplicaIdentityFull: true,
    })
    expect(
      loadConfig({ MIZZEN_CAPTURE_NAME: 'orders_events', MIZZEN_CAPTURE_REPLICA_IDENTITY_FULL: 'false' }),
    ).toMatchObject({ captureName: 'orders_events', captureReplicaIdentityFull: false })
    expect(() => loadConfig({ MIZZEN_CAPTURE: 'wal' })).toThrow(
      /^MIZZEN_CAPTURE: must be extension or database \(got "wal"\)$/,
    )
    expect(() => loadConfig({ MIZZEN_CAPTURE_NAME: 'Has-Dash' })).toThrow(/^MIZZEN_CAPTURE_NAME: must be 1 to 63/)
  })

  it('should read the live queries’ throttle', () => {
    expect(loadConfig({ MIZZEN_LIVE_THROTTLE_MS: '250' }).liveThrottleMs).toBe(250)
  })

  it('should read the presence settings, and refuse bad ones naming them', () => {
    expect(
      loadConfig({
        MIZZEN_PRESENCE_LEAVE_GRACE_MS: '0',
        MIZZEN_PRESENCE_BATCH_MS: '20',
        MIZZEN_PRESENCE_META_MAX_BYTES: '256',
      }).presence,
    ).toEqual({ leaveGraceMs: 0, batchMs: 20, maxMetaBytes: 256 })
    expect(() => loadConfig({ MIZZEN_PRESENCE_LEAVE_GRACE_MS: '-1' })).toThrow(/^MIZZEN_PRESENCE_LEAVE_GRACE_MS: /)
    expect(() => loadConfig({ MIZZEN_PRESENCE_BATCH_MS: '0' })).toThrow(/^MIZZEN_PRESENCE_BATCH_MS: /)
    expect(() => loadConfig({ MIZZEN_PRESENCE_META_MAX_BYTES: 'big' })).toThrow(/^MIZZEN_PRESENCE_META_MAX_BYTES: /)
  })

  it('should read the Redis prefix, the metrics switch and the trusted proxies', () => {
    expect(loadConfig({ MIZZEN_REDIS_PREFIX: 'staging:', MIZZEN_METRICS: 'false' })).toMatchObject({
      redisPrefix: 'staging:',
      metrics: false,
    })
    expect(loadConfig({ MIZZEN_TRUST_PROXY: 'true' }).trustProxy).toBe(true)
    expect(loadConfig({ MIZZEN_TRUST_PROXY: 'false' }).trustProxy).toBe(false)
    expect(loadConfig({ MIZZEN_TRUST_PROXY: '2' }).trustProxy).toBe(2)
    expect(loadConfig({ MIZZEN_TRUST_PROXY: 'loopback, 10.0.0.0/8,2001:db8::/32 , 192.168.1.7' }).trustProxy).toEqual([
      'loopback',
      '10.0.0.0/8',
      '2001:db8::/32',
      '192.168.1.7',
    ])
  })

  it('should read the cluster timings and the database timeout', () => {
    const config = loadConfig({
      MIZZEN_REDIS_TIMEOUT_MS: '500',
      MIZZEN_ROOMS_PEER_TIMEOUT_MS: '1000',
      MIZZEN_ROOMS_HEARTBEAT_TTL_MS: '3000',
      MIZZEN_ROOMS_SWEEP_INTERVAL_MS: '700',
      MIZZEN_DATABASE_TIMEOUT_MS: '4000',
    })
    expect(config.cluster).toEqual({
      redisTimeoutMs: 500,
      peerTimeoutMs: 1000,
      heartbeatTtlMs: 3000,
      sweepIntervalMs: 700,
    })
    expect(config.databaseTimeoutMs).toBe(4000)
  })

  it('should still read MIZZEN_ROOMS_COMMAND_TIMEOUT_MS, the former name of MIZZEN_ROOMS_PEER_TIMEOUT_MS', () => {
    expect(loadConfig({ MIZZEN_ROOMS_COMMAND_TIMEOUT_MS: '1500' }).cluster).toEqual({ peerTimeoutMs: 1500 })
    expect(() => loadConfig({ MIZZEN_ROOMS_COMMAND_TIMEOUT_MS: 'soon' })).toThrow(
      expect.objectContaining({ setting: 'MIZZEN_ROOMS_COMMAND_TIMEOUT_MS' }),
    )
    expect(() => loadConfig({ MIZZEN_ROOMS_COMMAND_TIMEOUT_MS: '1500', MIZZEN_ROOMS_PEER_TIMEOUT_MS: '1500' })).toThrow(
      /renamed MIZZEN_ROOMS_PEER_TIMEOUT_MS, which is set too/,
    )
  })

  it('should read credentials, origins, switches and limits', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString()
    const config = loadConfig({
      MIZZEN_API_KEYS: ' k1, k2 ,',
      MIZZEN_JWT_PUBLIC_KEY: pem.replace(/\n/g, '\\n'),
      MIZZEN_JWT_ISSUER: 'https://issuer.example',
      MIZZEN_ALLOWED_ORIGINS: 'https://app.example,https://admin.example',
      MIZZEN_ALLOW_OPEN: 'true',
      MIZZEN_INTROSPECTION: 'false',
      MIZZEN_MAX_DEPTH: '8',
      MIZZEN_MAX_PAYLOAD_BYTES: '1024',
    })
    expect(config.auth).toMatchObject({ apiKeys: ['k1', 'k2'], jwtPublicKey: pem, jwtIssuer: 'https://issuer.example' })
    expect(config.allowedOrigins).toEqual(['https://app.example', 'https://admin.example'])
    expect([config.allowOpen, config.introspection]).toEqual([true, false])
    expect(config.limits).toEqual({ maxDepth: 8, maxPayloadBytes: 1024 })
  })

  it('should read the history and outbox bounds and the replay window', () => {
    const config = loadConfig({
      MIZZEN_HISTORY_MAX_EVENTS: '50',
      MIZZEN_HISTORY_MAX_AGE_S: '60',
      MIZZEN_BUS_OUTBOX_MAX_EVENTS: '100',
      MIZZEN_BUS_OUTBOX_MAX_BYTES: '4096',
      MIZZEN_BUS_REPLAY_WINDOW_MS: '60000',
    })
    expect(config.history).toEqual({ maxEvents: 50, maxAgeSeconds: 60 })
    expect(config.outbox).toEqual({ maxEvents: 100, maxBytes: 4096 })
    expect(config.busReplayWindowMs).toBe(60_000)
  })

  it('should take PostgreSQL and Redis URLs', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://u@db:5432/app',
      REDIS_URL: 'redis://cache:6379',
      PORT: '8080',
    })
    expect(config).toMatchObject({
      databaseUrl: 'postgres://u@db:5432/app',
      redisUrl: 'redis://cache:6379',
      port: 8080,
    })
  })

  it('should take Redis Cluster seed nodes instead of REDIS_URL', () => {
    const config = loadConfig({ MIZZEN_REDIS_CLUSTER: 'node-a:7000, 10.0.0.2:7001' })
    expect(config.redisCluster).toEqual(['node-a:7000', '10.0.0.2:7001'])
    expect(config.redisUrl).toBeUndefined()
  })

  it('should treat empty variables as unset', () => {
    expect(loadConfig({ PORT: '', DATABASE_URL: '' }).port).toBe(4000)
  })

  it.each([
    [{ DATABASE_URL: 'mysql://x' }, 'DATABASE_URL', /unsupported database "mysql"/],
    [{ PORT: 'eighty' }, 'PORT', /eighty/],
    [{ MIZZEN_ROOMS_HEARTBEAT_TTL_MS: '0' }, 'MIZZEN_ROOMS_HEARTBEAT_TTL_MS', /0/],
    [{ MIZZEN_DATABASE_TIMEOUT_MS: 'soon' }, 'MIZZEN_DATABASE_TIMEOUT_MS', /soon/],
    [{ PORT: '70000' }, 'PORT', /70000/],
    [{ REDIS_URL: 'http://cache' }, 'REDIS_URL', /redis:\/\//],
    [{ LOG_LEVEL: 'loud' }, 'LOG_LEVEL', /loud/],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV', /staging/],
    [{ MIZZEN_JWT_SECRET: 'short' }, 'MIZZEN_JWT_SECRET', /at least 32 characters/],
    [{ MIZZEN_JWT_PUBLIC_KEY: 'not a key' }, 'MIZZEN_JWT_PUBLIC_KEY', /PEM public key/],
    [{ MIZZEN_JWKS_URL: 'ftp://keys' }, 'MIZZEN_JWKS_URL', /http\(s\) URL/],
    [
      { MIZZEN_JWT_SECRET: 'x'.repeat(32), MIZZEN_JWKS_URL: 'https://keys.example/jwks.json' },
      'MIZZEN_JWKS_URL',
      /only one of/,
    ],
    [{ MIZZEN_ALLOW_OPEN: 'yes' }, 'MIZZEN_ALLOW_OPEN', /yes/],
    [{ MIZZEN_ALLOWED_ORIGINS: 'https://app.example,notaurl' }, 'MIZZEN_ALLOWED_ORIGINS', /must be origins like/],
    [{ MIZZEN_ALLOWED_ORIGINS: 'https://app.example/path' }, 'MIZZEN_ALLOWED_ORIGINS', /must be origins like/],
    [{ MIZZEN_MAX_DEPTH: '0' }, 'MIZZEN_MAX_DEPTH', /0/],
    [{ MIZZEN_MAX_CONNECTIONS: 'many' }, 'MIZZEN_MAX_CONNECTIONS', /many/],
    [{ MIZZEN_HISTORY_MAX_EVENTS: '0' }, 'MIZZEN_HISTORY_MAX_EVENTS', /0/],
    [{ MIZZEN_HISTORY_MAX_AGE_S: '1.5' }, 'MIZZEN_HISTORY_MAX_AGE_S', /1\.5/],
    [{ MIZZEN_BUS_OUTBOX_MAX_EVENTS: '-1' }, 'MIZZEN_BUS_OUTBOX_MAX_EVENTS', /-1/],
    [{ MIZZEN_BUS_OUTBOX_MAX_BYTES: 'lots' }, 'MIZZEN_BUS_OUTBOX_MAX_BYTES', /lots/],
    [{ MIZZEN_BUS_REPLAY_WINDOW_MS: '0' }, 'MIZZEN_BUS_REPLAY_WINDOW_MS', /0/],
    [{ MIZZEN_METRICS: 'off' }, 'MIZZEN_METRICS', /off/],
    [{ MIZZEN_LIVE_THROTTLE_MS: '0' }, 'MIZZEN_LIVE_THROTTLE_MS', /0/],
    [{ MIZZEN_LIVE_THROTTLE_MS: 'fast' }, 'MIZZEN_LIVE_THROTTLE_MS', /fast/],
    [{ MIZZEN_REDIS_PREFIX: 'my app:' }, 'MIZZEN_REDIS_PREFIX', /no spaces/],
    [{ MIZZEN_REDIS_PREFIX: 'app{1}:' }, 'MIZZEN_REDIS_PREFIX', /must not contain \{ or \}/],
    [{ MIZZEN_REDIS_CLUSTER: 'node-a' }, 'MIZZEN_REDIS_CLUSTER', /host:port/],
    [{ REDIS_URL: 'redis://r:6379', MIZZEN_REDIS_CLUSTER: 'node-a:7000' }, 'MIZZEN_REDIS_CLUSTER', /not both/],
    [
      { MIZZEN_TRUST_PROXY: '10.0.0.0/33' },
      'MIZZEN_TRUST_PROXY',
      /"10\.0\.0\.0\/33" is not an IP address, a CIDR range/,
    ],
    [{ MIZZEN_TRUST_PROXY: 'proxy.internal' }, 'MIZZEN_TRUST_PROXY', /expected true, false, a hop count/],
  ])('should refuse %o naming the setting', (env, setting, message) => {
    let error: unknown
    try {
      loadConfig(env)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).setting).toBe(setting)
    expect((error as ConfigError).message).toMatch(new RegExp(`^${setting}: `))
    expect((error as ConfigError).message).toMatch(message)
  })

  it('should never print a secret, nor a password in a URL, when refusing a value', () => {
    const refusal = (env: Record<string, string>) => {
      try {
        loadConfig(env)
      } catch (error) {
        return (error as ConfigError).message
      }
      throw new Error('accepted')
    }
    const secret = 'almost-long-enough-secret-value'
    expect(refusal({ MIZZEN_JWT_SECRET: secret })).toBe(
      'MIZZEN_JWT_SECRET: must be at least 32 characters (256 bits) for HS256 (got a value of 31 characters)',
    )
    const redis = refusal({ REDIS_URL: 'http://admin:hunter2@cache:6379' })
    expect(redis).toContain('"http://admin:***@cache:6379"')
    expect(redis).not.toContain('hunter2')
  })
})

describe('unknown MIZZEN_* variables', () => {
  it('should name each unknown MIZZEN_* variable with the known setting closest to it', () => {
    expect(
      unknownVariables({
        MIZZEN_HISTORY_MAX_EVENT: '10',
        MIZZEN_REDIS_PREFX: 'a:',
        MIZZEN_PORT: '4001',
        MIZZEN_METRICS: 'false',
        REDIS_URL: 'redis://127.0.0.1:6379',
        EDITOR: 'vi',
      }),
    ).toEqual([
      { name: 'MIZZEN_HISTORY_MAX_EVENT', closest: 'MIZZEN_HISTORY_MAX_EVENTS' },
      { name: 'MIZZEN_PORT', closest: 'PORT' },
      { name: 'MIZZEN_REDIS_PREFX', closest: 'MIZZEN_REDIS_PREFIX' },
    ])
  })

  it('should find nothing to warn about in known settings and in variables that are not MIZZEN_*', () => {
    expect(unknownVariables(Object.fromEntries(knownVariables.map((name) => [name, '1'])))).toEqual([])
    expect(unknownVariables({ PATH: '/bin', MIZZENX: '1', mizzen_metrics: 'false' })).toEqual([])
  })

  it('should know every variable the configuration reads, one setting per limit and cluster timing', () => {
    expect(knownVariables).toContain('PORT')
    expect(knownVariables).toContain('MIZZEN_MAX_DEPTH')
    expect(knownVariables).toContain('MIZZEN_ROOMS_SWEEP_INTERVAL_MS')
    expect(new Set(knownVariables).size).toBe(knownVariables.length)
  })

  it('should measure edit distance as insertions, deletions and substitutions', () => {
    expect(editDistance('CLUSTR', 'CLUSTER')).toBe(1)
    expect(editDistance('PREFIX', 'PERFIX')).toBe(2)
    expect(editDistance('', 'PORT')).toBe(4)
    expect(editDistance('METRICS', 'METRICS')).toBe(0)
  })
})
