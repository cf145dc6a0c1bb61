/**
 * The marks a bus hands its listeners with each message, and the cursors made from them.
 *
 * A process's position in a topic is `position`: every entry of the topic's log up to it has
 * been delivered here (or came before this process subscribed). Its own messages are delivered
 * before the log places them, so a mark also carries `ownSeen`, the highest sequence number of
 * this process's own messages delivered on the topic that the log has not shown back yet.
 */
import type { Mark } from './bus.ts'
import { formatCursor, historyHash } from './cursor.ts'
import type { StreamId } from './stream-id.ts'

/** What every cursor of one bus instance shares. */
export interface CursorContext {
  /** The deployment and history epoch (changes when Redis loses its data). */
  readonly tag: string
  /** This process's origin id. */
  readonly origin: string
}

const nothingSeen: ReadonlyMap<string, number> = new Map()

export class DeliveryMark implements Mark {
  /** The epoch the position belongs to, as the process knew it when it delivered the message. */
  readonly #tag: string
  readonly #self: string
  #key: string | undefined
  #cursor = ''

  constructor(
    context: CursorContext,
    readonly topic: string,
    readonly id: StreamId | undefined,
    readonly origin: string,
    readonly seq: number,
    /** This process's position in the topic's log when it delivered the message. */
    readonly position: StreamId,
    /** This process's own last message on the topic, when the log has not shown it back yet. */
    readonly ownSeen: number | undefined,
  ) {
    this.#tag = context.tag
    this.#self = context.origin
  }

  cursor(key: string = this.topic): string {
    // Every subscriber of a message (a model's, a room's) gets the same cursor: make it once.
    if (key !== this.#key) {
      this.#cursor = formatCursor({
        tag: this.#tag,
        history: historyHash(this.topic, key),
        position: this.position,
        seen: this.ownSeen === undefined ? nothingSeen : new Map([[this.#self, this.ownSeen]]),
      })
      this.#key = key
    }
    return this.#cursor
  }
}

/** A mark whose cursor is fixed (a replayed message: one subscription, one history). */
export class FixedMark implements Mark {
  #cursor: string | undefined

  constructor(
    readonly id: StreamId | undefined,
    readonly origin: string,
    readonly seq: number,
    readonly makeCursor: () => string,
  ) {}

  cursor(): string {
    return (this.#cursor ??= this.makeCursor())
  }
}

/** Whether a message comes from a replay (its cursor is the replaying subscription's own), not live. */
export const isReplayed = (mark: Mark): boolean => mark instanceof FixedMark
