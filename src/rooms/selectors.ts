/**
 * What each kind of room subscription takes from the signals of its connection (see
 * `Selection`). A message is labelled with the room it came through; the labelled copy is made
 * once per message and room, so that every subscription of a group that picks it shares one
 * execution and one serialised result.
 */
import type { Selection } from '../delivery/selection.ts'
import type { ConnectionSignal, RoomMessage, RoomMessageData } from './messages.ts'

/** Event names a subscription asked for; null for all of them. */
export type EventFilter = ReadonlySet<string> | null

type MessageSignal = Extract<ConnectionSignal, { kind: 'message' }>

/** Per message, its labelled copies by room: with the room's cursor, and without one. */
const labelledCopies = new WeakMap<RoomMessageData, [Map<string, RoomMessage>, Map<string | null, RoomMessage>]>()

/**
 * `message` as received through `room` (null for a blast), at `cursor` in that room's stream
 * (null for a blast or a direct message): one object per message, room and cursor.
 */
export function labelled(message: RoomMessageData, room: string | null, cursor: string | null): RoomMessage {
  let copies = labelledCopies.get(message)
  if (!copies) labelledCopies.set(message, (copies = [new Map(), new Map()]))
  const byRoom = cursor === null ? copies[1] : copies[0]
  const copy = byRoom.get(room!)
  if (copy?.cursor === cursor) return copy
  // A message has one cursor per room; a different one (a replayed copy) is not cached.
  const fresh: RoomMessage = { ...message, room, cursor }
  if (!copy) byRoom.set(room!, fresh)
  return fresh
}

/**
 * `room(name, events)`: messages broadcast to `room`, labelled with it; completes when a
 * membership operation takes the connection out of `room`.
 */
export function roomSelection(room: string, events: EventFilter): Selection<ConnectionSignal, ConnectionSignal, RoomMessage> {
  return {
    kind: 'room',
    see: (signal) => signal,
    admit: (signal, control) => {
      if (signal.kind === 'left') {
        if (signal.rooms.includes(room)) control.endAfterThis()
        return false
      }
      return signal.rooms.includes(room)
    },
    pick: (signal) => {
      const { message, cursors } = signal as MessageSignal
      return events && !events.has(message.event) ? undefined : labelled(message, room, cursors.get(room) ?? null)
    },
  }
}

/**
 * `messages(events)`: everything that reaches the connection, once, labelled with the first
 * targeted room it is in (null for a blast).
 */
export function messagesSelection(events: EventFilter): Selection<ConnectionSignal, MessageSignal, RoomMessage> {
  return {
    kind: 'messages',
    see: (signal) => (signal.kind === 'message' ? signal : undefined),
    pick: ({ message, rooms, cursors }) => {
      if (events && !events.has(message.event)) return undefined
      const room = rooms[0] ?? null
      return labelled(message, room, (room !== null && cursors.get(room)) || null)
    },
  }
}
