/**
 * Where mizzen's Redis users (the bus, the rooms registry) connect: one Redis server (`url`) or a
 * Redis Cluster (`cluster`: seed nodes), and how a connection to either is opened. A cluster
 * connection follows the slot map (failovers, resharding) by itself; a subscriber connection to
 * a cluster uses sharded pub/sub (one subscriber per primary, SSUBSCRIBE), so that a message is
 * carried only by the shard its channel hashes to (see docs/scaling.md).
 */
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis'

/** One Redis server, or the seed nodes of a Redis Cluster (`host:port`; any of its nodes will do). */
export type RedisTarget = { readonly url: string } | { readonly cluster: readonly string[] }

/** `host:port` → a cluster node; throws naming `setting` on anything else. */
export function parseClusterNode(text: string, setting = 'cluster'): ClusterNode {
  const match = /^\[?([^\s[\]]+?)\]?:(\d{1,5})$/.exec(text.trim())
  const port = match ? Number(match[2]) : Number.NaN
  if (!match || port < 1 || port > 65_535)
    throw new Error(`${setting}: expected host:port, got ${JSON.stringify(text)}`)
  return { host: match[1]!, port }
}

/** The target of `url`/`cluster` options: exactly one of them, checked. */
export function redisTarget(options: { url?: string; cluster?: readonly string[] }): RedisTarget {
  if (options.url !== undefined && options.cluster !== undefined)
    throw new Error('give either url (one Redis) or cluster (Redis Cluster seed nodes), not both')
  if (options.cluster !== undefined) {
    if (!options.cluster.length) throw new Error('cluster: give at least one seed node (host:port)')
    for (const node of options.cluster) parseClusterNode(node)
    return { cluster: options.cluster }
  }
  if (!options.url) throw new Error('give url (one Redis) or cluster (Redis Cluster seed nodes)')
  return { url: options.url }
}

/**
 * Opens (lazily: call `connect()`) a connection to `target`. Commands fail at once while it is
 * down (`enableOfflineQueue: false`): its user decides what waits. `role` `subscriber` on a
 * cluster enables sharded pub/sub.
 */
export function openRedis(
  target: { readonly url: string },
  role: 'commands' | 'subscriber',
  options: RedisOptions,
): Redis
export function openRedis(target: RedisTarget, role: 'commands' | 'subscriber', options: RedisOptions): Redis | Cluster
export function openRedis(
  target: RedisTarget,
  role: 'commands' | 'subscriber',
  options: RedisOptions,
): Redis | Cluster {
  if ('url' in target) return new Redis(target.url, { lazyConnect: true, enableOfflineQueue: false, ...options })
  const { retryStrategy, ...nodeOptions } = options
  return new Cluster(
    target.cluster.map((node) => parseClusterNode(node)),
    {
      lazyConnect: true,
      enableOfflineQueue: false,
      shardedSubscribers: role === 'subscriber',
      // A failover takes the cluster a node timeout or so: retry redirected and refused commands
      // meanwhile, a few times, then let the user's own recovery take over.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      maxRedirections: 16,
      ...(retryStrategy ? { clusterRetryStrategy: (attempt: number) => retryStrategy(attempt) ?? null } : {}),
      redisOptions: { enableOfflineQueue: false, ...nodeOptions },
    },
  )
}
