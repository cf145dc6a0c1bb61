/**
 * Guards on each WebSocket: what it may send (message rate) and how much it may leave unread
 * (slow consumers). The connection applies them to every frame in and out.
 */

/**
 * Messages (and WebSocket ping frames) a connection may send per second, counted in one-second
 * windows; past it, the connection is closed with 1008.
 */
export class MessageRate {
  #windowStart = Date.now()
  #count = 0

  constructor(private readonly perSecond: number) {}

  /** Counts one message; false once the connection is over its rate. */
  allow(): boolean {
    const now = Date.now()
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now
      this.#count = 0
    }
    return ++this.#count <= this.perSecond
  }
}

/**
 * Whether a connection has more than `maxBuffered` bytes waiting to reach its client (unread, or
 * held for the end of the turn), checked before each send: such a consumer is dropped so that
 * memory stays bounded. It is terminated, not closed: a close frame would wait behind the unread
 * data (the client sees 1006).
 */
export const overBuffered = (waitingBytes: number, maxBuffered: number) => waitingBytes > maxBuffered
