/**
 * Rooms on one gateway instance: sends messages through the bus, delivers those that reach this
 * instance's connections through the delivery hub, and keeps the registry told of connections
 * opening and closing. Membership itself lives in the registry (cluster-wide by contract).
 */
import { randomUUID } from 'node:crypto'
import type { Bus, Mark } from '../bus/bus.ts'
import { ConfigError } from '../errors.ts'
import type { DeliveryHub, HubSubscription, Selection } from '../delivery/hub.ts'
import type { OnEnd } from '../delivery/subscription.ts'
import { MemoryRoomRegistry } from './memory.ts'
import { resyncErrorsJson } from '../delivery/resume.ts'
import { connectionTopic, connectionTopicPrefix, roomsTopic, type ConnectionSignal, type RoomEnvelope, type RoomMessageData } from './messages.ts'
import type { RoomRegistry, Target } from './registry.ts'
import { DEFAULT_MAX_DATA_BYTES } from './validation.ts'

export interface RoomsOptions {
  /**
   * Largest `data` a `broadcast` or `blast` may carry, in bytes of its JSON text; bigger ones
   * are refused with BAD_USER_INPUT. A positive integer; anything else stops startup.
   * @default 65536 (64 KiB)
   */
  maxDataBytes?: number
  /**
   * Where room membership lives. Share one registry between instances (`createRedisRoomRegistry`)
   * to run several gateways as one. The gateway closes it on shutdown.
   * @default an in-memory registry (one process)
   */
  registry?: RoomRegistry
}

export interface RoomsDependencies {
  readonly bus: Bus
  readonly hub: DeliveryHub
}

/** What `send` did. */
export interface SendResult {
  readonly messageId: string
  /** Connections the message was addressed to, over all instances. */
  readonly recipients: number
}

export class Rooms {
  readonly registry: RoomRegistry
  readonly maxDataBytes: number
  readonly #hub: DeliveryHub
  readonly #bus: Bus
  readonly #detach: (() => void)[]

  constructor(dependencies: RoomsDependencies, options: RoomsOptions = {}) {
    const maxDataBytes = options.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES
    if (!Number.isSafeInteger(maxDataBytes) || maxDataBytes <= 0) {
      throw new ConfigError('rooms.maxDataBytes', `expected a positive integer, got ${maxDataBytes}`)
    }
    this.maxDataBytes = maxDataBytes
    this.registry = options.registry ?? new MemoryRoomRegistry()
    this.#hub = dependencies.hub
    this.#bus = dependencies.bus
    this.#detach = [
      this.#bus.subscribe(roomsTopic, (envelope, mark) => this.#deliverLocally(envelope, mark), {
        // This gateway missed messages it cannot deliver any more: every room subscription here must reload.
        onGap: (gap) => this.#hub.fail((topic) => topic.startsWith(connectionTopicPrefix), resyncErrorsJson(gap.reason)),
      }),
      this.registry.onLeft((connectionId, rooms) => this.#signal(connectionId, { kind: 'left', rooms })),
    ]
  }

  /** A WebSocket connection was acknowledged: it exists, in no room. */
  connectionOpened(connectionId: string): Promise<void> {
    return this.registry.addConnection(connectionId)
  }

  /** A WebSocket connection closed: it leaves every room. */
  connectionClosed(connectionId: string): Promise<void> {
    return this.registry.removeConnection(connectionId)
  }

  /**
   * Sends a message to `target` on every instance. Resolves once the bus took it, with its id and
   * how many connections it is addressed to. Checks on its content are the caller's.
   */
  async send(content: Pick<RoomMessageData, 'event' | 'data' | 'sender'>, target: Target): Promise<SendResult> {
    const message: RoomMessageData = { id: randomUUID(), ...content, sentAt: new Date().toISOString() }
    const recipients = await this.registry.recipientCount(target)
    // Each targeted room keeps it in its history, for `room(name, after:)`.
    await this.#bus.publish(roomsTopic, { message, target }, { history: target.rooms ?? [] })
    return { messageId: message.id, recipients }
  }

  /** A subscription to what `selection` takes from the signals of one connection; `onEnd` runs when it ends. */
  listen<R>(connectionId: string, selection: Selection<ConnectionSignal, any, R>, onEnd?: OnEnd): HubSubscription<ConnectionSignal, R> {
    return this.#hub.subscribe(connectionTopic(connectionId), selection, onEnd)
  }

  /** Stops delivering and closes the registry (on shutdown, once the connections closed). */
  async close(): Promise<void> {
    for (const detach of this.#detach.splice(0)) detach()
    await this.registry.close?.()
  }

  #deliverLocally({ message, target }: RoomEnvelope, mark: Mark): void {
    const recipients = this.registry.localRecipients(target)
    if (recipients.size === 0) return
    // The message is one entry in each targeted room's history: its cursor there.
    const cursors = new Map<string, string>()
    if (target.rooms) for (const room of target.rooms) if (!cursors.has(room)) cursors.set(room, mark.cursor(room))
    for (const [connectionId, rooms] of recipients) {
      // A connection's own id among the targets addressed it directly: that is no room's message.
      const own = cursors.has(connectionId) ? new Map([...cursors].filter(([room]) => room !== connectionId)) : cursors
      this.#signal(connectionId, { kind: 'message', message, rooms, cursors: own, mark })
    }
  }

  #signal(connectionId: string, signal: ConnectionSignal): void {
    this.#hub.deliver(connectionTopic(connectionId), signal)
  }
}
