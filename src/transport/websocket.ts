/**
 * The WebSocket endpoint: mizzen's own graphql-transport-ws server on `ws` (see connection.ts),
 * executing every operation through Yoga's envelop pipeline (see execution.ts), so that parsing,
 * validation (depth, aliases, tokens, introspection), context, auth and error masking are the
 * same as over HTTP, and subscriptions to the delivery hub take the grouped fast path. Upgrades
 * are checked before the handshake; each connection is authenticated at `connection_init`, and
 * limited in message rate, unread output and subscriptions.
 */
import type { IncomingMessage, Server } from 'node:http'
import type { Duplex } from 'node:stream'
import { handleProtocols } from 'graphql-ws'
import { WebSocketServer } from 'ws'
import type { Authenticator } from '../auth/authenticator.ts'
import type { DeliveryHub } from '../delivery/hub.ts'
import type { LiveQueries } from '../live/live-queries.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import { CloseCode } from '../errors.ts'
import { GatewaySocket, GraphQLWsConnection } from './connection.ts'
import { ExpirySchedule } from './expiry-schedule.ts'
import { KeepAlive } from './keep-alive.ts'
import { OperationRunner, yogaMaskError, type ViewerPartOf, type Yoga } from './execution.ts'
import type { Viewer } from '../auth/viewer.ts'
import type { Limits } from './limits.ts'
import { clientAddressResolver, type TrustProxy } from '../http/client-address.ts'
import { checkUpgrade, ConnectionCounter, forgetPeerAddress, refuseUpgrade } from './upgrade.ts'

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
  yoga: Yoga
  /** Where hub subscriptions (room, messages, model events) are grouped and delivered. */
  hub: DeliveryHub
  /** The policy-relevant part of a viewer for an operation, and the context of its group (see `ViewerPartOf`). */
  viewerPart: ViewerPartOf
  /** Where `query @live` operations are grouped and kept live. @default none: `@live` is answered once */
  live?: LiveQueries
  authenticator: Authenticator
  limits: Limits
  /** Allowed `Origin` values for upgrades; empty allows any. */
  allowedOrigins: readonly string[]
  logger: Logger
  /** Keeps internal error messages out of close reasons. */
  isProduction: boolean
  /** Counts slow consumers dropped. @default not counted */
  metrics?: Metrics
  /** Proxies whose X-Forwarded-For gives the client address (per-IP limit, logs). @default false */
  trustProxy?: TrustProxy
  /**
   * Called when a connection is acknowledged, before `connection_ack` is sent: once it resolves
   * the connection exists for the rest of the gateway. If it rejects, the socket is closed 4500.
   */
  onConnectionOpen?: (connectionId: string, viewer: Viewer) => Promise<void> | void
  /**
   * Called once when an acknowledged connection closes, after its subscriptions were returned
   * and after `onConnectionOpen` settled (even if the socket closed while it ran).
   */
  onConnectionClose?: (connectionId: string) => Promise<void> | void
}

export function attachWebSocket(options: WebSocketTransportOptions): WebSocketTransport {
  const { yoga, logger, limits } = options
  // No client tracking: `connections` holds every open connection already, and ws would keep a
  // Set entry and a close listener (a closure) of its own per socket besides.
  const server = new WebSocketServer({
    noServer: true,
    maxPayload: limits.maxPayloadBytes,
    handleProtocols,
    clientTracking: false,
    // Its sockets hand their events to their connections without listeners (see GatewaySocket).
    WebSocket: GatewaySocket,
    // Connections answer pings themselves (`GraphQLWsConnection.onPing`): with autoPong, `ws` keeps
    // a closure per socket (some 100 bytes with its scope: docs/performance.md).
    autoPong: false,
  })
  const counter = new ConnectionCounter()
  const clientIp = clientAddressResolver(options.trustProxy)
  const rules = { path: options.path, allowedOrigins: options.allowedOrigins, ...limits, clientAddress: clientIp }
  const mask = yogaMaskError(yoga)
  const connections = new Set<GraphQLWsConnection>()
  const connectionServer = {
    connections,
    runner: new OperationRunner(yoga, options.hub, mask, options.viewerPart, options.live),
    authenticator: options.authenticator,
    limits,
    logger,
    mask,
    isProduction: options.isProduction,
    metrics: options.metrics,
    onConnectionOpen: options.onConnectionOpen,
    onConnectionClose: options.onConnectionClose,
    onSocketClosed: (address: string) => counter.close(address),
    expiries: new ExpirySchedule<GraphQLWsConnection>(),
  }

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer) => {
    const refusal = checkUpgrade(request, rules, counter)
    if (refusal) {
      logger.debug({ ip: clientIp(request), ...refusal }, 'websocket upgrade refused')
      refuseUpgrade(socket, refusal)
      return
    }
    const address = clientIp(request)
    forgetPeerAddress(socket)
    counter.open(address)
    // Uncounted once, when its socket closes: until it is a WebSocket (an upgrade that fails
    // never becomes one), by this listener on the TCP socket; from then on by its connection,
    // so that an idle connection keeps no closure of its own for it.
    const uncount = () => counter.close(address)
    socket.on('close', uncount)
    server.handleUpgrade(request, socket, head, (ws: GatewaySocket) => {
      socket.off('close', uncount)
      void new GraphQLWsConnection(ws, connectionServer, address)
    })
  }
  options.httpServer.on('upgrade', onUpgrade)

  const keepAlive = new KeepAlive(connections, limits.keepAliveMs)

  return {
    server,
    get connectionCount() {
      return counter.total
    },
    close: async (graceMs = 5000) => {
      keepAlive.stop()
      connectionServer.expiries.clear()
      options.httpServer.off('upgrade', onUpgrade)
      const open = [...connections].map((connection) => connection.socket)
      const closed = open.map((socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())))
      server.close()
      for (const connection of connections) connection.close(CloseCode.GoingAway, 'Server shutting down')
      const timer = setTimeout(() => open.forEach((socket) => socket.terminate()), graceMs)
      await Promise.all(closed)
      clearTimeout(timer)
    },
  }
}
