/**
 * The deployments a fan-out is measured on: one server process pinned to CPU 0, or a cluster of
 * two server processes and a Redis of the benchmark's own, all three pinned to CPU 0 (the load
 * generators have CPU 1), subscribers on the first, publishes through the second.
 */
import { join } from 'node:path'
import type { Scenario, ServerKind, ServerReply } from './common.ts'
import type { Deployment } from './fanout.ts'
import { ask, reply, spawnNode, startRedis, stop, type SpawnOptions } from './processes.ts'

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
    const redis = await startRedis(0)
    const env = { BENCH_REDIS_URL: redis.url }
    const started: Awaited<ReturnType<typeof startServer>>[] = []
    try {
      started.push(await startServer(kind, scenario, `cluster-${kind}-subscribers`, options, env))
      started.push(await startServer(kind, scenario, `cluster-${kind}-publisher`, options, env))
    } catch (error) {
      await Promise.all(started.map(({ child }) => stop(child)))
      await redis.stop()
      throw error
    }
    const [front, publisher] = started as [(typeof started)[0], (typeof started)[0]]
    return {
      front: front.child,
      publisher: publisher.child,
      port: front.port,
      meters: [
        { name: 'publishing gateway', read: () => cpuOf(publisher.child) },
        { name: 'Redis', read: async () => redis.cpuMicros() },
      ],
      stop: async () => {
        try {
          console.log(`    Redis, where its time went (${kind}): ${redis.topCommands().join('; ')}`)
        } catch {}
        await Promise.all([stop(front.child, grace(options)), stop(publisher.child, grace(options))])
        await redis.stop()
      },
    }
  }
