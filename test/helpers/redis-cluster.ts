/**
 * A Redis Cluster of a test's own: six `redis-server --cluster-enabled yes` processes (three
 * primaries, three replicas) on consecutive ports of 7000-7099 (their cluster bus ports, +10000,
 * must be free too), each with an append-only file, made one cluster by `redis-cli --cluster
 * create`. A node's timeout is short (1 s) so that a killed primary fails over in a few seconds.
 *
 *   const cluster = await startRedisCluster()
 *   cluster.seeds                        // ['127.0.0.1:7000', …] for createRedisBus({ cluster })
 *   await cluster.primaries()            // [{ port, slots: [[from, to], …] }, …]
 *   await cluster.kill(port)             // SIGKILL one node
 *   await cluster.waitHealthy()          // every slot served again (after a failover)
 *   await cluster.stop()                 // in afterAll: kills all and removes their files
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { portFree } from './free-port.ts'

export interface ClusterPrimary {
  readonly port: number
  /** Slot ranges it serves, inclusive. */
  readonly slots: readonly (readonly [number, number])[]
}

export interface RedisCluster {
  readonly ports: readonly number[]
  /** `127.0.0.1:<port>` of every node: seed nodes. */
  readonly seeds: readonly string[]
  /** The primaries serving slots now, as the first live node sees them. */
  primaries(): Promise<ClusterPrimary[]>
  /** The port of the primary serving `slot` now. */
  primaryOf(slot: number): Promise<number>
  /** SIGKILLs one node; resolves once it exited. */
  kill(port: number): Promise<void>
  /** Resolves once every live node says cluster_state:ok and every slot has a live primary. */
  waitHealthy(timeoutMs?: number): Promise<void>
  /** Kills every node and removes their files. */
  stop(): Promise<void>
}

const NODES = 6
const FIRST_PORT = 7000
const LAST_PORT = 7099

/** Six consecutive ports of the range whose cluster bus ports are free as well. */
async function freePorts(): Promise<number[]> {
  // Start at a random place, so that files running at once rarely race for the same ports.
  const span = LAST_PORT - FIRST_PORT + 1 - NODES + 1
  const offset = Math.floor(Math.random() * span)
  for (let i = 0; i < span; i++) {
    const base = FIRST_PORT + ((offset + i) % span)
    const ports = Array.from({ length: NODES }, (_, n) => base + n)
    const checks = await Promise.all(ports.flatMap((port) => [portFree(port), portFree(port + 10_000)]))
    if (checks.every(Boolean)) return ports
  }
  throw new Error(`no ${NODES} consecutive free ports in ${FIRST_PORT}-${LAST_PORT}`)
}

async function run(command: string, args: string[]): Promise<string> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const [code] = (await once(child, 'exit')) as [number | null]
  if (code !== 0) throw new Error(`${command} ${args.join(' ')} exited ${code}:\n${output}`)
  return output
}

/** One short-lived connection's answer to a command, or undefined when the node does not answer. */
async function ask(port: number, ...command: string[]): Promise<unknown> {
  const redis = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 500 })
  redis.on('error', () => {})
  try {
    await redis.connect()
    return await redis.call(command[0]!, ...command.slice(1))
  } catch {
    return undefined
  } finally {
    redis.disconnect()
  }
}

export async function startRedisCluster(): Promise<RedisCluster> {
  const ports = await freePorts()
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-redis-cluster-'))
  const children = new Map<number, { child: ChildProcess; exited: Promise<unknown> }>()

  const stop = async () => {
    await Promise.all(
      [...children.values()].map(async ({ child, exited }) => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
        await exited
      }),
    )
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    for (const port of ports) {
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          `nodes-${port}.conf`,
          '--cluster-node-timeout',
          '1000',
          '--appendonly',
          'yes',
          '--appendfilename',
          `appendonly-${port}.aof`,
          '--appenddirname',
          `aof-${port}`,
          '--appendfsync',
          'always',
          '--save',
          '',
          '--protected-mode',
          'no',
          '--logfile',
          join(dir, `redis-${port}.log`),
        ],
        { stdio: 'ignore' },
      )
      children.set(port, { child, exited: once(child, 'exit') })
    }
    for (const port of ports) {
      const deadline = Date.now() + 10_000
      while ((await ask(port, 'PING')) !== 'PONG') {
        if (Date.now() > deadline) throw new Error(`redis-server on ${port} did not start`)
        await sleep(50)
      }
    }
    await run('redis-cli', [
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '1',
      '--cluster-yes',
    ])
  } catch (error) {
    await stop()
    throw error
  }

  const killed = new Set<number>()
  const live = () => ports.filter((port) => !killed.has(port))

  async function primaries(): Promise<ClusterPrimary[]> {
    for (const port of live()) {
      const text = await ask(port, 'CLUSTER', 'NODES')
      if (typeof text !== 'string') continue
      const found: ClusterPrimary[] = []
      for (const line of text.trim().split('\n')) {
        const fields = line.split(' ')
        const flags = fields[2]!.split(',')
        if (!flags.includes('master') || flags.includes('fail') || flags.includes('fail?')) continue
        const slots = fields
          .slice(8)
          .filter((range) => /^\d/.test(range))
          .map((range) => {
            const [from, to = from] = range.split('-').map(Number)
            return [from!, to!] as const
          })
        if (slots.length) found.push({ port: Number(/:(\d+)@/.exec(fields[1]!)![1]), slots })
      }
      return found
    }
    throw new Error('no cluster node answers')
  }

  const cluster: RedisCluster = {
    ports,
    seeds: ports.map((port) => `127.0.0.1:${port}`),
    primaries,
    async primaryOf(slot) {
      const primary = (await primaries()).find(({ slots }) => slots.some(([from, to]) => slot >= from && slot <= to))
      if (!primary) throw new Error(`no live primary serves slot ${slot}`)
      return primary.port
    },
    async kill(port) {
      const entry = children.get(port)
      if (!entry || killed.has(port)) return
      killed.add(port)
      entry.child.kill('SIGKILL')
      await entry.exited
    },
    async waitHealthy(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs
      for (;;) {
        const states = await Promise.all(live().map((port) => ask(port, 'CLUSTER', 'INFO')))
        const ok = states.every((state) => typeof state === 'string' && state.includes('cluster_state:ok'))
        if (ok) {
          const served = (await primaries()).flatMap(({ slots }) => slots).reduce((sum, [a, b]) => sum + b - a + 1, 0)
          if (served === 16_384) return
        }
        if (Date.now() > deadline) throw new Error('the Redis cluster did not become healthy')
        await sleep(100)
      }
    },
    stop,
  }
  await cluster.waitHealthy()
  // A replica that has not finished its first sync with its primary cannot replace it.
  const deadline = Date.now() + 30_000
  for (;;) {
    const replication = await Promise.all(ports.map((port) => ask(port, 'INFO', 'replication')))
    const replicas = replication.filter((info) => typeof info === 'string' && info.includes('role:slave'))
    if (replicas.length === NODES / 2 && replicas.every((info) => (info as string).includes('master_link_status:up')))
      break
    if (Date.now() > deadline) {
      await stop()
      throw new Error('the Redis cluster replicas did not sync with their primaries')
    }
    await sleep(100)
  }
  return cluster
}
