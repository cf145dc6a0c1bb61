/**
 * What each kind of room subscription picks from the signals of its connection (the delivery
 * hub calls these once per signal and subscription).
 */
import type { Selector } from '../delivery/hub.ts'
import type { ConnectionSignal, RoomMessage } from './messages.ts'

/** Event names a subscription asked for; null for all of them. */
export type EventFilter = ReadonlySet<string> | null

/**
 * `room(name, events)`: messages broadcast to `room`, labelled with it; completes when a
 * membership operation takes the connection out of `room`.
 */
export function roomSelector(room: string, events: EventFilter): Selector<ConnectionSignal, RoomMessage> {
  return (signal, control) => {
    if (signal.kind === 'left') {
      if (signal.rooms.includes(room)) control.endAfterThis()
      return undefined
    }
    if (!signal.rooms.includes(room) || (events && !events.has(signal.message.event))) return undefined
    return { ...signal.message, room, cursor: signal.cursors.get(room) ?? null }
  }
}

/**
 * `messages(events)`: everything that reaches the connection, once, labelled with the first
 * targeted room it is in (null for a blast).
 */
export function messagesSelector(events: EventFilter): Selector<ConnectionSignal, RoomMessage> {
  return (signal) => {
    if (signal.kind === 'left' || (events && !events.has(signal.message.event))) return undefined
    const room = signal.rooms[0] ?? null
    return { ...signal.message, room, cursor: (room !== null && signal.cursors.get(room)) || null }
  }
}
