/**
 * The socket end of the fan-out (docs/performance.md, "The write path"): `next` frames written
 * as WebSocket frames straight to the TCP socket under `ws`, one write per socket per turn of the
 * event loop.
 *
 * - **One write per socket per turn.** The first frame a socket is due in a turn corks it, and one
 *   microtask, queued once per turn for every socket, uncorks them all when the code that
 *   delivered (a whole fan-out loop) has returned: what a socket was due in that turn leaves as one
 *   `writev`, and nothing waits past the turn it was produced in.
 * - **No copy per recipient.** A frame is four slices written in order: the WebSocket header (two,
 *   four or ten bytes, shared by every frame of that length), the operation's
 *   `{"id":…,"type":"next","payload":` (encoded once per operation), the group's payload (encoded
 *   once per result, shared by every member) and a shared `}`. The kernel copies them into the
 *   socket buffer; the process copies nothing.
 * - **No allocation per delivery** beyond the stream's own bookkeeping of a queued chunk.
 *
 * Why it is safe to write under `ws`: a server-sent frame is unmasked, and this path is taken only
 * for sockets without extensions (mizzen's server negotiates none: no permessage-deflate, so `ws`
 * never holds frames back in its own queue while it compresses). `ws` writes its own frames
 * (pong, close, the connection's other messages) to the same socket, so everything stays in the
 * order it was written; a frame is written only while the WebSocket is OPEN (never after `ws`
 * sent a close frame or ended the socket); and what is queued counts in `bufferedAmount`, which
 * the slow-consumer limit reads.
 */
import type { Socket } from 'node:net'
import type { WebSocket } from 'ws'

const FIN_TEXT = 0x81
const CLOSING_BRACE = Buffer.from('}')

/** The TCP socket of `socket` when frames may be written to it directly (see above), else undefined. */
export function directSocket(socket: WebSocket): Socket | undefined {
  const raw = (socket as WebSocket & { _socket?: Socket })._socket
  if (!raw || typeof raw.cork !== 'function' || socket.extensions !== '') return undefined
  return raw
}

// The header of the last length asked for: a fan-out writes frames of one length to every member
// of a group (those whose ids are equally long), so this is one header per result, not per frame.
let headerLength = -1
let header: Buffer = Buffer.alloc(0)

/** The header of an unmasked, final text frame of `length` bytes (RFC 6455 §5.2). Never modified once made. */
export function textFrameHeader(length: number): Buffer {
  if (length === headerLength) return header
  let made: Buffer
  if (length < 126) {
    made = Buffer.allocUnsafe(2)
    made[1] = length
  } else if (length < 0x10000) {
    made = Buffer.allocUnsafe(4)
    made[1] = 126
    made.writeUInt16BE(length, 2)
  } else {
    made = Buffer.allocUnsafe(10)
    made[1] = 127
    made.writeUInt32BE(Math.floor(length / 0x100000000), 2)
    made.writeUInt32BE(length >>> 0, 6)
  }
  made[0] = FIN_TEXT
  headerLength = length
  header = made
  return made
}

/** Sockets corked in this turn, uncorked together by one microtask. */
const corked: Socket[] = []
let uncorkQueued = false

function uncorkAll(): void {
  // An uncork may write (and fail) synchronously; a socket corked meanwhile joins this loop.
  for (let i = 0; i < corked.length; i++) corked[i]!.uncork()
  corked.length = 0
  uncorkQueued = false
}

/** Holds what `raw` is written until the current turn's code has returned (once per socket per turn). */
function holdForThisTurn(raw: Socket): void {
  if (raw.writableCorked !== 0) return
  raw.cork()
  corked.push(raw)
  if (!uncorkQueued) {
    uncorkQueued = true
    queueMicrotask(uncorkAll)
  }
}

/**
 * Writes the `next` frame `prefix` + `payload` + `}` to `raw` (a socket `directSocket` returned,
 * whose WebSocket is OPEN), to leave with whatever else it is due in this turn.
 */
export function writeNextFrame(raw: Socket, prefix: Buffer, payload: Buffer): void {
  holdForThisTurn(raw)
  raw.write(textFrameHeader(prefix.length + payload.length + 1))
  raw.write(prefix)
  raw.write(payload)
  raw.write(CLOSING_BRACE)
}
