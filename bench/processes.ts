/**
 * The benchmark's processes: node scripts of `bench/` spawned with an IPC channel and pinned to
 * a CPU (`taskset`) when the machine has two, a Redis of the benchmark's own, the CPU time of a
 * process that is not ours to ask (`/proc/<pid>/stat`), and the file-descriptor limit the larger
 * runs need (raised with `prlimit` where the process may). Every child is killed when the
 * orchestrator exits.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ServerReply, ServerRequest } from './common.ts'
import { portFree } from '../test/helpers/free-port.ts'

const here = dirname(fileURLToPath(import.meta.url))

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Whether processes can be pinned apart: two CPUs or more, and `taskset`. */
export const pinnable = (() => {
  if (cpus().length < 2) return false
  try {
    execFileSync('taskset', ['-c', '0', 'true'])
    return true
  } catch {
    return false
  }
})()

const children = new Set<ChildProcess>()
process.on('exit', () => children.forEach((child) => child.kill('SIGKILL')))
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130))

function track(child: ChildProcess): ChildProcess {
  children.add(child)
  child.once('exit', () => children.delete(child))
  return child
}

// ---- file descriptors --------------------------------------------------------------------------

/** Descriptors a process holds besides its sockets (stdio, IPC, epoll, files, the listener). */
export const DESCRIPTOR_HEADROOM = 256

function descriptorLimits(): { soft: number; hard: number } {
  const [soft, hard] = execFileSync('sh', ['-c', 'ulimit -Sn; ulimit -Hn']).toString().trim().split('\n')
  const limit = (value: string | undefined) => (value === 'unlimited' ? Number.POSITIVE_INFINITY : Number(value))
  return { soft: limit(soft), hard: limit(hard) }
}

const canSet = (descriptors: number) => {
  try {
    execFileSync('prlimit', [`--nofile=${descriptors}:${descriptors}`, 'true'], { stdio: 'pipe' })
    return true
  } catch {
    return false
  }
}

/**
 * How many file descriptors a child can be given: `wanted` when the limit allows it or `prlimit`
 * can raise it that far (root with CAP_SYS_RESOURCE), else the hard limit.
 */
export function descriptorsAvailable(wanted: number): number {
  const { soft, hard } = descriptorLimits()
  if (soft >= wanted || canSet(wanted)) return wanted
  return hard
}

/** The `prlimit` prefix giving a child `wanted` descriptors, or as many as can be had; none when the limit is enough. */
function descriptorsPrefix(wanted: number): string[] {
  const { soft } = descriptorLimits()
  if (soft >= wanted) return []
  const available = descriptorsAvailable(wanted)
  return available > soft ? ['prlimit', `--nofile=${available}:${available}`] : []
}

// ---- node children -----------------------------------------------------------------------------

export interface SpawnOptions {
  /** Flags for node itself (--cpu-prof, --expose-gc). */
  nodeFlags?: string[]
  /** Sockets it will hold: its descriptor limit is raised to fit (as far as it can be). */
  descriptors?: number
  env?: Record<string, string>
}

/** A node process running `bench/<script>`, pinned to `cpu` when the machine allows, with an IPC channel. */
export function spawnNode(script: string, args: string[], cpu: number, options: SpawnOptions = {}): ChildProcess {
  const command = [
    ...(options.descriptors ? descriptorsPrefix(options.descriptors + DESCRIPTOR_HEADROOM) : []),
    ...(pinnable ? ['taskset', '-c', String(cpu)] : []),
    process.execPath,
    ...(options.nodeFlags ?? []),
    '--import',
    'tsx',
    join(here, script),
    ...args,
  ]
  return track(
    spawn(command[0]!, command.slice(1), {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, ...options.env },
    }),
  )
}

/** The next IPC message of `child` that `match` accepts, or an error after `ms`. */
export function reply<T extends { type: string }>(
  child: ChildProcess,
  match: (message: T) => boolean,
  ms: number,
  what: string,
): Promise<T> {
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => done(new Error(`${what}: no answer within ${ms} ms`)), ms)
    const onMessage = (message: T) => {
      if (message.type === 'error') done(new Error(`${what}: ${(message as unknown as { message: string }).message}`))
      else if (match(message)) done(undefined, message)
    }
    const onExit = (code: number | null) => done(new Error(`${what}: the process exited (${code})`))
    const done = (error?: Error, message?: T) => {
      clearTimeout(timer)
      child.off('message', onMessage)
      child.off('exit', onExit)
      if (error) reject(error)
      else resolvePromise(message!)
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

/** Sends `request` to a server process and resolves with its answer of `type`. */
export const ask = <T extends ServerReply['type']>(
  server: ChildProcess,
  request: ServerRequest,
  type: T,
  ms = 30_000,
) => {
  server.send(request)
  return reply<Extract<ServerReply, { type: T }>>(server, (m) => m.type === type, ms, `server ${request.type}`)
}

/** Ends a node child: a normal exit first (so that `--cpu-prof` writes its profile), then SIGKILL. */
export async function stop(child: ChildProcess, graceMs = 0): Promise<void> {
  if (graceMs && child.connected && child.exitCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.disconnect()
    await Promise.race([exited, sleep(graceMs)])
  }
  child.kill('SIGKILL')
}

// ---- Redis -------------------------------------------------------------------------------------

/** Ports the benchmark may use for its own Redis. */
const REDIS_PORTS = { from: 7200, to: 7299 }

export interface BenchRedis {
  readonly url: string
  readonly pid: number
  /** Its CPU time so far, µs. */
  cpuMicros(): number
  /** The commands that took most of its time (`INFO commandstats`), one line each: calls and µs. */
  topCommands(count?: number): string[]
  stop(): Promise<void>
}

/** A redis-server on `port` with no persistence, pinned to `cpu` where the machine allows, and `extra` options. */
function spawnRedisServer(port: number, cpu: number, extra: readonly string[]) {
  const args = ['--port', String(port), '--bind', '127.0.0.1', ...extra]
  args.push('--save', '', '--appendonly', 'no', '--loglevel', 'warning')
  const command = pinnable ? ['taskset', '-c', String(cpu), 'redis-server', ...args] : ['redis-server', ...args]
  return track(spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] }))
}

/**
 * A redis-server of the benchmark's own on a free port of 7200-7299, without persistence, pinned
 * to `cpu`; resolves once it answers.
 */
export async function startRedis(cpu: number): Promise<BenchRedis> {
  let port = REDIS_PORTS.from
  while (port <= REDIS_PORTS.to && !(await portFree(port))) port++
  if (port > REDIS_PORTS.to) throw new Error(`no free port for redis-server in ${REDIS_PORTS.from}-${REDIS_PORTS.to}`)
  const child = spawnRedisServer(port, cpu, [])
  const failed = new Promise<never>((_, reject) => {
    child.once('error', (error) => reject(new Error(`redis-server did not start: ${error.message}`)))
    child.once('exit', (code) => reject(new Error(`redis-server exited (${code})`)))
  })
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      execFileSync('redis-cli', ['-p', String(port), 'ping'], { stdio: 'pipe' })
      break
    } catch {
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s`)
      await Promise.race([sleep(50), failed])
    }
  }
  failed.catch(() => {})
  // taskset execs redis-server: the child's pid is the server's.
  const pid = child.pid!
  return {
    url: `redis://127.0.0.1:${port}`,
    pid,
    cpuMicros: () => processCpuMicros(pid),
    topCommands: (count = 6) => {
      const stats = execFileSync('redis-cli', ['-p', String(port), 'info', 'commandstats']).toString()
      return [...stats.matchAll(/^cmdstat_(\S+):calls=(\d+),usec=(\d+)/gm)]
        .map(([, command, calls, usec]) => ({ command: command!, calls: Number(calls), usec: Number(usec) }))
        .sort((a, b) => b.usec - a.usec)
        .slice(0, count)
        .map(
          ({ command, calls, usec }) => `${command}: ${calls} calls, ${usec} µs (${(usec / calls).toFixed(1)} µs each)`,
        )
    },
    stop: async () => {
      child.kill('SIGKILL')
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve))
    },
  }
}

// ---- Redis Cluster -----------------------------------------------------------------------------

/** Ports the benchmark's Redis Cluster may use (each node's cluster bus port, +10000, too). */
const CLUSTER_PORTS = { from: 7300, to: 7399 }
const CLUSTER_NODES = 6

export interface BenchRedisCluster {
  /** `127.0.0.1:<port>` of every node: seed nodes (MIZZEN_REDIS_CLUSTER). */
  readonly seeds: readonly string[]
  /** Ports of the primaries (as they stood once the cluster was made). */
  readonly primaries: readonly number[]
  /** CPU time of the three primaries so far, summed, µs. */
  cpuMicros(): number
  /** The commands that took most of the primaries' time, summed over them (`INFO commandstats`). */
  topCommands(count?: number): string[]
  stop(): Promise<void>
}

const redisCli = (port: number, ...args: string[]) =>
  execFileSync('redis-cli', ['-p', String(port), ...args], { stdio: 'pipe' }).toString()

/**
 * A Redis Cluster of the benchmark's own: six `redis-server --cluster-enabled yes` (three
 * primaries, three replicas) on consecutive free ports of 7300-7399, without persistence, all
 * pinned to `cpu`, made one cluster by `redis-cli --cluster create … --cluster-replicas 1`;
 * resolves once every node says `cluster_state:ok`.
 */
export async function startRedisCluster(cpu: number): Promise<BenchRedisCluster> {
  let base = CLUSTER_PORTS.from
  for (; base + CLUSTER_NODES - 1 <= CLUSTER_PORTS.to; base++) {
    const ports = Array.from({ length: CLUSTER_NODES }, (_, n) => base + n)
    const free = await Promise.all(ports.flatMap((port) => [portFree(port), portFree(port + 10_000)]))
    if (free.every(Boolean)) break
  }
  if (base + CLUSTER_NODES - 1 > CLUSTER_PORTS.to)
    throw new Error(
      `no ${CLUSTER_NODES} consecutive free ports for a Redis Cluster in ${CLUSTER_PORTS.from}-${CLUSTER_PORTS.to}`,
    )
  const ports = Array.from({ length: CLUSTER_NODES }, (_, n) => base + n)
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-bench-cluster-'))
  const nodes = ports.map((port) => {
    const child = spawnRedisServer(port, cpu, [
      '--dir',
      dir,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${port}.conf`,
    ])
    return { port, child }
  })
  const stop = async () => {
    await Promise.all(
      nodes.map(async ({ child }) => {
        child.kill('SIGKILL')
        if (child.exitCode === null && child.signalCode === null)
          await new Promise((resolve) => child.once('exit', resolve))
      }),
    )
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    const deadline = Date.now() + 30_000
    const until = async (what: string, ready: () => boolean) => {
      while (!ready()) {
        if (Date.now() > deadline) throw new Error(`Redis Cluster: ${what} within 30 s`)
        await sleep(100)
      }
    }
    const answers = (check: () => unknown) => () => {
      try {
        return Boolean(check())
      } catch {
        return false
      }
    }
    for (const { port } of nodes)
      await until(
        `node ${port} did not answer`,
        answers(() => redisCli(port, 'ping')),
      )
    execFileSync(
      'redis-cli',
      ['--cluster', 'create', ...ports.map((port) => `127.0.0.1:${port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { stdio: 'pipe' },
    )
    for (const { port } of nodes)
      await until(
        `node ${port} did not say cluster_state:ok`,
        answers(() => redisCli(port, 'cluster', 'info').includes('cluster_state:ok')),
      )
  } catch (error) {
    await stop()
    throw error
  }
  const primaries = redisCli(ports[0]!, 'cluster', 'nodes')
    .trim()
    .split('\n')
    .map((line) => line.split(' '))
    .filter((fields) => fields[2]!.split(',').includes('master'))
    .map((fields) => Number(/:(\d+)@/.exec(fields[1]!)![1]))
  // taskset execs redis-server: a child's pid is its server's.
  const pids = primaries.map((port) => nodes.find((node) => node.port === port)!.child.pid!)
  return {
    seeds: ports.map((port) => `127.0.0.1:${port}`),
    primaries,
    cpuMicros: () => pids.reduce((sum, pid) => sum + processCpuMicros(pid), 0),
    topCommands: (count = 6) => {
      const totals = new Map<string, { calls: number; usec: number }>()
      for (const port of primaries)
        for (const [, command, calls, usec] of redisCli(port, 'info', 'commandstats').matchAll(
          /^cmdstat_(\S+):calls=(\d+),usec=(\d+)/gm,
        )) {
          const total = totals.get(command!) ?? { calls: 0, usec: 0 }
          total.calls += Number(calls)
          total.usec += Number(usec)
          totals.set(command!, total)
        }
      return [...totals]
        .sort(([, a], [, b]) => b.usec - a.usec)
        .slice(0, count)
        .map(
          ([command, { calls, usec }]) =>
            `${command}: ${calls} calls, ${usec} µs (${(usec / calls).toFixed(1)} µs each)`,
        )
    },
    stop,
  }
}

/** CPU time (user + system) of process `pid` so far, µs, from /proc (clock ticks of 10 ms on Linux). */
export function processCpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces, in parentheses): utime is the 14th field.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return (ticks / clockTicks) * 1e6
}

const clockTicks = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
  } catch {
    return 100
  }
})()
