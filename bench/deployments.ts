/**
 * The deployments a fan-out is measured on: one server process pinned to CPU 0, or a cluster of
 * two server processes and a Redis of the benchmark's own, all three pinned to CPU 0 (the load
 * generators have CPU 1), subscribers on the first, publishes through the second. For the
 * `-redis-cluster` kinds, the Redis is a Redis Cluster of the benchmark's own (six nodes, three
 * primaries, also on CPU 0), which holds everything (mizzen: its bus and its rooms registry, as
 * MIZZEN_REDIS_CLUSTER runs them).
 */
import { join } from 'node:path'
import { onRedisCluster, type Scenario, type ServerKind, type ServerReply } from './common.ts'
import type { Deployment } from './fanout.ts'
import { ask, reply, spawnNode, startRedis, startRedisCluster, stop, type SpawnOptions } from './processes.ts'

export interface ServerOptions {
  /** A directory: the server runs under `node --cpu-prof`, its profile in `<dir>/<name>/`. */
  cpuProfileDir?: string
  /** More node flags (BENCH_NODE_FLAGS). */
  nodeFlags?: string[]
  /** Sockets the server must hold (its descriptor limit is raised to fit). */
  descriptors?: number
}

async function startServer(
  kind: ServerKind,
  scenario: Scenario,
  name: string,
  options: ServerOptions,
  env: Record<string, string> = {},
) {
  const spawnOptions: SpawnOptions = {
    nodeFlags: [
      '--expose-gc',
      ...(options.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${join(options.cpuProfileDir, name)}`] : []),
      ...(options.nodeFlags ?? []),
    ],
    descriptors: options.descriptors,
    env,
  }
  const child = spawnNode('server-process.ts', [kind, scenario], 0, spawnOptions)
  try {
    const { port } = await reply<Extract<ServerReply, { type: 'ready' }>>(
      child,
      (m) => m.type === 'ready',
      60_000,
      `${name} start`,
    )
    return { child, port }
  } catch (error) {
    await stop(child)
    throw error
  }
}

/** A profiled server gets time to exit normally: --cpu-prof writes its profile then. */
const grace = (options: ServerOptions) => (options.cpuProfileDir ? 30_000 : 0)

export const oneServer =
  (kind: ServerKind, scenario: Scenario, options: ServerOptions = {}) =>
  async (): Promise<Deployment> => {
    const { child, port } = await startServer(kind, scenario, `${scenario}-${kind}`, options)
    return { front: child, publisher: child, port, meters: [], stop: () => stop(child, grace(options)) }
  }

const cpuOf = async (child: Parameters<typeof ask>[0]) => {
  const { user, system } = await ask(child, { type: 'cpu' }, 'cpu')
  return user + system
}

export const cluster =
  (kind: ServerKind, scenario: Scenario, options: ServerOptions = {}) =>
  async (): Promise<Deployment> => {
    const sharded = onRedisCluster(kind)
    const redisCluster = sharded ? await startRedisCluster(0) : undefined
    // One Redis, or a Redis Cluster: everything on it.
    const redis = sharded ? undefined : await startRedis(0)
    const env = {
      ...(redis ? { BENCH_REDIS_URL: redis.url } : {}),
      ...(redisCluster ? { BENCH_REDIS_CLUSTER: redisCluster.seeds.join(',') } : {}),
    }
    const stopRedis = async () => {
      await redis?.stop()
      await redisCluster?.stop()
    }
    const started: Awaited<ReturnType<typeof startServer>>[] = []
    try {
      started.push(await startServer(kind, scenario, `cluster-${kind}-subscribers`, options, env))
      started.push(await startServer(kind, scenario, `cluster-${kind}-publisher`, options, env))
    } catch (error) {
      await Promise.all(started.map(({ child }) => stop(child)))
      await stopRedis()
      throw error
    }
    const [front, publisher] = started as [(typeof started)[0], (typeof started)[0]]
    return {
      front: front.child,
      publisher: publisher.child,
      port: front.port,
      meters: [
        { name: 'publishing gateway', read: () => cpuOf(publisher.child) },
        // On a Redis Cluster: its three primaries' CPU, summed.
        redisCluster
          ? { name: 'Redis', read: async () => redisCluster.cpuMicros() }
          : { name: 'Redis', read: async () => redis!.cpuMicros() },
      ],
      stop: async () => {
        try {
          if (redisCluster)
            console.log(
              `    Redis Cluster primaries, where their time went (${kind}): ${redisCluster.topCommands().join('; ')}`,
            )
          if (redis)
            console.log(
              `    ${redisCluster ? 'The registry’s Redis' : 'Redis'}, where its time went (${kind}): ${redis.topCommands().join('; ')}`,
            )
        } catch {}
        await Promise.all([stop(front.child, grace(options)), stop(publisher.child, grace(options))])
        await stopRedis()
      },
    }
  }
