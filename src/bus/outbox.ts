/**
 * The Redis bus's outbox: messages already delivered to this process's listeners, waiting to be
 * handed to Redis, in publish order. Bounded by count and bytes: past either bound a message is
 * refused (the caller counts, logs and reports it), never an older one dropped, so what is
 * queued stays a gap-free prefix of what was published after the refusal.
 */
import { positiveSetting } from '../errors.ts'
import { FrontQueue } from './front-queue.ts'
import type { PublishOutcome } from './bus.ts'

export interface OutboxOptions {
  /**
   * Messages the outbox holds while Redis is unreachable; past it, publishes reach only this
   * process (`dropped`). A positive integer. The default holds 10 s of a 1,000 messages/s stream.
   * @default 10000
   */
  maxEvents?: number
  /**
   * Bytes of message payloads (their JSON) the outbox holds; past it, as past `maxEvents`.
   * A positive integer.
   * @default 67108864 (64 MiB)
   */
  maxBytes?: number
}

export const defaultOutbox = { maxEvents: 10_000, maxBytes: 64 * 1024 * 1024 } as const

export interface ResolvedOutboxOptions {
  readonly maxEvents: number
  readonly maxBytes: number
}

export function resolveOutboxOptions(options: OutboxOptions = {}): ResolvedOutboxOptions {
  return {
    maxEvents: positiveSetting('outbox.maxEvents', options.maxEvents ?? defaultOutbox.maxEvents),
    maxBytes: positiveSetting('outbox.maxBytes', options.maxBytes ?? defaultOutbox.maxBytes),
  }
}

/** A message on its way to Redis. */
export interface OutboxMessage {
  readonly topic: string
  readonly seq: number
  /** The payload, encoded once for every stream and the channel. */
  readonly text: string
  readonly history: readonly string[]
  readonly bytes: number
  /** Settles the publisher's promise (first call wins). */
  settle(outcome: PublishOutcome): void
}

export class Outbox {
  readonly #options: ResolvedOutboxOptions
  readonly #messages = new FrontQueue<OutboxMessage>()
  #bytes = 0

  constructor(options: ResolvedOutboxOptions) {
    this.#options = options
  }

  /** Queues `message`; false (and nothing queued) when the outbox is full. */
  push(message: OutboxMessage): boolean {
    if (this.length >= this.#options.maxEvents || this.#bytes + message.bytes > this.#options.maxBytes) return false
    this.#messages.push(message)
    this.#bytes += message.bytes
    return true
  }

  /**
   * Puts `messages` back in front, oldest first: they were handed to a Redis that lost them.
   * Past the bounds if need be: they were taken once already, and refusing them now would lose
   * them after the publishers were told they were sent.
   */
  unshift(messages: readonly OutboxMessage[]): void {
    this.#messages.unshift(messages)
    for (const message of messages) this.#bytes += message.bytes
  }

  /** The oldest messages, at most `count` and about `bytes` (at least one), still queued. */
  peek(count: number, bytes: number): OutboxMessage[] {
    const batch: OutboxMessage[] = []
    let size = 0
    for (const message of this.#messages) {
      if (batch.length === count || (batch.length > 0 && size + message.bytes > bytes)) break
      batch.push(message)
      size += message.bytes
    }
    return batch
  }

  /** Removes the `count` oldest messages (they were handed to Redis, or are given up). */
  shift(count: number): OutboxMessage[] {
    const removed = this.#messages.shift(count)
    for (const message of removed) this.#bytes -= message.bytes
    return removed
  }

  /** Every message still queued, oldest first. */
  [Symbol.iterator](): IterableIterator<OutboxMessage> {
    return this.#messages[Symbol.iterator]()
  }

  get length(): number {
    return this.#messages.length
  }

  get bytes(): number {
    return this.#bytes
  }
}
