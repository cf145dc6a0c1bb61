/**
 * What each kind of room subscription takes from the signals of its connection (see
 * `Selection`). A message is labelled with the room it came through; the labelled copy is made
 * once per message and room, so that every subscription of a group that picks it shares one
 * execution and one serialised result.
 */
import type { DeliveryControl, Selection } from '../delivery/selection.ts'
import type { EndListener } from '../delivery/subscription.ts'
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

/** Where a `room` subscription's reason to be in its room is released: the gateway's rooms, one for all. */
export interface MembershipReleaser {
  releaseMembership(connectionId: string, room: string, subscriptionId: string): Promise<void>
}

/**
 * `room(name, events)`: messages broadcast to `room`, labelled with it; completes when a
 * membership operation takes the connection out of `room`. When the subscription ends, it
 * releases the reason it gave its connection to be in the room (`subscriptionEnded`). One small
 * object per subscription, its functions (and `kind`) shared on the prototype: a gateway holds
 * one per subscribed connection (docs/performance.md, What an idle connection holds).
 */
export class RoomSelection implements Selection<ConnectionSignal, ConnectionSignal, RoomMessage>, EndListener {
  constructor(
    private readonly room: string,
    private readonly events: EventFilter,
    private readonly releaser?: MembershipReleaser,
    private readonly connectionId?: string,
    private readonly subscriptionId?: string,
  ) {}

  get kind(): 'room' {
    return 'room'
  }

  subscriptionEnded(): Promise<void> | undefined {
    return this.releaser?.releaseMembership(this.connectionId!, this.room, this.subscriptionId!)
  }

  see(signal: ConnectionSignal): ConnectionSignal {
    return signal
  }

  admit(signal: ConnectionSignal, control: DeliveryControl): boolean {
    if (signal.kind === 'left') {
      if (signal.rooms.includes(this.room)) control.endAfterThis()
      return false
    }
    return signal.rooms.includes(this.room)
  }

  pick(signal: ConnectionSignal): RoomMessage | undefined {
    const { message, cursors } = signal as MessageSignal
    if (this.events && !this.events.has(message.event)) return undefined
    return labelled(message, this.room, cursors.get(this.room) ?? null)
  }
}

/**
 * `messages(events)`: everything that reaches the connection, once, labelled with the first
 * targeted room it is in (null for a blast).
 */
export class MessagesSelection implements Selection<ConnectionSignal, MessageSignal, RoomMessage> {
  constructor(private readonly events: EventFilter) {}

  get kind(): 'messages' {
    return 'messages'
  }

  see(signal: ConnectionSignal): MessageSignal | undefined {
    return signal.kind === 'message' ? signal : undefined
  }

  pick({ message, rooms, cursors }: MessageSignal): RoomMessage | undefined {
    if (this.events && !this.events.has(message.event)) return undefined
    const room = rooms[0] ?? null
    return labelled(message, room, (room !== null && cursors.get(room)) || null)
  }
}
