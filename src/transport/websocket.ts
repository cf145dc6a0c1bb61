/**
 * graphql-ws on a `ws` server, executing every operation through Yoga's envelop pipeline
 * (`yoga.getEnveloped`), so that parsing, validation, context, plugins and error masking are
 * the same as over HTTP.
 */
import { randomUUID } from 'node:crypto'
import type { Server } from 'node:http'
import type { ExecutionArgs } from 'graphql'
import { GraphQLError } from 'graphql'
import { useServer } from 'graphql-ws/use/ws'
import type { YogaServerInstance } from 'graphql-yoga'
import { WebSocketServer } from 'ws'
import type { Logger } from '../logger.ts'
import { CloseCode } from './close-codes.ts'

/** What mizzen adds to graphql-ws's per-connection `extra` (besides its `socket` and `request`). */
type ConnectionExtra = {
  connectionId?: string
  /** `onConnectionOpen` for this connection, so that closing waits for it to finish. */
  opened?: Promise<void>
}

type Enveloped = ReturnType<YogaServerInstance<Record<string, unknown>, Record<string, unknown>>['getEnveloped']>

export interface WebSocketTransport {
  readonly server: WebSocketServer
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

export function attachWebSocket(options: WebSocketTransportOptions): WebSocketTransport {
  const { yoga, logger } = options
  const server = new WebSocketServer({ server: options.httpServer, path: options.path })

  useServer<Record<string, unknown>, ConnectionExtra>(
    {
      isProd: options.isProduction,
      execute: (args) => (args.rootValue as Enveloped).execute(args),
      subscribe: (args) => (args.rootValue as Enveloped).subscribe(args),
      onConnect: async (ctx) => {
        const connectionId = randomUUID()
        ctx.extra.connectionId = connectionId
        ctx.extra.opened = (async () => options.onConnectionOpen?.(connectionId))()
        await ctx.extra.opened
        logger.debug({ connectionId }, 'websocket connection acknowledged')
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
      onSubscribe: async (ctx, _id, payload) => {
        const enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          connectionId: ctx.extra.connectionId,
        })
        let document
        try {
          document = enveloped.parse(payload.query)
        } catch (error) {
          // A syntax error is the client's, not a protocol violation: answer it, keep the socket.
          return [error instanceof GraphQLError ? error : new GraphQLError(String(error))]
        }
        const args: ExecutionArgs = {
          schema: enveloped.schema,
          operationName: payload.operationName ?? null,
          document,
          variableValues: payload.variables ?? null,
          contextValue: await enveloped.contextFactory(),
          rootValue: enveloped,
        }
        const errors = enveloped.validate(args.schema, args.document)
        return errors.length ? errors : args
      },
    },
    server,
  )

  return {
    server,
    close: async (graceMs = 5000) => {
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
