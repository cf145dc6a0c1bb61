/**
 * One WebSocket connection speaking graphql-transport-ws
 * (https://github.com/enisdenjo/graphql-ws/blob/master/PROTOCOL.md): the protocol's state
 * machine, its operations, and its output queue.
 *
 * Messages are handled as they arrive, each in turn up to its first wait (so refusals and
 * limits apply in the client's order); operations then run concurrently. Results leave in the
 * order they were produced: a result still being executed (a relation read from the database)
 * holds back those queued after it on the same connection. A frame is written only while the
 * socket is open, only for an operation the client has not completed, and not at all once the
 * client leaves more than `maxBufferedBytes` unread (then the socket is terminated).
 */
import type { Socket } from 'node:net'
import type { GraphQLError } from 'graphql'
import { GRAPHQL_TRANSPORT_WS_PROTOCOL, MessageType, parseMessage, type SubscribePayload } from 'graphql-ws'
import { WebSocket, type RawData } from 'ws'
import { AuthError, type Authenticator } from '../auth/authenticator.ts'
import { newId } from '../ids.ts'
import type { Viewer } from '../auth/viewer.ts'
import type { Rendering, RenderingWaiter } from '../delivery/rendering.ts'
import { CloseCode, clientErrorsJson, rateLimited } from '../errors.ts'
import type { Logger } from '../logger.ts'
import type { Metrics } from '../metrics.ts'
import type { OperationRunner, OperationSink, Stoppable } from './execution.ts'
import { directSocket, nextWebSocketFrame, writeAtEndOfTurn, type HoldsFrames } from './frame-writer.ts'
import type { ExpirySchedule } from './expiry-schedule.ts'
import { completeFrame, errorFrame, errorsJson, nextFrame, nextPrefix, type MaskError } from './frames.ts'
import type { Limits } from './limits.ts'
import { clock, overBuffered } from './socket-guards.ts'

const OPEN = 1 // WebSocket.OPEN
/** graphql-transport-ws is a text protocol: bytes go out as text frames. */
const TEXT = { binary: false } as const

/** What every connection of one server shares. */
export interface ConnectionServer {
  readonly runner: OperationRunner
  /** Every open connection: each adds itself when made and leaves when its socket closes. */
  readonly connections: Set<GraphQLWsConnection>
  readonly authenticator: Authenticator
  readonly limits: Limits
  readonly logger: Logger
  readonly mask: MaskError
  readonly isProduction: boolean
  /** Counts slow consumers dropped. @default not counted */
  readonly metrics?: Metrics
  /** Called when a connection is acknowledged, before `connection_ack`; if it rejects, the socket is closed 4500. */
  readonly onConnectionOpen?: (connectionId: string, viewer: Viewer) => Promise<void> | void
  /** Called once when an acknowledged connection closes, after its operations were stopped and `onConnectionOpen` settled. */
  readonly onConnectionClose?: (connectionId: string) => Promise<void> | void
  /** Called once when the socket has closed, with the connection's address (the per-IP count). */
  readonly onSocketClosed?: (address: string) => void
  /** When each connection's credentials expire: one timer for all of them. */
  readonly expiries: ExpirySchedule<GraphQLWsConnection>
}

/**
 * The server's WebSocket class (`ws`'s `WebSocket` option): it hands its events to its
 * connection itself, instead of through listeners. Five listeners grow a socket's listener
 * table by some 100 bytes, kept for its life (docs/performance.md, What an idle connection
 * holds); listeners added by others (the server's shutdown) still run, after the connection.
 */
export class GatewaySocket extends WebSocket {
  connection: GraphQLWsConnection | undefined = undefined

  override emit(event: string | symbol, ...args: unknown[]): boolean {
    const connection = this.connection
    if (connection !== undefined) {
      switch (event) {
        case 'message':
          connection.onMessage(args[0] as RawData, args[1] as boolean)
          break
        case 'ping':
          connection.onPing(args[0] as Buffer)
          break
        case 'pong':
          connection.pingedAt = 0
          break
        case 'error':
          connection.onError(args[0] as Error)
          // Handled: an 'error' without listeners would throw.
          return this.listenerCount('error') > 0 ? super.emit(event, ...args) : true
        case 'close':
          void connection.onClose(args[0] as number, args[1] as Buffer)
          break
      }
      if (event === 'message' || event === 'ping' || event === 'pong') releaseReadQueue(this)
    }
    return super.emit(event, ...args)
  }
}

/**
 * Lets go of the storage of `ws`'s queue of received chunks once it is empty: an array that held
 * a chunk keeps room for 17 (some 150 bytes) until it is emptied by setting its length, and a
 * connection that received anything would keep it while idle (docs/performance.md, What an idle
 * connection holds). `ws` only pushes to and takes from that queue, so this changes nothing else.
 */
function releaseReadQueue(socket: WebSocket): void {
  const queue = (socket as WebSocket & { _receiver?: { _buffers?: unknown } })._receiver?._buffers
  if (Array.isArray(queue) && queue.length === 0) queue.length = 0
}

function initTimedOut(connection: GraphQLWsConnection): void {
  connection.initTimedOut()
}

/** A queued output: a result (once rendered), or the end of an operation. */
type Slot =
  | { readonly operation: Operation; readonly rendering: Rendering }
  | { readonly operation: Operation; readonly rendering?: undefined }

/** Where a connection is in the protocol: before `connection_init`, authenticating, acknowledged. */
const AWAITING_INIT = 0
const OPENING = 1
const ACKNOWLEDGED = 2

/** Bits of `Operation.#flags`. */
const CANCELLED = 1
const FINISHED = 2
const STARTED = 4
const COUNTED = 8

/**
 * One operation of the connection, from its `subscribe` until it has wound down; the sink its
 * results (and, on the fast path, its hub subscription's) go to.
 */
class Operation implements OperationSink {
  /** `{"id":…,"type":"next","payload":` for this operation's frames, encoded at its first. */
  #prefix: Buffer | undefined
  /** Its four states below as bits of one field (a gateway holds an operation per subscribed connection). */
  #flags: number
  #running: Stoppable | undefined

  constructor(
    private readonly connection: GraphQLWsConnection,
    readonly id: string,
    subscription: boolean,
  ) {
    this.#flags = subscription ? COUNTED : 0
  }

  /** The client completed it, or the socket closed: nothing more is sent for it. */
  get cancelled(): boolean {
    return (this.#flags & CANCELLED) !== 0
  }
  set cancelled(on: boolean) {
    this.#flag(CANCELLED, on)
  }

  /** `complete` or `error` was sent: nothing more is sent for it. */
  get finished(): boolean {
    return (this.#flags & FINISHED) !== 0
  }
  set finished(on: boolean) {
    this.#flag(FINISHED, on)
  }

  /** Its `run` settled (its subscription, if any, started or failed). */
  get started(): boolean {
    return (this.#flags & STARTED) !== 0
  }
  set started(on: boolean) {
    this.#flag(STARTED, on)
  }

  /** Counted against the connection's subscription limit. */
  get counted(): boolean {
    return (this.#flags & COUNTED) !== 0
  }
  set counted(on: boolean) {
    this.#flag(COUNTED, on)
  }

  #flag(flag: number, on: boolean): void {
    this.#flags = on ? this.#flags | flag : this.#flags & ~flag
  }

  get prefix(): Buffer {
    return (this.#prefix ??= Buffer.from(nextPrefix(this.id)))
  }

  next(rendering: Rendering): void {
    this.connection.sendNext(this, rendering)
  }

  complete(): void {
    this.connection.enqueue({ operation: this })
  }

  error(json: string): void {
    this.connection.fail(this, json)
  }

  stopWith(running: Stoppable): void {
    this.#running = running
  }

  /**
   * Stops what the operation runs; resolves once it wound down. Never rejects: a source that
   * fails to stop is logged, and the connection's close goes on (its memberships and presence
   * still released, its close still logged; a rejection here would have stopped both, and an
   * unhandled one the process).
   */
  stop(): Promise<void> {
    const running = this.#running
    this.#running = undefined
    return running
      ? running.cancel().catch((error: unknown) => this.connection.stopFailed(this, error))
      : Promise.resolve()
  }
}

export class GraphQLWsConnection implements RenderingWaiter, HoldsFrames {
  #phase = AWAITING_INIT
  #connectionId: string | undefined
  #viewer: Viewer | undefined
  /** The connection's opening (authentication, then `onConnectionOpen`) while it is under way. */
  #opened: Promise<void> | undefined
  /**
   * Operations from their `subscribe` until they wound down: usually one, kept as itself (it
   * carries its id); a Map by id from the second on (docs/performance.md, What an idle
   * connection holds).
   */
  #operations: Operation | Map<string, Operation> | undefined
  #activeSubscriptions = 0
  /** Output waiting behind a result still being rendered (made when first needed). */
  #queue: Slot[] | undefined
  /**
   * Messages (and WebSocket ping frames) the client may send per second, counted in one-second
   * windows (past it: 1008): when this window started (`clock()`), and what it counted.
   */
  #rateWindowStart = clock()
  #rateCount = 0
  /**
   * The wait for `connection_init`, run by a shared function (no closure of its own). The expiry
   * of its credentials is kept by the server's `expiries`, with one timer for every connection.
   */
  #timer: NodeJS.Timeout | undefined
  /** When the socket opened, `clock()` (for the close log line). */
  readonly #openedAt = clock()
  /** Why the server closed or terminated the socket; undefined while the client is the one closing. */
  #closing: string | undefined
  /** For the server's keep-alive (keep-alive.ts): when its unanswered ping was sent, `clock()`; 0 once anything came since. */
  pingedAt = 0
  /** The TCP socket `next` frames are written to directly (see frame-writer.ts); undefined: through `ws`. */
  readonly #direct: Socket | undefined
  /** `next` frames held until the end of this turn, to leave in one write: one, or several in order. */
  #held: Buffer | Buffer[] | undefined
  #heldBytes = 0

  // An idle connection is what a gateway holds thousands of: it keeps a few fields, and its
  // socket hands it its events (GatewaySocket: no listeners, no closures of its own).
  constructor(
    readonly socket: GatewaySocket,
    private readonly server: ConnectionServer,
    /** The client's address (behind trusted proxies, from X-Forwarded-For), for the logs. */
    readonly address: string,
  ) {
    this.#direct = directSocket(socket)
    server.connections.add(this)
    socket.connection = this
    // ws accepts the upgrade of a client that offered no protocol it knows (the handshake then
    // fails on clients that offered some; one that offered none sees this close).
    if (socket.protocol !== GRAPHQL_TRANSPORT_WS_PROTOCOL) {
      this.close(CloseCode.SubprotocolNotAcceptable, 'Subprotocol not acceptable')
      return
    }
    this.#timer = setTimeout(initTimedOut, server.limits.connectionInitTimeoutMs, this)
  }

  /** No `connection_init` in time: 4408. */
  initTimedOut(): void {
    if (this.#phase === AWAITING_INIT)
      this.close(CloseCode.ConnectionInitialisationTimeout, 'Connection initialisation timeout')
  }

  /** Its credentials expired (the server's `expiries` says when): 4403. */
  expire(): void {
    this.close(CloseCode.Forbidden, 'Forbidden: credentials expired')
  }

  get connectionId(): string | undefined {
    return this.#connectionId
  }

  // ---- input --------------------------------------------------------------------------------

  /**
   * Screens each message before it runs: once the socket is closing nothing more runs (the rest
   * of a flood, what follows a protocol violation); past the rate it closes with 1008; a binary
   * frame closes it with 4400 (graphql-transport-ws is a text protocol).
   */
  onMessage(data: RawData, isBinary: boolean): void {
    if (this.socket.readyState !== this.socket.OPEN) return
    this.pingedAt = 0
    if (!this.#allowMessage()) return this.close(CloseCode.PolicyViolation, 'Too many messages')
    if (isBinary) return this.close(CloseCode.BadRequest, 'Invalid message received')
    let message
    try {
      message = parseMessage(String(data))
    } catch {
      return this.close(CloseCode.BadRequest, 'Invalid message received')
    }
    try {
      this.#handle(message)
    } catch (error) {
      this.#internalError(error)
    }
  }

  #handle(message: ReturnType<typeof parseMessage>): void {
    switch (message.type) {
      case MessageType.ConnectionInit:
        return this.#init(message.payload)
      case MessageType.Ping:
        return this.#send(
          JSON.stringify(
            message.payload ? { type: MessageType.Pong, payload: message.payload } : { type: MessageType.Pong },
          ),
        )
      case MessageType.Pong:
        return
      case MessageType.Subscribe:
        return this.#subscribe(message.id, message.payload)
      case MessageType.Complete:
        return this.#complete(message.id)
      default:
        // connection_ack, next and error are the server's to send.
        return this.close(CloseCode.BadRequest, 'Invalid message received')
    }
  }

  /** Counts one message against the rate; false once the client is over it. */
  #allowMessage(): boolean {
    const now = clock()
    if (now - this.#rateWindowStart >= 1000) {
      this.#rateWindowStart = now
      this.#rateCount = 0
    }
    return ++this.#rateCount <= this.server.limits.maxMessagesPerSecond
  }

  /**
   * WebSocket ping frames count against the message rate too. The pong is sent here, not by `ws`
   * (the server turns its `autoPong` off: it keeps a closure per socket for it), after what is
   * held, and only to a client that keeps up with its output.
   */
  onPing(data: Buffer): void {
    this.pingedAt = 0
    if (this.socket.readyState !== OPEN) return
    if (!this.#allowMessage()) return this.close(CloseCode.PolicyViolation, 'Too many messages')
    this.writeHeld()
    if (this.#writable()) this.socket.pong(data, false)
  }

  /**
   * A frame `ws` refuses (over maxPayload, invalid UTF-8, bad framing) is the client's fault: `ws`
   * closes the socket (1009, 1007, 1002) and it is logged at debug level, once per hostile client.
   */
  onError(error: Error & { code?: unknown }): void {
    if (/^WS_ERR_/.test(String(error.code))) {
      this.server.logger.debug({ reason: error.message }, 'websocket frame refused')
      // `ws` closes the socket itself: the close is logged as the server's, with this reason.
      this.#closing ??= error.message
      return
    }
    this.server.logger.error({ err: error, connectionId: this.#connectionId }, 'websocket error')
    this.terminate('websocket error')
  }

  #init(payload: Record<string, unknown> | undefined): void {
    if (this.#phase !== AWAITING_INIT)
      return this.close(CloseCode.TooManyInitialisationRequests, 'Too many initialisation requests')
    this.#phase = OPENING
    clearTimeout(this.#timer)
    this.#timer = undefined
    this.#opened = this.#open(payload?.authorization)
  }

  /** Opens the connection; its promise is let go once settled (an idle connection keeps none). */
  async #open(authorization: unknown): Promise<void> {
    try {
      await this.#opening(authorization)
    } finally {
      this.#opened = undefined
    }
  }

  async #opening(authorization: unknown): Promise<void> {
    const { authenticator, logger } = this.server
    let viewer: Viewer
    try {
      viewer = await authenticator.authenticate(authorization as string | undefined)
    } catch (error) {
      if (error instanceof AuthError) {
        logger.debug({ reason: error.message }, 'websocket connection refused')
        this.close(CloseCode.Forbidden, 'Forbidden')
      } else {
        this.#internalError(error)
      }
      return
    }
    if (this.socket.readyState !== this.socket.OPEN) return
    const connectionId = newId()
    this.#connectionId = connectionId
    this.#viewer = viewer
    if (viewer.expiresAt !== undefined) this.server.expiries.add(this, viewer.expiresAt)
    try {
      await this.server.onConnectionOpen?.(connectionId, viewer)
    } catch (error) {
      // Closing still runs onConnectionClose, which cleans up after a half-made opening.
      this.#internalError(error)
      return
    }
    if (this.socket.readyState !== this.socket.OPEN) return
    this.#phase = ACKNOWLEDGED
    this.#send(JSON.stringify({ type: MessageType.ConnectionAck, payload: { connectionId } }))
    logger.info({ connectionId, role: viewer.role, userId: viewer.id, ip: this.address }, 'websocket connection opened')
  }

  #subscribe(id: string, payload: SubscribePayload): void {
    if (this.#phase !== ACKNOWLEDGED) return this.close(CloseCode.Unauthorized, 'Unauthorized')
    // Also an id the client completed whose operation has not wound down yet (a room still being
    // left): the id is taken until then, so that two operations never answer to one id.
    if (this.#operation(id)) return this.close(CloseCode.SubscriberAlreadyExists, `Subscriber for ${id} already exists`)
    const { runner, limits } = this.server
    const prepared = runner.prepare(
      { params: payload, connectionId: this.#connectionId, viewer: this.#viewer },
      payload,
    )
    if (Array.isArray(prepared))
      return this.#send(errorFrame(id, errorsJson(prepared as readonly GraphQLError[], this.server.mask)))
    const { operation: definition, live } = prepared as Exclude<typeof prepared, readonly GraphQLError[]>
    // A live query streams results as a subscription does, and counts as one.
    const subscription = definition.operation === 'subscription' || live !== undefined
    // A slot is free as soon as the client completes its subscription, while it winds down.
    if (subscription && this.#activeSubscriptions >= limits.maxSubscriptionsPerConnection) {
      const refused = rateLimited(`at most ${limits.maxSubscriptionsPerConnection} subscriptions per connection`)
      return this.#send(errorFrame(id, clientErrorsJson(refused)))
    }
    const operation = new Operation(this, id, subscription)
    this.#addOperation(operation)
    if (subscription) this.#activeSubscriptions++
    runner
      .run(prepared as Exclude<typeof prepared, readonly GraphQLError[]>, operation)
      .catch((error: unknown) => {
        // The operation's own errors are results; this is a bug in the server.
        this.server.logger.error({ err: error, connectionId: this.#connectionId }, 'websocket operation failed')
        if (!operation.cancelled && !operation.finished) this.fail(operation, errorsJson([error], this.server.mask))
      })
      .finally(() => {
        operation.started = true
        if (operation.cancelled) this.#windDown(operation)
      })
  }

  /** The client completes an operation: nothing more is sent for it; its id is free once it wound down. */
  #complete(id: string): void {
    const operation = this.#operation(id)
    if (!operation || operation.cancelled) return
    this.#cancel(operation)
    if (operation.started) this.#windDown(operation)
  }

  #cancel(operation: Operation): void {
    operation.cancelled = true
    this.#uncount(operation)
  }

  #windDown(operation: Operation): Promise<void> {
    return operation.stop().then(() => this.#forget(operation))
  }

  #uncount(operation: Operation): void {
    if (!operation.counted) return
    operation.counted = false
    this.#activeSubscriptions--
  }

  #forget(operation: Operation): void {
    this.#uncount(operation)
    const operations = this.#operations
    if (operations === operation) this.#operations = undefined
    else if (operations instanceof Map && operations.get(operation.id) === operation) operations.delete(operation.id)
  }

  #operation(id: string): Operation | undefined {
    const operations = this.#operations
    if (operations instanceof Map) return operations.get(id)
    return operations?.id === id ? operations : undefined
  }

  #addOperation(operation: Operation): void {
    const operations = this.#operations
    if (operations === undefined) this.#operations = operation
    else if (operations instanceof Map) operations.set(operation.id, operation)
    else
      this.#operations = new Map([
        [operations.id, operations],
        [operation.id, operation],
      ])
  }

  // ---- output -------------------------------------------------------------------------------

  /** The hot path: a result sent at once when nothing waits before it (no allocation), queued otherwise. */
  sendNext(operation: Operation, rendering: Rendering): void {
    if (!this.#queue?.length && rendering.json !== undefined) {
      if (!operation.cancelled && !operation.finished) this.#sendNext(operation.prefix, rendering.bytes)
      return
    }
    this.enqueue({ operation, rendering })
  }

  /** Queues a result or an end, and sends what is ready, in order. */
  enqueue(slot: Slot): void {
    const queue = this.#queue
    if (!queue?.length && (!slot.rendering || slot.rendering.ready)) {
      this.#emit(slot)
      return
    }
    if (!queue) this.#queue = [slot]
    else queue.push(slot)
    if (this.#queue!.length === 1) this.#flush()
  }

  /** A rendering this connection waited for is ready. */
  rendered(): void {
    this.#flush()
  }

  #flush(): void {
    const queue = this.#queue
    while (queue && queue.length > 0) {
      const head = queue[0]!
      if (head.rendering && !head.rendering.ready) {
        head.rendering.wait(this)
        return
      }
      queue.shift()
      this.#emit(head)
    }
  }

  #emit({ operation, rendering }: Slot): void {
    if (operation.cancelled || operation.finished) return
    if (!rendering) {
      operation.finished = true
      this.#forget(operation)
      this.#send(completeFrame(operation.id))
    } else if (rendering.failure !== undefined) {
      this.fail(operation, rendering.failure)
    } else {
      this.#sendNext(operation.prefix, rendering.bytes)
    }
  }

  /** Sends an `error` for the operation, which ends (its subscription, if any, is stopped). */
  fail(operation: Operation, json: string): void {
    if (operation.cancelled || operation.finished) return
    operation.finished = true
    this.#send(errorFrame(operation.id, json))
    // Stopped (nothing more to send) and forgotten at once: the client may reuse the id now.
    this.#forget(operation)
    void operation.stop()
  }

  /**
   * Sends a `next` frame, built as a WebSocket frame and held to leave with whatever else the
   * socket is due in this turn, in one write at its end (frame-writer.ts).
   */
  #sendNext(prefix: Buffer, payload: Buffer): void {
    if (!this.#direct) return this.#send(nextFrame(prefix, payload))
    if (!this.#writable()) return
    const frame = nextWebSocketFrame(prefix, payload)
    const held = this.#held
    if (held === undefined) {
      this.#held = frame
      writeAtEndOfTurn(this)
    } else if (Array.isArray(held)) held.push(frame)
    else this.#held = [held, frame]
    this.#heldBytes += frame.length
  }

  /** Writes the frames held in this turn (at its end, or before anything else is sent), in one write. */
  writeHeld(): void {
    const held = this.#held
    if (held === undefined) return
    this.#held = undefined
    this.#heldBytes = 0
    if (this.socket.readyState === OPEN) this.#direct!.write(Array.isArray(held) ? Buffer.concat(held) : held)
  }

  /** Sends one message through `ws` (a text frame, whether given as a string or as UTF-8 bytes), after what is held. */
  #send(message: string | Buffer): void {
    this.writeHeld()
    if (this.#writable()) this.socket.send(message, TEXT)
  }

  /**
   * Whether a frame may be written now: the socket is open, and its client keeps up: what it
   * left unread and what is held for it in this turn stay within the limit (else it is dropped).
   */
  #writable(): boolean {
    const socket = this.socket
    if (socket.readyState !== OPEN) return false
    if (overBuffered(socket.bufferedAmount + this.#heldBytes, this.server.limits.maxBufferedBytes)) {
      this.server.metrics?.dropped('slow_consumer')
      this.terminate('slow consumer')
      return false
    }
    return true
  }

  // ---- closing ------------------------------------------------------------------------------

  /** The server closes the connection (a protocol error, a refusal, shutdown): logged as closed by the server. */
  close(code: number, reason: string): void {
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      // What was sent before the close leaves before it.
      this.writeHeld()
      this.#closing ??= reason
      this.socket.close(code, reason)
    }
  }

  /** A WebSocket ping for the server's keep-alive, while the socket is open. */
  sendPing(): void {
    if (this.socket.readyState === this.socket.OPEN) this.socket.ping()
  }

  /** Drops the socket without a closing handshake (the client sees 1006); `why` goes to the close log line. */
  terminate(why: string): void {
    this.#held = undefined
    this.#heldBytes = 0
    if (this.socket.readyState !== this.socket.CLOSED) this.#closing ??= why
    this.socket.terminate()
  }

  /** An operation's source failed to stop (Operation.stop). */
  stopFailed(operation: Operation, error: unknown): void {
    this.server.logger.error(
      { err: error, connectionId: this.#connectionId, operationId: operation.id },
      'stopping an operation failed',
    )
  }

  #internalError(error: unknown): void {
    this.server.logger.error({ err: error, connectionId: this.#connectionId }, 'websocket connection failed')
    const message = error instanceof Error ? error.message : String(error)
    this.close(
      CloseCode.InternalServerError,
      this.server.isProduction || message.length >= 124 ? 'Internal server error' : message,
    )
  }

  /** Stops every operation, then lets go of the connection (once its opening settled), and logs its close. */
  async onClose(code: number, reason: Buffer): Promise<void> {
    this.server.connections.delete(this)
    this.server.onSocketClosed?.(this.address)
    clearTimeout(this.#timer)
    const expiresAt = this.#viewer?.expiresAt
    if (expiresAt !== undefined) this.server.expiries.delete(this, expiresAt)
    this.#queue = undefined
    const held = this.#operations
    const operations = held === undefined ? [] : held instanceof Map ? [...held.values()] : [held]
    for (const operation of operations) this.#cancel(operation)
    await Promise.all(operations.filter((operation) => operation.started).map((operation) => this.#windDown(operation)))
    const connectionId = this.#connectionId
    if (connectionId) {
      await this.#opened?.catch(() => {})
      try {
        await this.server.onConnectionClose?.(connectionId)
      } catch (err) {
        this.server.logger.error({ err, connectionId }, 'closing a connection failed')
      }
    }
    // One line per socket, acknowledged or not (a refused or timed-out one has no id). `code` is
    // the closing handshake's (1006 when a side dropped the socket without one); `reason` the
    // server's when it closed or dropped it, else the client's; `closedBy` who started it.
    const text = this.#closing ?? (reason.length ? reason.toString() : undefined)
    this.server.logger.info(
      {
        connectionId,
        role: this.#viewer?.role,
        ip: this.address,
        code,
        reason: text || undefined,
        closedBy: this.#closing === undefined ? 'client' : 'server',
        durationMs: clock() - this.#openedAt,
      },
      'websocket connection closed',
    )
  }
}
