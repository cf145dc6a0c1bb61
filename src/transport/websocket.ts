/**
 * graphql-ws on a `ws` server, executing every operation through Yoga's envelop pipeline
 * (`yoga.getEnveloped`), so that parsing, validation (depth, aliases, tokens, introspection),
 * context, auth and error masking are the same as over HTTP. Upgrades are checked before the
 * handshake; each connection is authenticated at `connection_init`, and limited in message rate,
 * unread output and subscriptions.
 */
import { randomUUID } from 'node:crypto'
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { getOperationAST, GraphQLError, type ExecutionArgs, type GraphQLFormattedError } from 'graphql'
import type { SubscribePayload } from 'graphql-ws'
import { useServer } from 'graphql-ws/use/ws'
import type { YogaServerInstance } from 'graphql-yoga'
import { WebSocketServer, type WebSocket } from 'ws'
import { AuthError, type Authenticator } from '../auth/authenticator.ts'
import type { Viewer } from '../auth/viewer.ts'
import { ErrorCode } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { CloseCode } from './close-codes.ts'
import type { Limits } from './limits.ts'
import { limitUnreadOutput, screenMessages } from './socket-guards.ts'
import { checkUpgrade, clientIp, ConnectionCounter, refuseUpgrade } from './upgrade.ts'

/** What mizzen adds to graphql-ws's per-connection `extra` (besides its `socket` and `request`). */
type ConnectionExtra = {
  connectionId?: string
  viewer?: Viewer
  /**
   * The connection's operations from their start until they wound down (onComplete/onError), by
   * id, with the payload of the subscribe message that started each (which tells an operation
   * from a later one reusing its id).
   */
  operations?: Map<string, { payload: SubscribePayload; subscription: boolean }>
  /** `onConnectionOpen` for this connection, so that closing waits for it to finish. */
  opened?: Promise<void>
}

type Enveloped = ReturnType<YogaServerInstance<Record<string, unknown>, Record<string, unknown>>['getEnveloped']>

export interface WebSocketTransport {
  readonly server: WebSocketServer
  /** Open connections (counted from the upgrade to the close). */
  readonly connectionCount: number
  /**
   * Stops accepting connections and closes every open one with 1001; sockets that have not
   * finished the closing handshake after `graceMs` are terminated.
   */
  close(graceMs?: number): Promise<void>
}

export interface WebSocketTransportOptions {
  httpServer: Server
  path: string
  yoga: YogaServerInstance<Record<string, unknown>, Record<string, unknown>>
  authenticator: Authenticator
  limits: Limits
  /** Allowed `Origin` values for upgrades; empty allows any. */
  allowedOrigins: readonly string[]
  logger: Logger
  /** Hides unexpected error messages from clients (graphql-ws's own masking). */
  isProduction: boolean
  /**
   * Called when a connection is acknowledged, before `connection_ack` is sent: once it resolves
   * the connection exists for the rest of the gateway. If it rejects, the socket is closed 4500.
   */
  onConnectionOpen?: (connectionId: string) => Promise<void> | void
  /**
   * Called once when an acknowledged connection closes, after its subscriptions were returned
   * and after `onConnectionOpen` settled (even if the socket closed while it ran).
   */
  onConnectionClose?: (connectionId: string) => Promise<void> | void
}

/** setTimeout takes at most 2^31-1 ms; longer waits are re-armed. */
function atTime(time: number, action: () => void): () => void {
  let timer: NodeJS.Timeout
  const arm = () => {
    timer = setTimeout(() => (Date.now() >= time ? action() : arm()), Math.min(Math.max(time - Date.now(), 0), 2 ** 31 - 1))
  }
  arm()
  return () => clearTimeout(timer)
}

/**
 * An error as Yoga serialises it over HTTP: without its internal extensions (`http`, the status
 * and headers of an HTTP response; `unexpected`, the mark of a masked error).
 */
function withoutInternals(error: GraphQLError | GraphQLFormattedError): GraphQLFormattedError {
  const formatted = error instanceof GraphQLError ? error.toJSON() : error
  if (!formatted.extensions || !('http' in formatted.extensions || 'unexpected' in formatted.extensions)) return formatted
  const { http: _http, unexpected: _unexpected, ...extensions } = formatted.extensions
  const { extensions: _all, ...rest } = formatted
  return Object.keys(extensions).length ? { ...rest, extensions } : rest
}

export function attachWebSocket(options: WebSocketTransportOptions): WebSocketTransport {
  const { yoga, logger, limits, authenticator } = options
  const server = new WebSocketServer({ noServer: true, maxPayload: limits.maxPayloadBytes })
  const counter = new ConnectionCounter()
  const rules = { path: options.path, allowedOrigins: options.allowedOrigins, ...limits }

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = checkUpgrade(request, rules, counter)
    if (refusal) {
      logger.debug({ ip: clientIp(request), ...refusal }, 'websocket upgrade refused')
      refuseUpgrade(socket, refusal)
      return
    }
    const uncount = counter.open(clientIp(request))
    socket.once('close', uncount)
    server.handleUpgrade(request, socket, head, (ws) => {
      ws.once('close', uncount)
      server.emit('connection', ws, request)
    })
  }
  options.httpServer.on('upgrade', onUpgrade)

  // Registered before graphql-ws's own listener, so these guards see every socket first.
  server.on('connection', (socket: WebSocket) => {
    screenMessages(socket, limits.maxMessagesPerSecond, logger)
    limitUnreadOutput(socket, limits.maxBufferedBytes)
  })

  useServer<Record<string, unknown>, ConnectionExtra>(
    {
      isProd: options.isProduction,
      connectionInitWaitTimeout: limits.connectionInitTimeoutMs,
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      onConnect: async (ctx) => {
        let viewer: Viewer
        try {
          viewer = await authenticator.authenticate(ctx.connectionParams?.authorization as string | undefined)
        } catch (error) {
          if (!(error instanceof AuthError)) throw error
          logger.debug({ reason: error.message }, 'websocket connection refused')
          return false // graphql-ws closes with 4403 Forbidden
        }
        const connectionId = randomUUID()
        Object.assign(ctx.extra, { connectionId, viewer, operations: new Map() })
        if (viewer.expiresAt !== undefined) {
          const socket = ctx.extra.socket
          const cancel = atTime(viewer.expiresAt, () => socket.close(CloseCode.Forbidden, 'Forbidden: credentials expired'))
          socket.once('close', cancel)
        }
        ctx.extra.opened = (async () => options.onConnectionOpen?.(connectionId))()
        await ctx.extra.opened
        logger.debug({ connectionId, role: viewer.role }, 'websocket connection acknowledged')
        return { connectionId }
      },
      // onClose, not onDisconnect: graphql-ws skips onDisconnect when the socket closes while
      // onConnect is still waiting, and the connection must be let go of in that case too.
      onClose: async (ctx) => {
        const { connectionId, opened } = ctx.extra
        if (!connectionId || !opened) return
        // If opening failed, the socket was closed 4500 for it; closing still cleans up after it.
        await opened.catch(() => {})
        try {
          await options.onConnectionClose?.(connectionId)
        } catch (err) {
          logger.error({ err, connectionId }, 'closing a connection failed')
        }
        logger.debug({ connectionId }, 'websocket connection closed')
      },
      onSubscribe: async (ctx, id, payload) => {
        const operations = ctx.extra.operations!
        if (operations.has(id)) {
          // The client completed this id and reused it before its operation wound down. graphql-ws
          // would then send a stray `complete` and lose track of the new operation, which would
          // outlive the socket (and escape the subscription limit). The id is still taken.
          ctx.extra.socket.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`)
          return [new GraphQLError(`Subscriber for ${id} already exists`)]
        }
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          connectionId: ctx.extra.connectionId,
          viewer: ctx.extra.viewer,
        })
        let document
        try {
          document = enveloped.parse(payload.query)
        } catch (error) {
          // A syntax error is the client's, not a protocol violation: answer it, keep the socket.
          return [error instanceof GraphQLError ? error : new GraphQLError(String(error))]
        }
        let errors: readonly GraphQLError[]
        try {
          errors = enveloped.validate(enveloped.schema, document)
        } catch (error) {
          // graphql-armor's depth and alias rules throw their GraphQLError rather than report it;
          // Yoga answers it over HTTP, and so must this: an error message, the socket kept.
          if (error instanceof GraphQLError) return [error]
          throw error
        }
        if (errors.length) return [...errors]
        const subscription = getOperationAST(document, payload.operationName)?.operation === 'subscription'
        if (subscription) {
          // A slot is free as soon as the client completes its subscription: graphql-ws forgets
          // the id at once, while the operation winds down (and onComplete runs) later.
          let active = 0
          for (const [known, operation] of operations) if (operation.subscription && known in ctx.subscriptions) active++
          if (active >= limits.maxSubscriptionsPerConnection) {
            return [new GraphQLError(`at most ${limits.maxSubscriptionsPerConnection} subscriptions per connection`, { extensions: { code: ErrorCode.RateLimited } })]
          }
        }
        operations.set(id, { payload, subscription })
        const args: ExecutionArgs = {
          schema: enveloped.schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue: await enveloped.contextFactory(),
          rootValue: enveloped,
        }
        return args
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors?.length ? { ...result, errors: result.errors.map(withoutInternals) } : undefined,
      // Only this operation's entry (a refused one has none).
      onComplete: (ctx, id, payload) => {
        if (ctx.extra.operations?.get(id)?.payload === payload) ctx.extra.operations.delete(id)
      },
      onError: (ctx, id, payload, errors) => {
        if (ctx.extra.operations?.get(id)?.payload === payload) ctx.extra.operations.delete(id)
        return errors.map(withoutInternals)
      },
    },
    server,
  )

  return {
    server,
    get connectionCount() {
      return counter.total
    },
    close: async (graceMs = 5000) => {
      options.httpServer.off('upgrade', onUpgrade)
      const open = [...server.clients]
      const closed = open.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())))
      server.close()
      for (const socket of open) socket.close(CloseCode.GoingAway, 'Server shutting down')
      const timer = setTimeout(() => open.forEach((socket) => socket.terminate()), graceMs)
      await Promise.all(closed)
      clearTimeout(timer)
    },
  }
}
