/**
 * The gateway's metrics (docs/operations.md, Metrics), for `GET /metrics` in Prometheus text (prom-client).
 *
 * Cost on the hot path: the counters the fan-out touches (`delivered`, `dropped`, `published`,
 * `busError`) are plain numbers in this object, added to in place and handed to prom-client
 * only when /metrics is scraped; the latency histogram is observed once per event's fan-out, not
 * per socket. With metrics off (`MIZZEN_METRICS=false`), `noopMetrics` takes every call and does
 * nothing.
 *
 *   mizzen_connections                      gauge    open WebSocket connections
 *   mizzen_subscriptions{kind}              gauge    running subscriptions (model, room, messages) and live queries (live)
 *   mizzen_events_published_total           counter  model events and room messages this gateway put on the bus
 *   mizzen_deliveries_total{kind}           counter  results handed to sockets
 *   mizzen_deliveries_dropped_total{reason} counter  deliveries that will never happen, by reason
 *   mizzen_bus_errors_total                 counter  bus failures (publish, connection, listener)
 *   mizzen_delivery_latency_seconds         histogram from an event's publication to its fan-out on this gateway
 *   mizzen_capture_lag_bytes                gauge    change capture: WAL the replication slot has not confirmed (docs/capture.md)
 *   mizzen_capture_events_total             counter  change capture: events this gateway published from the log
 *   mizzen_bus_outbox_messages              gauge    messages waiting in the bus's outbox for Redis
 *   mizzen_bus_outbox_bytes                 gauge    bytes of their payloads
 *   mizzen_bus_gaps_total                   counter  topics whose missed messages could no longer be delivered here
 *   mizzen_bus_replayed_total               counter  messages sent again to a Redis that came back without its data
 *   mizzen_resyncs_total{reason}            counter  cursors refused with RESYNC_REQUIRED, by reason
 *
 * The bus series are read from the bus's own counters (`Bus.stats`, docs/architecture.md §9) at
 * scrape time; a bus without them (the memory bus) reads 0.
 *
 * plus prom-client's Node defaults (process CPU, memory, event loop lag, GC, handles), once per
 * process.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { ResyncRequiredError, resyncReasons, type Bus, type BusStats, type ResyncReason } from './bus/bus.ts'

/** What a subscription listens to: `mEvents`, `room`, `messages`, `presence`; or a live query (`query @live`). */
export const subscriptionKinds = ['model', 'room', 'messages', 'presence', 'live'] as const
export type SubscriptionKind = (typeof subscriptionKinds)[number]

/**
 * Why a delivery will never happen:
 * - `slow_consumer`: the socket was dropped for leaving too much unread (`MIZZEN_MAX_BUFFERED_BYTES`);
 * - `outbox_overflow`: the bus's outbox (Redis away) was full, so other gateways never get it;
 * - `publish_failed`: the bus refused the event (it was closed): a write stands, its event went nowhere.
 */
export const dropReasons = ['slow_consumer', 'outbox_overflow', 'publish_failed'] as const
export type DropReason = (typeof dropReasons)[number]

/** Upper bounds of the latency histogram, in seconds: 0.5 ms to 10 s. */
export const latencyBuckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10]

export interface Metrics {
  /** False for `noopMetrics`: nothing is counted and /metrics is not served. */
  readonly enabled: boolean
  /** A subscription of `kind` started (one more on `mizzen_subscriptions{kind}`). */
  subscriptionStarted(kind: SubscriptionKind): void
  /** A subscription of `kind` ended, however it ended. Call once per `subscriptionStarted`. */
  subscriptionEnded(kind: SubscriptionKind): void
  /** `count` results of subscriptions of `kind` were handed to their sockets (call once per fan-out batch where you can). */
  delivered(kind: SubscriptionKind, count?: number): void
  /** `count` deliveries will never happen, for `reason`. */
  dropped(reason: DropReason, count?: number): void
  /** `count` events (model events, room messages) were handed to the bus by this gateway. */
  published(count?: number): void
  /** The bus failed once (a publish, its connection, a message it could not read). */
  busError(): void
  /** One event's fan-out on this gateway is done: observes the time since `publishedAtMs` (epoch ms; the event's `at`). */
  deliveryLatency(publishedAtMs: number): void
  /** Where `mizzen_connections` is read from at scrape time (the WebSocket server's count). */
  countConnectionsWith(read: () => number): void
  /** Where the change capture metrics are read from at scrape time (capture mode only). */
  countCaptureWith(read: () => Promise<CaptureReading>): void
  /** Where the `mizzen_bus_*` series are read from at scrape time (the bus's `stats`; undefined reads 0). */
  countBusWith(read: () => BusStats | undefined): void
  /** A subscription's cursor was refused with RESYNC_REQUIRED, for `reason`. */
  resyncRequired(reason: ResyncReason): void
  /** The Prometheus text exposition of every metric (Node defaults first). */
  render(): Promise<string>
  /** The Content-Type of `render()`'s text. */
  readonly contentType: string
}

/** What change capture reports at each scrape. */
export interface CaptureReading {
  /** WAL written since the slot's confirmed position, in bytes; undefined while unknown. */
  readonly lagBytes: number | undefined
  /** Events published from the log by this gateway. */
  readonly events: number
}

/** Takes every call and does nothing (`MIZZEN_METRICS=false`). */
export const noopMetrics: Metrics = {
  enabled: false,
  subscriptionStarted() {},
  subscriptionEnded() {},
  delivered() {},
  dropped() {},
  published() {},
  busError() {},
  deliveryLatency() {},
  countConnectionsWith() {},
  countCaptureWith() {},
  countBusWith() {},
  resyncRequired() {},
  render: async () => '',
  contentType: 'text/plain; version=0.0.4; charset=utf-8',
}

/** Node's process metrics, one set per process however many gateways it runs (tests run several). */
let processRegistry: Registry | undefined
function processMetrics(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry()
    collectDefaultMetrics({ register: processRegistry })
  }
  return processRegistry
}

const zeroes = <K extends string>(keys: readonly K[]) =>
  Object.fromEntries(keys.map((key) => [key, 0])) as Record<K, number>

/** Counts in plain numbers; prom-client reads them when scraped. */
class GatewayMetrics implements Metrics {
  readonly enabled = true
  readonly contentType: string
  readonly #registry = new Registry()
  readonly #subscriptions = zeroes(subscriptionKinds)
  readonly #deliveries = zeroes(subscriptionKinds)
  readonly #drops = zeroes(dropReasons)
  #published = 0
  #busErrors = 0
  readonly #resyncs = zeroes(resyncReasons)
  #connections: () => number = () => 0
  #capture: (() => Promise<CaptureReading>) | undefined
  #busStats: () => BusStats | undefined = () => undefined
  readonly #latency: Histogram

  constructor() {
    this.contentType = this.#registry.contentType
    const registers = [this.#registry]
    const subscriptions = this.#subscriptions
    const deliveries = this.#deliveries
    const drops = this.#drops
    const self = this
    new Gauge({
      name: 'mizzen_connections',
      help: 'Open WebSocket connections.',
      registers,
      collect() {
        this.set(self.#connections())
      },
    })
    new Gauge({
      name: 'mizzen_subscriptions',
      help: 'Running subscriptions, by kind (model: mEvents; room; messages; live: query @live).',
      labelNames: ['kind'],
      registers,
      collect() {
        for (const kind of subscriptionKinds) this.set({ kind }, subscriptions[kind])
      },
    })
    // Counters are rebuilt from the plain numbers at each scrape: reset, then add the total.
    new Counter({
      name: 'mizzen_events_published_total',
      help: 'Model events and room messages this gateway handed to the bus.',
      registers,
      collect() {
        this.reset()
        this.inc(self.#published)
      },
    })
    new Counter({
      name: 'mizzen_deliveries_total',
      help: 'Subscription results handed to sockets, by kind.',
      labelNames: ['kind'],
      registers,
      collect() {
        this.reset()
        for (const kind of subscriptionKinds) this.inc({ kind }, deliveries[kind])
      },
    })
    new Counter({
      name: 'mizzen_deliveries_dropped_total',
      help: 'Deliveries that will never happen, by reason (slow_consumer, outbox_overflow, publish_failed).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset()
        for (const reason of dropReasons) this.inc({ reason }, drops[reason])
      },
    })
    new Counter({
      name: 'mizzen_bus_errors_total',
      help: 'Bus failures: publishes, connection errors, messages that could not be read.',
      registers,
      collect() {
        this.reset()
        this.inc(self.#busErrors)
      },
    })
    // Registered only in capture mode, at the first countCaptureWith.
    this.#registerCapture = () => {
      new Gauge({
        name: 'mizzen_capture_lag_bytes',
        help: 'Change capture: WAL written since the position the replication slot confirmed, in bytes.',
        registers,
        async collect() {
          const reading = await self.#capture?.()
          if (reading?.lagBytes !== undefined) this.set(reading.lagBytes)
        },
      })
      new Counter({
        name: 'mizzen_capture_events_total',
        help: 'Change capture: model events this gateway published from the log.',
        registers,
        async collect() {
          const reading = await self.#capture?.()
          this.reset()
          this.inc(reading?.events ?? 0)
        },
      })
    }
    const bus = () => self.#busStats() ?? { queued: 0, queuedBytes: 0, gaps: 0, replayed: 0 }
    new Gauge({
      name: 'mizzen_bus_outbox_messages',
      help: 'Messages waiting in the bus’s outbox for Redis (0 with the memory bus).',
      registers,
      collect() {
        this.set(bus().queued)
      },
    })
    new Gauge({
      name: 'mizzen_bus_outbox_bytes',
      help: 'Bytes of the payloads waiting in the bus’s outbox.',
      registers,
      collect() {
        this.set(bus().queuedBytes)
      },
    })
    new Counter({
      name: 'mizzen_bus_gaps_total',
      help: 'Times this gateway missed messages of a topic it could no longer deliver: the topic’s subscriptions here ended with RESYNC_REQUIRED.',
      registers,
      collect() {
        this.reset()
        this.inc(bus().gaps)
      },
    })
    new Counter({
      name: 'mizzen_bus_replayed_total',
      help: 'Messages this gateway sent again to a Redis that came back without its data.',
      registers,
      collect() {
        this.reset()
        this.inc(bus().replayed)
      },
    })
    const resyncs = this.#resyncs
    new Counter({
      name: 'mizzen_resyncs_total',
      help: 'Cursors (after:) refused with RESYNC_REQUIRED, by reason (malformed, other-history, other-epoch, trimmed).',
      labelNames: ['reason'],
      registers,
      collect() {
        this.reset()
        for (const reason of resyncReasons) this.inc({ reason }, resyncs[reason])
      },
    })
    this.#latency = new Histogram({
      name: 'mizzen_delivery_latency_seconds',
      help: 'Time from an event’s publication (its `at`) to the end of its fan-out on this gateway.',
      buckets: latencyBuckets,
      registers,
    })
  }

  subscriptionStarted(kind: SubscriptionKind): void {
    this.#subscriptions[kind]++
  }

  subscriptionEnded(kind: SubscriptionKind): void {
    this.#subscriptions[kind]--
  }

  delivered(kind: SubscriptionKind, count = 1): void {
    this.#deliveries[kind] += count
  }

  dropped(reason: DropReason, count = 1): void {
    this.#drops[reason] += count
  }

  published(count = 1): void {
    this.#published += count
  }

  busError(): void {
    this.#busErrors++
  }

  deliveryLatency(publishedAtMs: number): void {
    const seconds = (Date.now() - publishedAtMs) / 1000
    // A clock behind the publisher's gives a negative age: count it as immediate.
    if (seconds >= 0) this.#latency.observe(seconds)
    else if (Number.isFinite(seconds)) this.#latency.observe(0)
  }

  countConnectionsWith(read: () => number): void {
    this.#connections = read
  }

  readonly #registerCapture: () => void

  countCaptureWith(read: () => Promise<CaptureReading>): void {
    if (!this.#capture) this.#registerCapture()
    this.#capture = read
  }

  countBusWith(read: () => BusStats | undefined): void {
    this.#busStats = read
  }

  resyncRequired(reason: ResyncReason): void {
    this.#resyncs[reason]++
  }

  async render(): Promise<string> {
    return `${await processMetrics().metrics()}\n${await this.#registry.metrics()}`
  }
}

export interface MetricsOptions {
  /** Count and serve /metrics. `MIZZEN_METRICS`. @default true */
  enabled?: boolean
}

/** A gateway's metrics: its own registry (several gateways in one process do not mix), or `noopMetrics`. */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  return options.enabled === false ? noopMetrics : new GatewayMetrics()
}

/**
 * `bus` counting what this gateway publishes (`mizzen_events_published_total`), what the outbox
 * drops (`mizzen_deliveries_dropped_total{reason="outbox_overflow"}`) and the cursors it refuses
 * (`mizzen_resyncs_total{reason}`). The same bus when metrics are off.
 */
export function countingBus(bus: Bus, metrics: Metrics): Bus {
  if (!metrics.enabled) return bus
  const counted = (error: unknown) => {
    if (error instanceof ResyncRequiredError) metrics.resyncRequired(error.reason)
    return error
  }
  return {
    async publish(topic, payload, options) {
      // Model events and room messages are what clients receive; `presence:changed` is the
      // gateways' own notice to read presence again (docs/architecture.md §13), not an event.
      if (topic !== 'presence:changed') metrics.published()
      let outcome
      try {
        outcome = await bus.publish(topic, payload, options)
      } catch (error) {
        // The bus refused it (closed): nobody, here or elsewhere, gets this event.
        metrics.dropped('publish_failed')
        throw error
      }
      if (outcome === 'dropped') metrics.dropped('outbox_overflow')
      return outcome
    },
    subscribe: (topic, listener, options) => bus.subscribe(topic, listener, options),
    resume(topic, cursor, key) {
      let resumption
      try {
        resumption = bus.resume(topic, cursor, key)
      } catch (error) {
        throw counted(error)
      }
      // A history trimmed past the cursor is found while reading the replay.
      return {
        next: () =>
          resumption.next().catch((error: unknown) => {
            throw counted(error)
          }),
        wants: (mark) => resumption.wants(mark),
        cursor: (mark) => resumption.cursor(mark),
        settled: () => resumption.settled(),
      }
    },
    ...(bus.latest ? { latest: (topic) => bus.latest!(topic) } : {}),
    ping: () => bus.ping(),
    close: () => bus.close(),
  }
}
