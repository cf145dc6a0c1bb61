/**
 * Guards on each WebSocket: how much it may leave unread (slow consumers), and the clock its
 * connection keeps times with (its message rate's window lives in the connection itself).
 */

const EPOCH = Date.now()

/**
 * Milliseconds since this module loaded: for the times a connection keeps (when it opened, its
 * message rate's window). A small integer is held in the object's field itself, where a
 * `Date.now()` would be a number object of its own, 16 more bytes per field and connection
 * (it stays one for the first 24 days of a process; after that such numbers take the 16 bytes).
 * `Math.floor`: the difference of two such numbers is a number object too, even when whole.
 */
export const clock = () => Math.floor(Date.now() - EPOCH)

/**
 * Whether a connection has more than `maxBuffered` bytes waiting to reach its client (unread, or
 * held for the end of the turn), checked before each send: such a consumer is dropped so that
 * memory stays bounded. It is terminated, not closed: a close frame would wait behind the unread
 * data (the client sees 1006).
 */
export const overBuffered = (waitingBytes: number, maxBuffered: number) => waitingBytes > maxBuffered
