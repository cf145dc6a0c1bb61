/**
 * Hands events to the bus after their write committed. Publishing never fails a write: what the
 * bus could not carry to other processes is logged and counted, and the write stands.
 */
import type { Bus, PublishOutcome } from '../bus/bus.ts'
import { modelTopic, type ModelEvent } from '../events.ts'
import type { PendingEvent } from './diff.ts'

/** The part of a pino-style logger the publisher uses. */
export interface ErrorLogger {
  error(details: Record<string, unknown>, message: string): void
}

export interface PublisherStats {
  /** Events handed to the bus: delivered to its local subscribers, and sent to other processes. */
  published: number
  /** Of those, waiting in the bus's outbox for Redis (other processes get them when it returns). */
  queued: number
  /** Of those, refused by a full outbox: other processes never get them (logged, write kept). */
  dropped: number
  /** Events the bus refused outright, because it was closed (logged, write kept). */
  failed: number
}

export class Publisher {
  readonly stats: PublisherStats = { published: 0, queued: 0, dropped: 0, failed: 0 }

  constructor(
    private readonly bus: Bus,
    private readonly logger: ErrorLogger,
  ) {}

  /**
   * Publishes in order (the bus takes each one before the next, so they need no waiting in
   * between); resolves when the bus said what became of every event.
   */
  async publish(events: readonly PendingEvent[]): Promise<void> {
    const at = new Date().toISOString()
    await Promise.all(events.map((pending) => this.#publishOne({ ...pending, at })))
  }

  async #publishOne(event: ModelEvent): Promise<void> {
    let outcome: PublishOutcome
    try {
      outcome = await this.bus.publish(modelTopic(event.model), event)
    } catch (err) {
      this.stats.failed++
      this.logger.error(
        { err, model: event.model, verb: event.verb, recordId: event.recordId },
        'realtime: could not publish an event; the write stands',
      )
      return
    }
    this.stats.published++
    if (outcome === 'queued') this.stats.queued++
    if (outcome === 'dropped') {
      this.stats.dropped++
      this.logger.error(
        { model: event.model, verb: event.verb, recordId: event.recordId },
        'realtime: the bus outbox is full: the event reached only this process; the write stands',
      )
    }
  }
}
