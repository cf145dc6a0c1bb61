/**
 * What room messaging carries: the message itself (plain data, so any bus can carry it between
 * processes), the bus envelope that addresses it, and the signals the delivery hub hands to a
 * connection's subscriptions.
 */
import type { Mark } from '../bus/bus.ts'
import type { Target } from './registry.ts'

/** A message as its sender made it: the same for every recipient. */
export interface RoomMessageData {
  /** Unique per message (a UUID). */
  readonly id: string
  readonly event: string
  /** Any JSON value; absent data travels as null. */
  readonly data: unknown
  /** The WebSocket connection that sent it; null when sent over HTTP. */
  readonly sender: string | null
  /** When the gateway accepted it, ISO 8601. */
  readonly sentAt: string
}

/** A message as one subscription receives it (`RoomMessage` in the schema). */
export interface RoomMessage extends RoomMessageData {
  /** The room it reached this subscription through; null for a blast. */
  readonly room: string | null
  /** Its position in `room`'s stream; null for a blast or a direct message, which no room holds. */
  readonly cursor: string | null
}

/** What travels on the bus (`rooms:message`): every instance delivers it to its own recipients. */
export interface RoomEnvelope {
  readonly message: RoomMessageData
  readonly target: Target
}

/**
 * What the hub delivers on a connection's topic: a message with the targeted rooms the
 * connection is in ([] for a blast) and the message's position in each of those rooms' streams
 * (none for its own id: a direct message), or notice that a membership operation took it out of rooms
 * (its `room(name)` subscriptions for them complete).
 */
export type ConnectionSignal =
  | {
      readonly kind: 'message'
      readonly message: RoomMessageData
      readonly rooms: readonly string[]
      readonly cursors: ReadonlyMap<string, string>
      /** How the bus delivered it (what a `room` subscription resumed with `after:` needs). */
      readonly mark: Mark
    }
  | { readonly kind: 'left'; readonly rooms: readonly string[] }

/** The bus topic room messages travel on. */
export const roomsTopic = 'rooms:message' as const

/**
 * The hub topic of one connection. Room messages are addressed to connections, not rooms: a
 * message for several rooms must reach each connection once, and which room-subscription gets it
 * depends on the connection's memberships. So the bus listener resolves the recipients once per
 * message and delivers one signal per connection; that connection's subscriptions (its `room`
 * and `messages` subscriptions, usually one or two) each select from it.
 */
export const connectionTopic = (connectionId: string) => connectionId
// The connection's id itself, not a `connection:<id>` string made per message: it is delivered
// to once per message and recipient, and a string built each time costs a concatenation and a
// fresh hash on every lookup (about 10 times the lookup). Gateway ids are UUIDs, which never hold
// the `:` of the other topics (`model:<Model>`).
/** Whether a hub topic is a connection's (the other topics, `model:<Model>`, hold a `:`). */
export const isConnectionTopic = (topic: string) => !topic.includes(':')
