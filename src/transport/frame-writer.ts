/**
 * The socket end of the fan-out (docs/architecture.md §4, steps 6 and 7; docs/performance.md):
 * `next` frames built as WebSocket frames by the gateway and written to the TCP socket under
 * `ws`, everything a socket is due in one turn of the event loop as one write.
 *
 * - **One write per socket per turn.** A connection holds the frames it is due; the first one of a
 *   turn registers it, and one microtask per turn (queued once, for every connection) writes what
 *   each holds once the code that delivered (a whole fan-out loop) has returned. Nothing waits
 *   past the turn it was produced in.
 * - **One buffer per frame, nothing else.** A frame is the WebSocket header, the operation's
 *   `{"id":…,"type":"next","payload":` (encoded once per operation), the group's payload (encoded
 *   once per result) and `}`, copied into one buffer: no `ws` option objects, no header buffer, no
 *   UTF-8 encoding per recipient. Why a copy rather than handing the shared payload to the socket
 *   as a slice of a `writev`: Node's stream keeps a record per chunk and more per corked write; a
 *   four-slice corked frame allocates some 845 bytes of heap, one copied buffer corked 670, one
 *   copied buffer written at once 320 (`bench/write-strategies.ts`), and copying 200 bytes costs
 *   less than any of that bookkeeping.
 *
 * Why it is safe to write under `ws`: a server-sent frame is unmasked, and this path is taken only
 * for sockets without extensions (mizzen's server negotiates none: no permessage-deflate, so `ws`
 * never holds frames back in its own queue while it compresses). The connection writes what it
 * holds before anything it sends through `ws` (complete, error, pong, close), so its messages keep
 * their order; a frame is written only while the WebSocket is OPEN (never after `ws` sent a close
 * frame or ended the socket); what is written counts in `bufferedAmount`, and what is held is
 * counted by the connection, so the slow-consumer limit sees both.
 */
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'

const FIN_TEXT = 0x81
const CLOSING_BRACE = 0x7d

/** The TCP socket of `socket` when frames may be written to it directly (see above), else undefined. */
export function directSocket(socket: WebSocket): Socket | undefined {
  const raw = (socket as WebSocket & { _socket?: Socket })._socket
  if (!raw || typeof raw.write !== 'function' || socket.extensions !== '') return undefined
  return raw
}

/** The header's length for a payload of `length` bytes (RFC 6455 §5.2: 7-bit, 16-bit or 64-bit length). */
const headerLength = (length: number) => (length < 126 ? 2 : length < 0x10000 ? 4 : 10)

/** Writes the header of an unmasked, final text frame of `length` bytes at `offset`; returns where it ends. */
export function writeTextFrameHeader(into: Buffer, offset: number, length: number): number {
  into[offset] = FIN_TEXT
  if (length < 126) {
    into[offset + 1] = length
    return offset + 2
  }
  if (length < 0x10000) {
    into[offset + 1] = 126
    into.writeUInt16BE(length, offset + 2)
    return offset + 4
  }
  into[offset + 1] = 127
  into.writeUInt32BE(Math.floor(length / 0x100000000), offset + 2)
  into.writeUInt32BE(length >>> 0, offset + 6)
  return offset + 10
}

/** The WebSocket frame of the `next` message `prefix` + `payload` + `}`, in one buffer. */
export function nextWebSocketFrame(prefix: Buffer, payload: Buffer): Buffer {
  const length = prefix.length + payload.length + 1
  const frame = Buffer.allocUnsafe(headerLength(length) + length)
  const start = writeTextFrameHeader(frame, 0, length)
  prefix.copy(frame, start)
  payload.copy(frame, start + prefix.length)
  frame[frame.length - 1] = CLOSING_BRACE
  return frame
}

/** What holds frames until the end of the turn. */
export interface HoldsFrames {
  /** Writes what it holds (called once per turn in which it held something). */
  writeHeld(): void
}

/**
 * Connections holding frames in this turn, written by one microtask: the first `held` slots. The
 * array keeps its size from turn to turn (a fan-out to 20,000 sockets would otherwise grow it
 * again every turn); slots are cleared once written, so it keeps no connection alive.
 */
const holding: (HoldsFrames | undefined)[] = []
let held = 0
let writeQueued = false

function writeAllHeld(): void {
  // A connection that holds a frame while this runs (a write failing synchronously and closing
  // a connection whose close delivers something) joins this loop.
  for (let i = 0; i < held; i++) {
    const holder = holding[i]!
    holding[i] = undefined
    holder.writeHeld()
  }
  held = 0
  writeQueued = false
}

/** Has `holder.writeHeld()` called once the code running in this turn has returned. Once per turn per holder. */
export function writeAtEndOfTurn(holder: HoldsFrames): void {
  holding[held++] = holder
  if (!writeQueued) {
    writeQueued = true
    queueMicrotask(writeAllHeld)
  }
}
