/**
 * `createRedisRoomRegistry`: room membership shared by every gateway instance on one Redis or a
 * Redis Cluster. The registry itself is in redis-registry.ts; its parts: the Lua scripts and the
 * typed store (redis-scripts.ts; redis-store.ts on one Redis, redis-cluster-store.ts on a
 * cluster, each instance's share in its own slot), the command channel between instances
 * (redis-commands.ts), the mirror of the local state and its healing (redis-mirror.ts), and the
 * heartbeat and sweep (redis-liveness.ts).
 */
import { randomUUID } from 'node:crypto'
import type { Cluster, Redis, RedisOptions } from 'ioredis'
import { openRedis, redisTarget } from '../redis/connection.ts'
import { RedisLink, type RedisSignal } from '../redis/link.ts'
import type { SharedRedis } from '../redis/shared.ts'
import { positiveSetting } from '../errors.ts'
import { MemoryRoomRegistry } from './memory.ts'
import { CommandChannel } from './redis-commands.ts'
import { startLiveness } from './redis-liveness.ts'
import { RedisMirror } from './redis-mirror.ts'
import { RedisPresenceCards } from './redis-presence.ts'
import { RedisRoomRegistry } from './redis-registry.ts'
import { ClusterRoomStore, instancePrefix } from './redis-cluster-store.ts'
import { RoomStore, type RoomStorage } from './redis-store.ts'

export { RoomCommandTimeoutError } from './redis-commands.ts'
export { RedisRoomRegistry } from './redis-registry.ts'

export interface RedisRoomRegistryOptions {
  /** One Redis: `redis://…` or `rediss://…`. Give this or `cluster`. */
  url?: string
  /** A Redis Cluster: seed nodes (`host:port`, any of its nodes). Give this or `url`. */
  cluster?: readonly string[]
  /** Prefix of the registry's keys and channels: instances with the same prefix share membership. @default "mizzen:rooms:" */
  keyPrefix?: string
  /** This instance's id; unique among live instances. Reusing it after a restart drops what the previous run left. @default a random UUID */
  instanceId?: string
  /**
   * How long one Redis call may take, in ms. Past it Redis counts as out of reach: local
   * operations go on without it, cluster-wide ones fail with UNAVAILABLE, and the registry heals
   * once Redis answers. (`MIZZEN_REDIS_TIMEOUT_MS`)
   * @default 2000
   */
  redisTimeoutMs?: number
  /**
   * How long the instance holding a connection (a peer) gets to apply a membership operation
   * sent to it and reply, in ms: not a Redis timeout (that is `redisTimeoutMs`). Past it the
   * operation rejects with RoomCommandTimeoutError (the holder may still apply it later).
   * (`MIZZEN_ROOMS_PEER_TIMEOUT_MS`)
   * @default 5000
   */
  peerTimeoutMs?: number
  /**
   * How long this instance's heartbeat lives in Redis, in ms; it is refreshed every third of
   * that. Once it expired (the process lost Redis that long), or once nobody has listened for
   * its rooms commands for a third of it (the process died), the other instances leave its
   * connections out of every answer, answer NOT_FOUND for them, and purge them.
   * (`MIZZEN_ROOMS_HEARTBEAT_TTL_MS`)
   * @default 10000
   */
  heartbeatTtlMs?: number
  /**
   * How often each instance purges the connections of dead instances from Redis, in ms. (Every
   * cluster read purges them first too.) (`MIZZEN_ROOMS_SWEEP_INTERVAL_MS`)
   * @default 5000
   */
  sweepIntervalMs?: number
  /** Told about failures no caller waits for (losing Redis, heartbeat, sweep, replies, connection errors). */
  onError?: (error: unknown, context: string) => void
  /** Told when the registry is in sync with Redis again after a break. */
  onHealed?: (info: { brokenForMs: number }) => void
  /** Extra ioredis options (both connections). */
  redis?: RedisOptions
  /**
   * The gateway's Redis connections, shared with the bus (src/redis/shared.ts), instead of two of
   * the registry's own (`url`/`cluster` and `redis` are then the shared ones'): their heartbeat
   * and lost/back signal drive the registry's healing, and its command channel subscribes again
   * when the subscriber connection is back.
   */
  shared?: SharedRedis
}

export async function createRedisRoomRegistry(options: RedisRoomRegistryOptions): Promise<RedisRoomRegistry> {
  const redisTimeoutMs = positiveSetting('redisTimeoutMs', options.redisTimeoutMs ?? 2000, 'ms')
  const peerTimeoutMs = positiveSetting('peerTimeoutMs', options.peerTimeoutMs ?? 5000, 'ms')
  const heartbeatTtlMs = positiveSetting('heartbeatTtlMs', options.heartbeatTtlMs ?? 10_000, 'ms')
  const sweepIntervalMs = positiveSetting('sweepIntervalMs', options.sweepIntervalMs ?? 5000, 'ms')
  const prefix = options.keyPrefix ?? 'mizzen:rooms:'
  const instanceId = options.instanceId ?? randomUUID()
  const onError = options.onError ?? (() => {})
  const { shared } = options
  const target = shared ? shared.target : redisTarget(options)
  const sharded = 'cluster' in target
  // Through the shared Redis layer's opener (src/redis/connection.ts): lazy, and failing at once
  // while disconnected rather than queueing (the mirror rewrites what was missed). On a cluster
  // the subscriber is sharded (one per primary) and each instance's keys and channels are in its
  // own slot (redis-cluster-store.ts).
  const connect = (role: 'commands' | 'subscriber'): Redis | Cluster =>
    openRedis(target, role, {
      maxRetriesPerRequest: 1,
      // Reconnect soon after Redis is back (ioredis waits up to 2 s by default).
      retryStrategy: (attempt) => Math.min(attempt * 50, 500),
      connectionName: `mizzen-rooms-${instanceId}`,
      ...options.redis,
    })
  // A subscribed ioredis connection can only (un)subscribe, so commands need their own.
  const commands = shared ? shared.commands : connect('commands')
  const subscriber = shared ? shared.subscriber : connect('subscriber')
  // Until the mirror exists (startup), errors surface through connect(); reported after that by
  // the mirror, once per break. (Shared connections: their owner connects them and reports their
  // errors; the registry follows their signal.)
  let reportError = (_error: unknown) => {}
  if (!shared)
    for (const connection of [commands, subscriber]) connection.on('error', (error: unknown) => reportError(error))
  const release = shared?.use()
  try {
    if (!shared) await Promise.all([commands.connect(), subscriber.connect()])
    const store: RoomStorage = sharded
      ? new ClusterRoomStore(commands as Cluster, prefix, instanceId, redisTimeoutMs)
      : new RoomStore(commands as Redis, prefix, redisTimeoutMs)
    const prefixOf = (instance: string) => (sharded ? instancePrefix(prefix, instance) : prefix)
    // Whatever a previous run under this id left is stale: its connections are gone.
    await store.purge(instanceId, true)
    const local = new MemoryRoomRegistry()
    const mirror = new RedisMirror({
      instanceId,
      store,
      snapshot: () => local.snapshot(),
      heartbeatTtlMs,
      retryMs: Math.min(1000, Math.max(1, Math.floor(heartbeatTtlMs / 3))),
      ping: () => store.ping(),
      onError,
      onHealed: options.onHealed,
    })
    const cards = new RedisPresenceCards({
      redis: commands,
      prefix,
      hashPrefix: prefixOf(instanceId),
      ...(store instanceof ClusterRoomStore
        ? { readStored: (ids: readonly string[]) => store.presenceCards(ids) }
        : {}),
      instanceId,
      timeoutMs: redisTimeoutMs,
      heartbeatTtlMs,
      card: (connectionId) => local.presenceCard(connectionId),
      held: () => local.snapshot().keys(),
      onError,
    })
    const parts = {
      instanceId,
      local,
      store,
      mirror,
      cards,
      // Shared connections are given back (the last user closes them), not closed.
      connections: shared ? [] : [commands, subscriber],
      release,
      heartbeatTtlMs,
      redisTimeoutMs,
      onError,
    }
    const registry = new RedisRoomRegistry(parts)
    const channel = await CommandChannel.open({
      instance: instanceId,
      prefixOf,
      publisher: commands,
      subscriber,
      sharded,
      retryMs: Math.min(1000, Math.max(1, Math.floor(heartbeatTtlMs / 3))),
      timeoutMs: peerTimeoutMs,
      handle: (command) => registry.applyFromPeer(command),
      onError: (error) => onError(error, 'rooms command channel'),
    })
    await store.heartbeat(instanceId, heartbeatTtlMs)
    // Any break in the connection that carries the writes may have lost some, or Redis may have
    // restarted empty: rewrite once it is back, whichever data it holds. The lost/back signal is
    // the shared Redis layer's (src/redis/link.ts); the registry's own liveness beats below.
    // On shared connections, their link's heartbeat covers the registry too.
    const link =
      shared?.commandsLink ??
      (await RedisLink.open({ connection: commands, name: 'rooms registry', timeoutMs: redisTimeoutMs, onError }))
    const onSignal = (signal: RedisSignal) => {
      if (signal.kind === 'lost') mirror.broke(new Error('the connection to Redis closed'), 'rooms registry lost Redis')
      else mirror.reconnected()
    }
    link.follow(onSignal)
    // A shared subscriber does not resubscribe by itself (the bus catches up its own topics).
    const onSubscriber = (signal: RedisSignal) => {
      if (signal.kind === 'back') channel.resubscribe()
    }
    shared?.subscriberLink.follow(onSubscriber)
    reportError = (error) => mirror.broke(error, 'rooms registry lost Redis')
    const stopLiveness = startLiveness({ mirror, store, heartbeatTtlMs, sweepIntervalMs })
    const stopCards = cards.start()
    registry.attach(channel, () => {
      stopLiveness()
      stopCards()
      if (shared) {
        link.unfollow(onSignal)
        shared.subscriberLink.unfollow(onSubscriber)
      } else link.close()
    })
    return registry
  } catch (error) {
    if (release) await release()
    else {
      commands.disconnect()
      subscriber.disconnect()
    }
    throw error
  }
}
