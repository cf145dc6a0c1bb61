/**
 * Rooms on one gateway instance: sends messages through the bus, delivers those that reach this
 * instance's connections through the delivery hub, and keeps the registry told of connections
 * opening and closing. Membership itself lives in the registry (cluster-wide by contract).
 */
import { randomUUID } from 'node:crypto'
import type { Viewer } from '../auth/viewer.ts'
import { BusClosedError, type Bus, type Mark } from '../bus/bus.ts'
import { clientErrorsJson, positiveSetting, resyncRequired, ServiceUnavailableError } from '../errors.ts'
import { withTimeout } from '../timeouts.ts'
import type { DeliveryHub, HubSubscription, Selection } from '../delivery/hub.ts'
import { noopMetrics, type Metrics } from '../metrics.ts'
import type { OnEnd } from '../delivery/subscription.ts'
import { MemoryRoomRegistry } from './memory.ts'
import {
  connectionTopic,
  isConnectionTopic,
  roomsTopic,
  type ConnectionSignal,
  type RoomEnvelope,
  type RoomMessageData,
} from './messages.ts'
import type { RoomRegistry, Target } from './registry.ts'
import { DEFAULT_MAX_DATA_BYTES } from './validation.ts'
import { Presence, type PresenceOptions } from '../presence/presence.ts'

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
  /**
   * How long a `broadcast` or `blast` waits for the bus to take its cross-instance part, and for
   * the registry to count its recipients over the cluster, in ms. Past it the mutation answers
   * anyway, `complete: false` (local subscribers have had the message at once, whatever happens).
   * (`MIZZEN_REDIS_TIMEOUT_MS`)
   * @default 2000
   */
  clusterTimeoutMs?: number
  /** Presence: the leave grace, the batch window, the meta size limit. @default see PresenceOptions */
  presence?: PresenceOptions
}

export interface RoomsDependencies {
  readonly bus: Bus
  readonly hub: DeliveryHub
  /** Observes each message's delivery latency. @default noopMetrics */
  readonly metrics?: Metrics
  /** Told why a send is incomplete (the bus or the registry failed or did not answer). */
  readonly onError?: (error: unknown, context: string) => void
}

/** What `send` did. */
export interface SendResult {
  readonly messageId: string
  /**
   * Live connections the message was addressed to, over all instances; only this instance's
   * when the others cannot be counted (then `complete` is false). Undefined when the caller did
   * not ask for the count (`SendOptions.countRecipients`).
   */
  readonly recipients: number | undefined
  /**
   * True when the cross-instance part was handed to the bus's transport (Redis) and, if they
   * were asked for, the recipients were counted over the cluster; false when it was queued for
   * later, dropped, or could not be confirmed in time. Local recipients have it either way.
   */
  readonly complete: boolean
}

export interface SendOptions {
  /**
   * Count the recipients over the cluster. On Redis that is a request of its own beside the
   * publish, so a `broadcast` that does not select `recipients` skips it (docs/architecture.md
   * §5). @default true
   */
  readonly countRecipients?: boolean
}

/**
 * Whether the bus handed the cross-instance part of a publish to its transport. The bus answers
 * what became of it ('sent', 'queued' or 'dropped'); a bus that answers nothing sent it.
 */
const handedOff = (outcome: unknown) => outcome === undefined || outcome === 'sent'

export class Rooms {
  readonly registry: RoomRegistry
  /** Who is in each room, and who came and went (docs/rooms.md, Presence). */
  readonly presence: Presence
  readonly maxDataBytes: number
  readonly #hub: DeliveryHub
  readonly #bus: Bus
  readonly #metrics: Metrics
  readonly #detach: (() => void)[]
  readonly #clusterTimeoutMs: number
  readonly #onError: (error: unknown, context: string) => void

  constructor(dependencies: RoomsDependencies, options: RoomsOptions = {}) {
    this.maxDataBytes = positiveSetting('rooms.maxDataBytes', options.maxDataBytes ?? DEFAULT_MAX_DATA_BYTES)
    this.#clusterTimeoutMs = positiveSetting('rooms.clusterTimeoutMs', options.clusterTimeoutMs ?? 2000, 'ms')
    this.#onError = dependencies.onError ?? (() => {})
    this.registry = options.registry ?? new MemoryRoomRegistry()
    this.#hub = dependencies.hub
    this.#bus = dependencies.bus
    this.#metrics = dependencies.metrics ?? noopMetrics
    this.presence = new Presence(
      {
        registry: this.registry,
        bus: this.#bus,
        hub: this.#hub,
        shared: !(this.registry instanceof MemoryRoomRegistry),
        onError: this.#onError,
      },
      options.presence,
    )
    this.#detach = [
      this.#bus.subscribe(roomsTopic, (envelope, mark) => this.#deliverLocally(envelope, mark), {
        // This gateway missed messages it cannot deliver any more: every room subscription here must reload.
        onGap: (gap) => this.#hub.fail(isConnectionTopic, clientErrorsJson(resyncRequired(gap.reason))),
      }),
      this.registry.onLeft((connectionId, rooms) => this.#signal(connectionId, { kind: 'left', rooms })),
    ]
  }

  /** A WebSocket connection was acknowledged: it exists, in no room, and presence knows who it is. */
  async connectionOpened(connectionId: string, viewer?: Viewer): Promise<void> {
    await this.registry.addConnection(connectionId)
    if (viewer)
      this.registry.identify(connectionId, {
        userId: viewer.role === 'user' ? (viewer.id ?? null) : null,
        role: viewer.role,
      })
  }

  /** A WebSocket connection closed: it leaves every room. */
  connectionClosed(connectionId: string): Promise<void> {
    return this.registry.removeConnection(connectionId)
  }

  /**
   * Sends a message to `target` on every instance. This instance's recipients get it at once,
   * whatever Redis does; resolves, within `clusterTimeoutMs`, with its id, how many live
   * connections it is addressed to (unless `countRecipients` is false), and whether the cluster
   * part is complete. Checks on its content are the caller's.
   */
  async send(
    content: Pick<RoomMessageData, 'event' | 'data' | 'sender'>,
    target: Target,
    { countRecipients = true }: SendOptions = {},
  ): Promise<SendResult> {
    const message: RoomMessageData = { id: randomUUID(), ...content, sentAt: new Date().toISOString() }
    // The bus calls this process's listeners (#deliverLocally) before publish returns. Each
    // targeted room keeps the message in its history, for `room(name, after:)`.
    const published = this.#bus.publish(roomsTopic, { message, target }, { history: target.rooms ?? [] })
    if (!countRecipients)
      return { messageId: message.id, recipients: undefined, complete: await this.#handedOff(published) }
    const [sent, recipients] = await Promise.all([this.#handedOff(published), this.#countRecipients(target)])
    return { messageId: message.id, recipients: recipients.count, complete: sent && recipients.overCluster }
  }

  /** A subscription to what `selection` takes from the signals of one connection; `onEnd` runs when it ends. */
  listen<R>(
    connectionId: string,
    selection: Selection<ConnectionSignal, any, R>,
    onEnd?: OnEnd,
  ): HubSubscription<ConnectionSignal, R> {
    return this.#hub.subscribe(connectionTopic(connectionId), selection, onEnd)
  }

  /**
   * Drops the reason a `room` subscription gave its connection to be in `room` (when it ends);
   * a failure is reported, not thrown (its subscription has ended either way).
   */
  releaseMembership(connectionId: string, room: string, subscriptionId: string): Promise<void> {
    return this.registry
      .release(connectionId, room, subscriptionId)
      .catch((error: unknown) => this.#onError(error, `leaving room "${room}" failed for connection ${connectionId}`))
  }

  /** Stops delivering and closes the registry (on shutdown, once the connections closed). */
  async close(): Promise<void> {
    for (const detach of this.#detach.splice(0)) detach()
    this.presence.close()
    await this.registry.close?.()
  }

  #deliverLocally(envelope: RoomEnvelope, mark: Mark): void {
    const { message, target } = envelope
    if (target.rooms?.length === 1) return this.#deliverToRoom(envelope, target.rooms[0]!, mark)
    const recipients = this.registry.localRecipients(target)
    if (recipients.size === 0) return
    // The message is one entry in each targeted room's history: its cursor there.
    const cursors = new Map<string, string>()
    if (target.rooms) for (const room of target.rooms) if (!cursors.has(room)) cursors.set(room, mark.cursor(room))
    // Recipients in the same targeted rooms share one signal, so that each group selects and
    // renders it once for all of them (its memos go by the signal's identity).
    const shared = new Map<string, ConnectionSignal>()
    for (const [connectionId, rooms] of recipients) {
      // A connection's own id among the targets addressed it directly: that is no room's message.
      if (cursors.has(connectionId)) {
        this.#signal(connectionId, {
          kind: 'message',
          message,
          rooms,
          cursors: new Map([...cursors].filter(([room]) => room !== connectionId)),
          mark,
        })
        continue
      }
      const key = rooms.length === 1 ? rooms[0]! : rooms.join('\u0000')
      let signal = shared.get(key)
      if (!signal) shared.set(key, (signal = { kind: 'message', message, rooms, cursors, mark }))
      this.#signal(connectionId, signal)
    }
    this.#metrics.deliveryLatency(Date.parse(message.sentAt))
  }

  /** `#deliverLocally` for a message to one room, its usual target: one signal for all its members. */
  #deliverToRoom({ message, target }: RoomEnvelope, room: string, mark: Mark): void {
    const recipients = this.registry.localRoomRecipients(room)
    if (recipients.length === 0) return
    const rooms = [room]
    const signal: ConnectionSignal = {
      kind: 'message',
      message,
      rooms,
      cursors: new Map([[room, mark.cursor(room)]]),
      mark,
    }
    const omit = target.omit.length ? new Set(target.omit) : undefined
    let reached = 0
    for (const connectionId of recipients) {
      if (omit?.has(connectionId)) continue
      reached++
      // The connection named like the room was addressed directly: that is no room's message.
      this.#signal(connectionId, connectionId === room ? { ...signal, cursors: new Map() } : signal)
    }
    // As for other targets: a message every local recipient of which was omitted is no fan-out.
    if (reached > 0) this.#metrics.deliveryLatency(Date.parse(message.sentAt))
  }

  async #handedOff(published: Promise<unknown>): Promise<boolean> {
    try {
      return handedOff(await withTimeout(published, this.#clusterTimeoutMs, 'the bus'))
    } catch (error) {
      // Closed: the gateway is stopping, and nobody, here or elsewhere, received the message
      // (the caller answers UNAVAILABLE: roomClientError).
      if (error instanceof BusClosedError) throw error
      this.#onError(error, 'a room message may not have reached the other gateway instances')
      return false
    }
  }

  /** Over the cluster when the registry can count it in time; else this instance's own recipients. */
  async #countRecipients(target: Target): Promise<{ count: number; overCluster: boolean }> {
    try {
      return {
        count: await withTimeout(this.registry.recipientCount(target), this.#clusterTimeoutMs, 'the rooms registry'),
        overCluster: true,
      }
    } catch (error) {
      // The registry reports losing Redis once; anything else is worth a line per message.
      if (!(error instanceof ServiceUnavailableError))
        this.#onError(
          error,
          'counting the recipients of a room message over the cluster failed; counted this instance’s',
        )
      return { count: this.registry.localRecipients(target).size, overCluster: false }
    }
  }

  #signal(connectionId: string, signal: ConnectionSignal): void {
    this.#hub.deliver(connectionTopic(connectionId), signal)
  }
}
