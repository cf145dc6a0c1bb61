/**
 * Membership commands between registry instances, over Redis pub/sub. Each instance listens on
 * `<prefix>commands:<instance>` for commands and on `<prefix>replies:<instance>` for the answers
 * to its own; a reply carries the id of the command it answers. A command nobody answers in time
 * rejects with RoomCommandTimeoutError.
 *
 * On a Redis Cluster the channels are sharded (SSUBSCRIBE/SPUBLISH) and carry the instance's hash
 * tag (`p{<instance>}:commands:<instance>`, redis-cluster-store.ts): each travels only through
 * the shard serving the instance's slot, where its liveness is counted. A shard subscriber
 * re-created (a failover, a slot move) subscribes both channels again.
 */
import { randomUUID } from 'node:crypto'
import type { Cluster, Redis } from 'ioredis'
import { redisFailed, ServiceUnavailableError } from '../errors.ts'
import { withTimeout } from '../timeouts.ts'
import {
  RegistryClosedError,
  UnknownConnectionError,
  type MembershipChange,
  type MembershipReason,
} from './registry.ts'

/** What one instance asks another to do to the connections it holds. */
export type RoomCommand =
  | { readonly op: 'join'; readonly connectionId: string; readonly room: string; readonly reason: MembershipReason }
  | { readonly op: 'release'; readonly connectionId: string; readonly room: string; readonly subscriptionId: string }
  | { readonly op: 'leave'; readonly connectionId: string; readonly room: string }
  /** Room-wide operations apply to the receiver's own members of the room. */
  | { readonly op: 'leaveAll'; readonly room: string }
  | { readonly op: 'addRoomMembersToRooms'; readonly sourceRoom: string; readonly rooms: readonly string[] }
  | { readonly op: 'removeRoomMembersFromRooms'; readonly sourceRoom: string; readonly rooms: readonly string[] }

export type CommandResult = MembershipChange | MembershipChange[] | undefined

interface Request {
  readonly id: string
  /** The sender's instance id: where the reply goes. */
  readonly from: string
  readonly command: RoomCommand
}

interface Reply {
  readonly id: string
  readonly result?: CommandResult
  /**
   * Set when the command failed: `unknownConnection` when the receiver does not hold it, `closed`
   * when the receiver is shutting down (its connections are going).
   */
  readonly error?: { readonly message: string; readonly unknownConnection?: string; readonly closed?: boolean }
}

/**
 * An instance did not answer a membership command in time (it may still apply it): another
 * gateway instance is unavailable, and clients see UNAVAILABLE naming it.
 */
export class RoomCommandTimeoutError extends ServiceUnavailableError {
  override readonly name = 'RoomCommandTimeoutError'
  constructor(
    readonly instance: string,
    op: string,
    timeoutMs: number,
  ) {
    super('gateway', `gateway instance ${instance} did not answer the rooms command "${op}" within ${timeoutMs} ms`)
  }
}

/** The command failed on the instance that ran it. */
export class RemoteCommandError extends Error {
  override readonly name = 'RemoteCommandError'
  constructor(
    readonly instance: string,
    message: string,
    readonly unknownConnection?: string,
    /** The instance is shutting down. */
    readonly closed = false,
  ) {
    super(`gateway instance ${instance}: ${message}`)
  }
}

/** No process listens on an instance's command channel (it stopped, or lost Redis). */
export class InstanceUnreachableError extends Error {
  override readonly name = 'InstanceUnreachableError'
  constructor(readonly instance: string) {
    super(`gateway instance ${instance} is not listening for rooms commands`)
  }
}

interface Pending {
  resolve(result: CommandResult): void
  reject(error: Error): void
  readonly instance: string
  readonly timer: NodeJS.Timeout
}

export interface CommandChannelOptions {
  readonly instance: string
  /** The prefix of an instance's channels (on a cluster, carrying its hash tag). */
  readonly prefixOf: (instance: string) => string
  /** Connection for PUBLISH (SPUBLISH when sharded). */
  readonly publisher: Redis | Cluster
  /** Connection in subscriber mode; it may carry other channels too (the bus's, when shared). */
  readonly subscriber: Redis | Cluster
  /** Sharded pub/sub (Redis Cluster). */
  readonly sharded?: boolean
  /** How long to wait before subscribing again after a sharded subscription failed, in ms. */
  readonly retryMs?: number
  readonly timeoutMs: number
  /** Runs a command received from another instance; its result or error is the reply. */
  readonly handle: (command: RoomCommand) => Promise<CommandResult>
  readonly onError: (error: unknown) => void
}

export class CommandChannel {
  readonly #options: CommandChannelOptions
  readonly #pending = new Map<string, Pending>()
  readonly #commands: string
  readonly #replies: string
  #retry: NodeJS.Timeout | undefined
  #closed = false

  private constructor(options: CommandChannelOptions) {
    this.#options = options
    this.#commands = this.#commandsOf(options.instance)
    this.#replies = this.#repliesOf(options.instance)
  }

  /** Resolves once both channels are subscribed. */
  static async open(options: CommandChannelOptions): Promise<CommandChannel> {
    const channel = new CommandChannel(options)
    const { subscriber, sharded } = options
    subscriber.on(sharded ? 'smessage' : 'message', channel.#onMessage)
    // Shard subscribers re-created (their primary failed over, slots moved): subscribe again there.
    if (sharded) subscriber.on('subscribersReady', channel.#onShardsReady)
    await channel.#subscribe()
    return channel
  }

  readonly #onMessage = (name: string, text: string) => this.#receive(name, text)
  readonly #onShardsReady = () => this.resubscribe()

  /** Subscribes both channels again (a subscriber connection that does not do it by itself came back). */
  resubscribe(): void {
    if (this.#closed) return
    this.#subscribe().catch((error: unknown) => {
      this.#options.onError(error)
      if (this.#options.sharded) this.#retryLater()
    })
  }

  #subscribe(): Promise<unknown> {
    const { subscriber, sharded } = this.#options
    if (!sharded) return subscriber.subscribe(this.#commands, this.#replies)
    // One SSUBSCRIBE each: they share a slot, but a failover may leave one of them MOVED.
    return Promise.all([subscriber.ssubscribe(this.#commands), subscriber.ssubscribe(this.#replies)])
  }

  /** A sharded subscription failed (the slot map was stale): refresh it and try again. */
  #retryLater(): void {
    if (this.#retry || this.#closed) return
    const { subscriber, retryMs = 500, onError } = this.#options
    this.#retry = setTimeout(() => {
      this.#retry = undefined
      if (this.#closed) return
      ;(subscriber as Cluster).refreshSlotsCache?.()
      this.#subscribe().catch((error: unknown) => {
        onError(error)
        this.#retryLater()
      })
    }, retryMs)
    this.#retry.unref()
  }

  /** Sends `command` to `instance` and resolves with its reply. */
  send(instance: string, command: RoomCommand): Promise<CommandResult> {
    const { timeoutMs } = this.#options
    const id = randomUUID()
    return new Promise<CommandResult>((resolve, reject) => {
      // Registered before publishing: the reply comes on the other connection and may come first.
      const timer = setTimeout(
        () => this.#settle(id)?.reject(new RoomCommandTimeoutError(instance, command.op, timeoutMs)),
        timeoutMs,
      )
      this.#pending.set(id, { resolve, reject, instance, timer })
      const request: Request = { id, from: this.#options.instance, command }
      this.#publish(this.#commandsOf(instance), JSON.stringify(request)).then(
        (receivers) => {
          if (receivers === 0) this.#settle(id)?.reject(new InstanceUnreachableError(instance))
        },
        (error: Error) => this.#settle(id)?.reject(redisFailed(error)),
      )
    })
  }

  /** Rejects what is still waiting for a reply and stops listening. */
  async close(): Promise<void> {
    this.#closed = true
    clearTimeout(this.#retry)
    for (const id of [...this.#pending.keys()]) this.#settle(id)?.reject(new Error('the rooms registry is closed'))
    const { subscriber, sharded, timeoutMs } = this.#options
    subscriber.off(sharded ? 'smessage' : 'message', this.#onMessage)
    subscriber.off('subscribersReady', this.#onShardsReady)
    // By name: the subscriber may be shared with the bus, and SUNSUBSCRIBE with none has no slot
    // to go to (ioredis#2133).
    const unsubscribe = sharded
      ? Promise.all([subscriber.sunsubscribe(this.#commands), subscriber.sunsubscribe(this.#replies)])
      : subscriber.unsubscribe(this.#commands, this.#replies)
    // Bounded: an unreachable Redis must not hold up a shutdown.
    await withTimeout(unsubscribe, timeoutMs, 'Redis').catch(() => {})
  }

  #publish(channel: string, text: string): Promise<number> {
    const { publisher, sharded } = this.#options
    return sharded ? publisher.spublish(channel, text).then(Number) : publisher.publish(channel, text)
  }

  #commandsOf(instance: string) {
    return `${this.#options.prefixOf(instance)}commands:${instance}`
  }

  #repliesOf(instance: string) {
    return `${this.#options.prefixOf(instance)}replies:${instance}`
  }

  #settle(id: string): Pending | undefined {
    const pending = this.#pending.get(id)
    if (!pending) return undefined
    this.#pending.delete(id)
    clearTimeout(pending.timer)
    return pending
  }

  #receive(name: string, text: string): void {
    // The subscriber connection may be shared (src/redis/shared.ts): the bus's channels arrive
    // here too, one message per event, and are not this channel's to read.
    if (name !== this.#replies && name !== this.#commands) return
    let message: Request & Reply
    try {
      message = JSON.parse(text) as Request & Reply
    } catch (error) {
      this.#options.onError(error)
      return
    }
    if (name === this.#replies) {
      const pending = this.#settle(message.id)
      if (!pending) return // it timed out
      const { error } = message
      if (error)
        pending.reject(new RemoteCommandError(pending.instance, error.message, error.unknownConnection, error.closed))
      else pending.resolve(message.result)
    } else {
      void this.#answer(message)
    }
  }

  async #answer(request: Request): Promise<void> {
    let reply: Reply
    try {
      reply = { id: request.id, result: await this.#options.handle(request.command) }
    } catch (error) {
      const unknownConnection = error instanceof UnknownConnectionError ? error.connectionId : undefined
      const closed = error instanceof RegistryClosedError || undefined
      reply = {
        id: request.id,
        error: { message: error instanceof Error ? error.message : String(error), unknownConnection, closed },
      }
    }
    try {
      await this.#publish(this.#repliesOf(request.from), JSON.stringify(reply))
    } catch (error) {
      this.#options.onError(error)
    }
  }
}
