/**
 * The server's keep-alive (docs/architecture.md §9): every WebSocket is pinged once per period,
 * and one that has sent nothing (no pong, no message) for a whole period after its ping is
 * terminated: a client that vanished without closing, a half-open TCP connection.
 *
 * The sockets are pinged in slices spread over the period, not all in one turn. A `ping` is a
 * system call per socket: pinging the benchmark's 5,000 sockets in one turn took some 40 ms of
 * CPU, and with the 5,000 pongs read right after it, the message due next went out 125 ms late
 * (docs/performance.md, The write path); the cost grows with the sockets. graphql-ws and
 * Socket.IO keep a timer per socket, which spreads the pings by connection time; one timer for
 * all (docs/performance.md, What an idle connection holds) that visits a slice every quarter
 * second (one slice in all for periods under 375 ms) does the same without an object per
 * socket. A round begins a period after the one before, so each socket is pinged once per
 * period however few there are.
 *
 * The sockets are visited through a live iterator of the open connections, so a socket's place in
 * the round moves as others close and the time between two of its visits varies. Hence the
 * check is on the time of its own ping: it is terminated only once that ping is a period old,
 * never sooner, and at the latest some two periods after it.
 */
import { clock } from './socket-guards.ts'

/** What the keep-alive needs of a connection. */
export interface KeptAlive {
  /** `clock()` when its last unanswered ping was sent; 0 once the client sent anything since (or before the first ping). */
  pingedAt: number
  /** Sends a WebSocket ping, if the socket is open. */
  sendPing(): void
  /** Drops the socket; `why` goes to the close log line. */
  terminate(why: string): void
}

/** How often a slice is visited, ms: short enough that a slice is small, long enough to cost nothing. */
const TICK_MS = 250

export class KeepAlive<Connection extends KeptAlive> {
  readonly #connections: ReadonlySet<Connection>
  readonly #periodMs: number
  /** Visits per period: each visit takes this share of the connections. */
  readonly #slices: number
  readonly #timer: NodeJS.Timeout
  /** This round's place among the connections; undefined between rounds. */
  #round: Iterator<Connection> | undefined
  /** When the current (or last) round began, `clock()`: a round begins a period after the one before. */
  #roundStartedAt = Number.NEGATIVE_INFINITY

  constructor(connections: ReadonlySet<Connection>, periodMs: number) {
    this.#connections = connections
    this.#periodMs = periodMs
    this.#slices = Math.max(1, Math.round(periodMs / TICK_MS))
    this.#timer = setInterval(() => this.visitSlice(), periodMs / this.#slices)
    // The open sockets keep the process alive, not their keep-alive.
    this.#timer.unref()
  }

  /**
   * Visits the next share of the connections: pings those that answered since their last ping,
   * terminates those whose ping is a period old and unanswered. Public for tests (`now`).
   */
  visitSlice(now = clock()): void {
    if (this.#round === undefined) {
      // Each socket is pinged once per period, however few there are (with fewer sockets than
      // slices, a round is over in fewer visits than a period has).
      if (now - this.#roundStartedAt < this.#periodMs) return
      this.#round = this.#connections.values()
      this.#roundStartedAt = now
    }
    let count = Math.ceil(this.#connections.size / this.#slices)
    while (count-- > 0) {
      const next = this.#round.next()
      if (next.done) {
        this.#round = undefined
        return
      }
      this.#visit(next.value, now)
    }
  }

  #visit(connection: Connection, now: number): void {
    if (connection.pingedAt === 0) {
      // `clock()` is 0 only in the process's first millisecond; 0 means "answered".
      connection.pingedAt = Math.max(1, now)
      connection.sendPing()
    } else if (now - connection.pingedAt >= this.#periodMs) {
      connection.terminate('keep-alive timeout')
    }
  }

  stop(): void {
    clearInterval(this.#timer)
    this.#round = undefined
  }
}
