/**
 * Hands events to the bus after their write committed. Publishing never fails a write: a bus
 * error is logged and counted, and the write stands.
 */
import type { Bus } from '../bus/bus.ts'
import { modelTopic, type ModelEvent } from '../events.ts'
import type { PendingEvent } from './diff.ts'

/** The part of a pino-style logger the publisher uses. */
export interface ErrorLogger {
  error(details: Record<string, unknown>, message: string): void
}

export interface PublisherStats {
  /** Events handed to the bus. */
  published: number
  /** Events the bus refused (logged, write kept). */
  failed: number
}

export class Publisher {
  readonly stats: PublisherStats = { published: 0, failed: 0 }

  constructor(
    private readonly bus: Bus,
    private readonly logger: ErrorLogger,
  ) {}

  /** Publishes in order; resolves when every event was handed over or refused. */
  async publish(events: readonly PendingEvent[]): Promise<void> {
    const at = new Date().toISOString()
    for (const pending of events) {
      const event: ModelEvent = { ...pending, at }
      try {
        await this.bus.publish(modelTopic(event.model), event)
        this.stats.published++
      } catch (err) {
        this.stats.failed++
        this.logger.error({ err, model: event.model, verb: event.verb, recordId: event.recordId }, 'realtime: could not publish an event; the write stands')
      }
    }
  }
}
