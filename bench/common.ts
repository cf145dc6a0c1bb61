/**
 * What the benchmark's processes share: the scenarios, the servers, the messages they exchange
 * over IPC, the clock, and a latency histogram.
 */

/** The servers of the one-gateway runs (`fanout`, `scale`), each started in a process of its own. */
export const serverKinds = ['raw-ws', 'ws-preframed', 'socket.io', 'yoga', 'mizzen', 'mizzen-no-metrics'] as const
/** The default `fanout` servers (`mizzen-no-metrics` on demand: it shows what counting costs). */
export const defaultServers = ['raw-ws', 'ws-preframed', 'socket.io', 'yoga', 'mizzen'] as const
/**
 * The servers of the `cluster` runs: two processes of each on one Redis of the benchmark's own
 * (`-redis`), or on a Redis Cluster of its own, three primaries and three replicas
 * (`-redis-cluster`: sharded pub/sub), subscribers on one, publishes through the other.
 */
export const clusterKinds = [
  'ws-redis',
  'socket.io-redis',
  'mizzen-redis',
  'ws-redis-cluster',
  'socket.io-redis-cluster',
  'mizzen-redis-cluster',
] as const
/** Whether a cluster server kind runs on a Redis Cluster (else on one Redis). */
export const onRedisCluster = (kind: ServerKind) => kind.endsWith('-redis-cluster')
export type ServerKind = (typeof serverKinds)[number] | (typeof clusterKinds)[number]

export const serverNames: Record<ServerKind, string> = {
  'raw-ws': 'raw ws (one string to every socket)',
  'ws-preframed': 'ws, one pre-built frame to every socket',
  'socket.io': 'Socket.IO 4 room broadcast',
  yoga: 'graphql-yoga + graphql-ws, createPubSub',
  mizzen: 'mizzen',
  'mizzen-no-metrics': 'mizzen, metrics off',
  'ws-redis': 'raw ws + Redis pub/sub (by hand)',
  'socket.io-redis': 'Socket.IO 4 + @socket.io/redis-adapter',
  'mizzen-redis': 'mizzen, Redis bus and rooms registry',
  'ws-redis-cluster': 'raw ws + Redis Cluster sharded pub/sub (by hand)',
  'socket.io-redis-cluster': 'Socket.IO 4 + sharded redis-adapter, Redis Cluster',
  'mizzen-redis-cluster': 'mizzen, Redis bus and rooms registry on Redis Cluster',
}

/**
 * What the subscribers watch:
 * - `room`: `room(name)`, fed by a broadcast to that room;
 * - `userEvents`: `userEvents(ids, verbs)`, fed by MESSAGE events on one record (`publishUser`);
 * - `postEvents`: `postEvents(where)` for two users whose row policies differ (half each), fed by
 *   updates of a published post that both may see.
 */
export const scenarios = ['room', 'userEvents', 'postEvents'] as const
export type Scenario = (typeof scenarios)[number]

/** The operations the GraphQL clients subscribe with (mizzen and Yoga serve the same ones). */
export const subscriptionQuery: Record<Scenario, string> = {
  room: 'subscription { room(name: "bench") { event data sentAt } }',
  userEvents: 'subscription { userEvents(ids: ["1"], verbs: [MESSAGE]) { verb recordId data } }',
  postEvents:
    'subscription { postEvents(where: { published: { equals: true } }) { verb recordId node { title published } } }',
}

/** The two users of `postEvents` (their JWT `sub`); clients alternate between them. */
export const benchUsers = ['1', '2'] as const
export const BENCH_JWT_SECRET = 'bench-secret-that-is-at-least-32-characters'

/**
 * Microseconds on the machine's monotonic clock (CLOCK_MONOTONIC, the same for every process):
 * the server stamps each message with it, the load generators subtract it from their own.
 */
export const nowMicros = () => Number(process.hrtime.bigint() / 1000n)

/**
 * What a published message carries, in every server's frame: its number (1, 2, … in publication
 * order) and when the server published it (at the fixed rate, when it was due to be published:
 * server-process.ts, runRate).
 */
export interface Stamp {
  seq: number
  t: number
}

/** A post's title carries the stamp (postEvents delivers records, not free data). */
export const stampTitle = ({ seq, t }: Stamp) => `${seq}:${t}`

// ---- IPC ---------------------------------------------------------------------------------------

export type ServerRequest =
  | { type: 'count' }
  | { type: 'memory' }
  | { type: 'cpu' }
  /** Publish `count` messages from `from` at `perSecond`, evenly spaced. */
  | { type: 'rate'; from: number; count: number; perSecond: number }
  /** Publish as fast as delivery allows: every message up to `upTo` (raised as clients keep up). */
  | { type: 'credit'; upTo: number }
  | { type: 'stop-publishing' }

export type ServerReply =
  | { type: 'ready'; port: number }
  | { type: 'count'; subscribers: number }
  /** After a full GC; `heapLimit` is V8's limit on the heap (what --max-old-space-size sets). */
  | { type: 'memory'; rss: number; heapUsed: number; heapLimit: number }
  /**
   * CPU time so far (µs), and the JS heap allocated so far (bytes: heap in use now plus what every
   * garbage collection freed) and the time spent in garbage collection (µs).
   */
  | { type: 'cpu'; user: number; system: number; allocated: number; gcMicros: number }
  | { type: 'published'; last: number }
  | { type: 'error'; message: string }

export interface LoadPlan {
  url: string
  server: ServerKind
  scenario: Scenario
  /** Connections this generator opens. */
  connections: number
  /** Index of its first connection among all (for alternating users). */
  offset: number
  /** `raw` speaks graphql-transport-ws over `ws` by hand; `graphql-ws` uses the graphql-ws client. */
  client: 'raw' | 'graphql-ws'
  /** JWTs by user, for postEvents on mizzen. */
  tokens?: Record<string, string>
}

export type LoadRequest =
  | { type: 'connect'; plan: LoadPlan }
  /** Counts messages from seq `from` to `to` (inclusive) as this phase's. */
  | { type: 'phase'; from: number; to: number }
  | { type: 'report' }
  | { type: 'close' }

export type LoadReply =
  | { type: 'connected'; connections: number; failed: number }
  /** The lowest seq every connection has reached, and how many messages arrived in all. */
  | { type: 'progress'; minSeq: number; received: number }
  | { type: 'report'; received: number; reordered: number; histogram: number[]; minSeq: number }
  | { type: 'error'; message: string }

// ---- latency histogram -------------------------------------------------------------------------

/** Buckets of about 2% width from 1 µs to over 100 s: enough for percentiles, small to merge. */
const BUCKETS_PER_DOUBLING = 32
const BUCKETS = 28 * BUCKETS_PER_DOUBLING

export class Histogram {
  readonly counts: number[]

  constructor(counts?: number[]) {
    this.counts = counts ?? new Array<number>(BUCKETS).fill(0)
  }

  record(micros: number): void {
    const index = micros <= 1 ? 0 : Math.min(BUCKETS - 1, Math.floor(Math.log2(micros) * BUCKETS_PER_DOUBLING))
    this.counts[index]!++
  }

  merge(other: Histogram | number[]): void {
    const counts = Array.isArray(other) ? other : other.counts
    for (let i = 0; i < BUCKETS; i++) this.counts[i]! += counts[i] ?? 0
  }

  get total(): number {
    return this.counts.reduce((sum, n) => sum + n, 0)
  }

  /** The value below which `fraction` of the samples fall, in µs (upper edge of its bucket). */
  percentile(fraction: number): number {
    const total = this.total
    if (total === 0) return Number.NaN
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.counts[i]!
      if (seen >= fraction * total) return 2 ** ((i + 1) / BUCKETS_PER_DOUBLING)
    }
    return Number.POSITIVE_INFINITY
  }
}
