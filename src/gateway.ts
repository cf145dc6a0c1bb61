/**
 * `createGateway(options)`: one HTTP server on one port, serving GraphQL at `/graphql` over
 * HTTP (queries, mutations, SSE subscriptions: Yoga) and WebSocket (graphql-ws), plus the
 * `/health` and `/ready` probes. `close()` shuts it down gracefully.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { GraphQLSchema } from 'graphql'
import { renderGraphiQL } from '@graphql-yoga/render-graphiql'
import { createYoga, maskError } from 'graphql-yoga'
import type { ServerContext } from './context.ts'
import type { Bus } from './bus/bus.ts'
import { createMemoryBus } from './bus/memory.ts'
import { DeliveryHub } from './delivery/hub.ts'
import { policyViewer } from './delivery/grouping.ts'
import { bridgeModelEvents } from './delivery/model-events.ts'
import type { TrustProxy } from './http/client-address.ts'
import { createGraphiQLPage } from './http/graphiql.ts'
import type { RequestHandler } from './http/handler.ts'
import { createMetricsHandler } from './http/metrics.ts'
import { createDemoPage, demoConfig } from './demo/index.ts'
import { createLogger, type Logger } from './logger.ts'
import { countingBus, createMetrics, type Metrics } from './metrics.ts'
import { linkDataModel, type DataModel } from './models/data-model.ts'
import { LiveQueries } from './live/live-queries.ts'
import { useLiveQueries } from './live/plugin.ts'
import type { DataModelMeta } from './models/meta.ts'
import { realtime } from './prisma/extension.ts'
import type { CaptureOptions, ChangeCapture } from './capture/capture.ts'
import { CAPTURE_SETTING, CaptureRefusedError } from './capture/setup.ts'
import { activeProvider, type PrismaClientLike } from './prisma/client.ts'
import { Rooms, type RoomsOptions } from './rooms/rooms.ts'
import { graphiqlDefaultQuery } from './schema/graphiql-query.ts'
import { buildSchema } from './schema/index.ts'
import { ViewerAccess } from './auth/access.ts'
import { createAuthenticator, type AuthOptions } from './auth/authenticator.ts'
import { checkPolicyModels, type Policies } from './auth/policies.ts'
import type { Viewer } from './auth/viewer.ts'
import { clientErrorsJson, ConfigError, maskInfrastructureErrors, positiveSetting, resyncRequired } from './errors.ts'
import { authenticateRequest, queryLimitPlugins, resolveLimits } from './security.ts'
import type { Limits } from './transport/limits.ts'
import { createProbeHandler } from './transport/probes.ts'
import { databaseCheck } from './transport/readiness.ts'
import { attachWebSocket } from './transport/websocket.ts'

export const GRAPHQL_PATH = '/graphql'

export interface GatewayOptions<Client extends PrismaClientLike = PrismaClientLike> {
  /**
   * Your Prisma Client (generated from your schema, with a driver adapter), without the realtime
   * extension: the gateway installs it. The gateway reads and writes through it, answers `/ready`
   * with it, and disconnects it on close. It applies no migrations (see `mizzen migrate`).
   */
  prisma: Client
  /** The data model of `prisma`'s schema: what the `mizzen` Prisma generator wrote (or a model linked already). */
  dataModel: DataModelMeta | DataModel
  /** TCP port; 0 picks a free one (see `Gateway.port`). @default 4000 */
  port?: number
  /** Interface to listen on. @default "0.0.0.0" */
  host?: string
  /** `production` masks unexpected errors and turns GraphiQL and the demo off. @default "development" */
  nodeEnv?: 'development' | 'production' | 'test'
  /**
   * Serve GraphiQL on GET /graphql from a browser (brotli or gzip as the browser accepts,
   * compressed once, at the first request). @default true unless nodeEnv is production
   */
  graphiql?: boolean
  /**
   * Serve the browser demo on GET /demo: a chat with rooms and, when the data model has the
   * example's `Post`, a live post list (docs/development.md, Browser demo). @default true unless nodeEnv is production
   */
  demo?: boolean
  /** @default pino at level "info" */
  logger?: Logger
  /** How long WebSocket clients get to finish closing on shutdown, in ms. @default 5000 */
  shutdownGraceMs?: number
  /**
   * The bus events travel on: `createRedisBus` to run several gateways (and backend services)
   * as one. The gateway closes it on shutdown.
   * @default an in-memory bus (one process)
   */
  bus?: Bus
  /** Room messaging: message size limit, membership registry. @default see RoomsOptions */
  rooms?: RoomsOptions
  /** Credentials: API keys and JWT verification. None configured means open (everyone is `service`). */
  auth?: AuthOptions
  /** Refuse to start open (no credentials) in production unless this is true. @default false */
  allowOpen?: boolean
  /** Who may read, write, join and broadcast. @default models, writes and room management `service` only; joining rooms open */
  policies?: Policies
  /** Resource limits. @default see `defaultLimits` */
  limits?: Partial<Limits>
  /** Allowed `Origin`s for WebSocket upgrades and CORS; empty allows any. @default [] */
  allowedOrigins?: readonly string[]
  /** Answer introspection queries. @default true unless nodeEnv is production */
  introspection?: boolean
  /**
   * Which hops in front of the gateway are proxies whose `X-Forwarded-For` names the client
   * (per-IP connection limit, logs): `false`, `true` (every hop), a hop count, or addresses and
   * CIDR ranges (`loopback`, `linklocal`, `uniquelocal` too), as Express's `trust proxy`.
   * @default false (the socket's peer address)
   */
  trustProxy?: TrustProxy
  /**
   * `GET /metrics` in Prometheus text. `false` turns it off (nothing is counted); pass your own
   * `createMetrics()` to count your Redis bus's errors in it too (`metrics.busError()` in its `onError`).
   * @default true (a metrics registry of this gateway's own)
   */
  metrics?: boolean | Metrics
  /**
   * Where model events come from (docs/capture.md). `extension` (default): the realtime extension
   * on the gateway's client and on your backends. `database` (PostgreSQL with wal_level=logical
   * and a role with REPLICATION): the database's logical replication stream, so that every
   * committed change reaches subscribers whoever made it; the extension then publishes nothing.
   * An object sets capture's details (its `url` defaults to the one the client's PostgreSQL
   * adapter was given). `MIZZEN_CAPTURE`.
   * @default "extension"
   */
  capture?: 'extension' | 'database' | ({ mode: 'database' } & Partial<CaptureOptions>)
  /**
   * Live queries (`query @live`): the least interval between two executions, so two results, of
   * one group of identical live queries, in ms. Writes within it are coalesced into one
   * execution, and the last state is always sent. A client's `@live(throttle:)` may ask for a
   * longer interval, never a shorter one. @default 100
   */
  liveThrottleMs?: number
}

export interface Gateway<Client extends PrismaClientLike = PrismaClientLike> {
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`. */
  readonly url: string
  readonly port: number
  readonly server: Server
  readonly schema: GraphQLSchema
  /** The gateway's Prisma Client (yours, with the realtime extension): writes through it publish events. */
  readonly prisma: Client
  /** The bus it was given (or its in-memory one); what others publish on it is theirs, not counted in this gateway's metrics. */
  readonly bus: Bus
  /** Local subscribers by topic (for diagnostics and leak checks). */
  readonly hub: DeliveryHub
  /** Room messaging and its registry (for diagnostics and leak checks). */
  readonly rooms: Rooms
  /** Live queries held here, their groups and executions (for diagnostics and leak checks). */
  readonly live: LiveQueries
  /** What /metrics serves (`noopMetrics` when off). */
  readonly metrics: Metrics
  /** Open WebSocket connections, from the upgrade to the close (for diagnostics and leak checks). */
  readonly connectionCount: number
  /** Change capture, when `capture` is `database` (for diagnostics). */
  readonly capture: ChangeCapture | undefined
  /** Stops accepting work, closes WebSockets with 1001, lets in-flight HTTP finish, closes the bus and disconnects the Prisma Client. */
  close(): Promise<void>
}

export async function createGateway<Client extends PrismaClientLike>(
  options: GatewayOptions<Client>,
): Promise<Gateway<Client>> {
  const nodeEnv = options.nodeEnv ?? 'development'
  const logger = options.logger ?? createLogger('info')
  // Linked once here; the schema, the extension and every resolver share the linked model.
  const dataModel = linkDataModel(options.dataModel)
  const limits = resolveLimits(options.limits)
  const authenticator = createAuthenticator(options.auth ?? {})
  if (authenticator.open) {
    if (nodeEnv === 'production' && !options.allowOpen) {
      throw new ConfigError(
        'MIZZEN_API_KEYS',
        'production needs credentials: set MIZZEN_API_KEYS or a JWT key (MIZZEN_JWT_SECRET, MIZZEN_JWT_PUBLIC_KEY, MIZZEN_JWKS_URL), or MIZZEN_ALLOW_OPEN=true to run open (in code: auth.apiKeys, auth.jwtSecret, auth.jwtPublicKey, auth.jwksUrl, or allowOpen)',
      )
    }
    logger.warn(
      'NO CREDENTIALS CONFIGURED: the gateway is open and every client may do everything. Set MIZZEN_API_KEYS and a JWT key (in code: auth.apiKeys and auth.jwtSecret, auth.jwtPublicKey or auth.jwksUrl) before exposing it.',
    )
  }
  const policies = options.policies ?? {}
  checkPolicyModels(
    policies,
    dataModel.models.map((model) => model.name),
  )
  const allowedOrigins = options.allowedOrigins ?? []
  const metrics =
    typeof options.metrics === 'object' ? options.metrics : createMetrics({ enabled: options.metrics !== false })
  // Before the database opens, so that a bad rooms option stops startup with nothing to close.
  const onListenerError = (err: unknown, topic: string) => {
    metrics.busError()
    logger.error({ err, topic }, 'bus listener failed')
  }
  const ownBus = options.bus ?? createMemoryBus({ onListenerError })
  const bus = countingBus(ownBus, metrics)
  metrics.countBusWith(() => ownBus.stats?.())
  const hub = new DeliveryHub({
    metrics,
    onSelectorError: (err, topic) => logger.error({ err, topic }, 'subscription filter failed; subscription ended'),
  })
  const rooms = new Rooms(
    { bus, hub, metrics, onError: (err, context) => logger.warn({ err }, context) },
    options.rooms,
  )

  const database = options.prisma
  // Prisma loads its query compiler (WebAssembly, some 50 MB) on the first query. Loaded now, it
  // is part of starting up, not of whichever request or subscription comes first.
  await (database as { $connect?: () => Promise<void> }).$connect?.()
  const captureSettings = resolveCapture(options.capture, database)
  const stopModelEvents = bridgeModelEvents(bus, hub, dataModel, metrics)
  // Every write made through the gateway publishes its events; backends install the same extension.
  // With change capture the log publishes them instead, and the extension stands aside.
  const prisma = (database as unknown as { $extends(extension: unknown): Client }).$extends(
    realtime({ bus, dataModel, logger, capture: captureSettings ? 'database' : 'extension' }),
  )

  // Resolves once the bus answers and its subscriptions are in place (Redis subscribes asynchronously).
  await bus.ping()
  let capture: ChangeCapture | undefined
  if (captureSettings) {
    try {
      // Loaded only here: `pg` is an optional peer, absent from a project on SQLite.
      const { startCapture } = await import('./capture/capture.ts')
      capture = await startCapture(
        {
          bus,
          dataModel,
          logger,
          onGap: (reason) => hub.fail((topic) => topic.startsWith('model:'), clientErrorsJson(resyncRequired(reason))),
        },
        captureSettings,
      )
    } catch (error) {
      stopModelEvents()
      await database.$disconnect().catch(() => {})
      if (error instanceof CaptureRefusedError) throw new ConfigError(CAPTURE_SETTING, error.message)
      throw error
    }
    const reading = capture
    metrics.countCaptureWith(async () => {
      await reading.refresh()
      return { lagBytes: reading.lagBytes, events: reading.events }
    })
  }

  const schema = buildSchema(dataModel)
  const live = new LiveQueries({
    bus,
    schema,
    dataModel,
    throttleMs:
      options.liveThrottleMs === undefined
        ? undefined
        : positiveSetting('liveThrottleMs', options.liveThrottleMs, 'ms'),
    logger,
    metrics,
  })
  const serverContext: ServerContext = { prisma, dataModel, bus, hub, rooms, logger }
  // GraphiQL from the npm package, not from a CDN (it works offline), and subscriptions over
  // graphql-ws, where room subscriptions work (Yoga's default, SSE, has no connection). Served
  // by the gateway rather than Yoga, to send its 9 MB compressed (see http/graphiql.ts).
  const graphiql =
    (options.graphiql ?? nodeEnv !== 'production')
      ? createGraphiQLPage(GRAPHQL_PATH, () =>
          renderGraphiQL({
            title: 'mizzen',
            subscriptionsProtocol: 'WS',
            defaultQuery: graphiqlDefaultQuery(dataModel),
          }),
        )
      : undefined
  const demo =
    (options.demo ?? nodeEnv !== 'production') ? createDemoPage(demoConfig(dataModel, GRAPHQL_PATH)) : undefined
  const yoga = createYoga<Record<string, unknown>, Record<string, unknown>>({
    schema,
    graphqlEndpoint: GRAPHQL_PATH,
    graphiql: false,
    // Redis, database and peer failures answer UNAVAILABLE (retryable, naming the service) rather than masked.
    maskedErrors: { isDev: nodeEnv !== 'production', maskError: maskInfrastructureErrors(maskError) },
    landingPage: false,
    logging: logger,
    cors: allowedOrigins.length ? { origin: [...allowedOrigins], credentials: true } : undefined,
    plugins: [
      ...queryLimitPlugins(limits, options.introspection ?? nodeEnv !== 'production'),
      useLiveQueries(live, dataModel),
    ],
    context: async (initial) => {
      // Over WebSocket the viewer was authenticated at connection_init; over HTTP, per request.
      const viewer =
        (initial.viewer as Viewer | undefined) ??
        (await authenticateRequest(authenticator, initial.request as Request | undefined))
      return {
        ...serverContext,
        connectionId: initial.connectionId,
        viewer,
        access: new ViewerAccess(viewer, policies),
      }
    },
  })

  const registry = rooms.registry
  const probes = createProbeHandler({
    database: databaseCheck(database, dataModel),
    bus: () => bus.ping(),
    ...(registry.ping ? { rooms: () => registry.ping!() } : {}),
    ...(capture ? { capture: () => capture.check() } : {}),
  })
  // Each endpoint in turn takes the requests that are its own; Yoga the rest.
  const endpoints = [probes, createMetricsHandler(metrics), graphiql, demo].filter(
    (handler): handler is RequestHandler => handler !== undefined,
  )
  const server = createServer(async (req, res) => {
    for (const handle of endpoints) if (await handle(req, res)) return
    yoga(req, res)
  })
  const websocket = attachWebSocket({
    httpServer: server,
    path: GRAPHQL_PATH,
    yoga,
    hub,
    viewerPart: policyViewer(schema, dataModel),
    live,
    authenticator,
    limits,
    allowedOrigins,
    logger,
    isProduction: nodeEnv === 'production',
    metrics,
    trustProxy: options.trustProxy,
    onConnectionOpen: (connectionId, viewer) => rooms.connectionOpened(connectionId, viewer),
    onConnectionClose: (connectionId) => rooms.connectionClosed(connectionId),
  })

  metrics.countConnectionsWith(() => websocket.connectionCount)

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 4000, options.host ?? '0.0.0.0', () => {
      server.off('error', reject)
      resolve()
    })
  })
  const { port, address } = server.address() as AddressInfo
  const host = address === '0.0.0.0' || address === '::' ? '127.0.0.1' : address
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${GRAPHQL_PATH}`
  // `url` is where to connect from this machine; `listening` is the interface bound (0.0.0.0: all of them).
  logger.info({ url, listening: `${address}:${port}`, database: activeProvider(database) }, 'mizzen gateway listening')

  let closing: Promise<void> | undefined
  return {
    url,
    port,
    server,
    schema,
    prisma,
    bus: ownBus,
    hub,
    rooms,
    live,
    metrics,
    get connectionCount() {
      return websocket.connectionCount
    },
    capture,
    close: () =>
      (closing ??= (async () => {
        const httpClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        server.closeIdleConnections()
        stopModelEvents()
        hub.endAll()
        live.close()
        await websocket.close(options.shutdownGraceMs)
        await httpClosed
        await capture?.close()
        await rooms.close()
        await bus.close()
        await database.$disconnect()
        logger.info('mizzen gateway stopped')
      })()),
  }
}

/** The capture settings, when `capture` asks for the database's log; refuses SQLite and a client whose URL is unknown. */
function resolveCapture(capture: GatewayOptions['capture'], database: PrismaClientLike): CaptureOptions | undefined {
  if (capture === undefined || capture === 'extension') return undefined
  const settings = typeof capture === 'object' ? capture : { mode: 'database' as const }
  if (settings.mode !== 'database')
    throw new ConfigError(
      CAPTURE_SETTING,
      `unknown capture mode ${JSON.stringify(settings.mode)}: use extension or database`,
    )
  const provider = activeProvider(database)
  if (provider === 'sqlite')
    throw new ConfigError(
      CAPTURE_SETTING,
      `capture mode database needs PostgreSQL (wal_level=logical), and DATABASE_URL names SQLite: set ${CAPTURE_SETTING}=extension, or use PostgreSQL`,
    )
  const url = settings.url ?? adapterUrl(database)
  if (!url)
    throw new ConfigError(
      CAPTURE_SETTING,
      `capture mode database needs the database URL: pass capture: { mode: 'database', url }`,
    )
  return { ...settings, url }
}

/** The connection string the client's PostgreSQL driver adapter was given, when Prisma lets it be seen. */
function adapterUrl(database: unknown): string | undefined {
  const internals = database as { _engineConfig?: { adapter?: { config?: { connectionString?: unknown } } } }
  const url = internals._engineConfig?.adapter?.config?.connectionString
  return typeof url === 'string' ? url : undefined
}
