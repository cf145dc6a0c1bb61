/**
 * Guards on each WebSocket, installed before graphql-ws sees it: what it may send (screened
 * messages, message rate) and how much it may leave unread (slow consumers).
 */
import type { WebSocket } from 'ws'
import type { Logger } from '../logger.ts'
import { CloseCode } from './close-codes.ts'

/**
 * Screens a connection's messages before graphql-ws sees them, and drops those it must not run:
 * - binary frames: graphql-transport-ws is a text protocol, so one closes the socket with 4400
 *   (graphql-ws itself would decode it as text and run it);
 * - more than `perSecond` messages (and WebSocket ping frames) in a second close it with 1008;
 * - once the socket is closing, whatever it still receives (the rest of a flood, or what follows
 *   a protocol violation) is dropped, so a socket refused for its input runs none of that input;
 * - a frame `ws` refuses (over maxPayload, invalid UTF-8, bad framing) is the client's fault: `ws`
 *   closes the socket (1009, 1007, 1002) and the error is logged at debug level, not handed to
 *   graphql-ws (which would print it to stderr as an internal error, once per hostile client).
 */
export function screenMessages(socket: WebSocket, perSecond: number, logger: Logger): void {
  let windowStart = Date.now()
  let count = 0
  const withinRate = () => {
    const now = Date.now()
    if (now - windowStart >= 1000) {
      windowStart = now
      count = 0
    }
    if (++count <= perSecond) return true
    if (socket.readyState === socket.OPEN) socket.close(CloseCode.PolicyViolation, 'Too many messages')
    return false
  }
  socket.on('ping', withinRate)
  const emit = socket.emit.bind(socket)
  socket.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event === 'error' && /^WS_ERR_/.test(String((args[0] as { code?: unknown } | undefined)?.code))) {
      logger.debug({ reason: (args[0] as Error).message }, 'websocket frame refused')
      return true
    }
    if (event !== 'message') return emit(event, ...args)
    if (socket.readyState !== socket.OPEN || !withinRate()) return false
    if (args[1] === true) {
      socket.close(CloseCode.BadRequest, 'Invalid message received')
      return false
    }
    return emit(event, ...args)
  }) as WebSocket['emit']
}

/**
 * Disconnects a consumer that leaves more than `maxBuffered` bytes unread, so memory stays bounded.
 *
 * graphql-ws waits for each message of a subscription to be flushed before it sends the next, so
 * the backlog of a client that stops reading would pile up in its subscriptions' queues, where no
 * limit sees it, and never in the socket's buffer. So a send is reported done as soon as it is
 * queued on the socket: the backlog builds up where `bufferedAmount` counts it, and the first
 * send that finds it over the limit drops the connection.
 */
export function limitUnreadOutput(socket: WebSocket, maxBuffered: number): void {
  type Callback = (err?: Error) => void
  const send = socket.send.bind(socket) as (data: unknown, options: object) => void
  socket.send = ((data: unknown, optionsOrCb?: object | Callback, cb?: Callback) => {
    const done = typeof optionsOrCb === 'function' ? optionsOrCb : cb
    if (socket.readyState === socket.OPEN) {
      if (socket.bufferedAmount > maxBuffered) {
        // The closing handshake would queue behind the unread data: drop the connection instead.
        socket.terminate()
      } else {
        send(data, typeof optionsOrCb === 'object' ? optionsOrCb : {})
      }
    }
    // Like graphql-ws's own send on a socket that is no longer open: nothing to wait for.
    if (done) process.nextTick(done)
  }) as WebSocket['send']
}
