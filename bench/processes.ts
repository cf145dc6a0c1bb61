/**
 * The benchmark's processes: node scripts of `bench/` spawned with an IPC channel and pinned to
 * a CPU (`taskset`) when the machine has two, a Redis of the benchmark's own, the CPU time of a
 * process that is not ours to ask (`/proc/<pid>/stat`), and the file-descriptor limit the larger
 * runs need. Every child is killed when the orchestrator exits.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ServerReply, ServerRequest } from './common.ts'

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

const softLimit = () => Number(execFileSync('sh', ['-c', 'ulimit -n']).toString().trim())

/**
 * What a child needs to hold `descriptors` sockets: a `prlimit` prefix raising its limit, nothing
 * when the current one is enough, or an error saying what to do when it cannot be raised.
 */
export function descriptorsFor(descriptors: number): string[] {
  const wanted = descriptors + 1024
  if (softLimit() >= wanted) return []
  try {
    execFileSync('prlimit', [`--nofile=${wanted}:${wanted}`, 'true'])
    return ['prlimit', `--nofile=${wanted}:${wanted}`]
  } catch {
    throw new Error(
      `${descriptors} connections need ${wanted} file descriptors per process; the limit here is ${softLimit()} and prlimit could not raise it (run as root, or raise it first: ulimit -n ${wanted})`,
    )
  }
}

// ---- node children -----------------------------------------------------------------------------

export interface SpawnOptions {
  /** Flags for node itself (--cpu-prof, --expose-gc). */
  nodeFlags?: string[]
  /** Sockets it will hold: its descriptor limit is raised to fit. */
  descriptors?: number
  env?: Record<string, string>
}

/** A node process running `bench/<script>`, pinned to `cpu` when the machine allows, with an IPC channel. */
export function spawnNode(script: string, args: string[], cpu: number, options: SpawnOptions = {}): ChildProcess {
  const command = [
    ...(options.descriptors ? descriptorsFor(options.descriptors) : []),
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

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

export interface BenchRedis {
  readonly url: string
  readonly pid: number
  /** Its CPU time so far, µs. */
  cpuMicros(): number
  stop(): Promise<void>
}

/**
 * A redis-server of the benchmark's own on a free port of 7200-7299, without persistence, pinned
 * to `cpu`; resolves once it answers.
 */
export async function startRedis(cpu: number): Promise<BenchRedis> {
  let port = REDIS_PORTS.from
  while (port <= REDIS_PORTS.to && !(await portFree(port))) port++
  if (port > REDIS_PORTS.to) throw new Error(`no free port for redis-server in ${REDIS_PORTS.from}-${REDIS_PORTS.to}`)
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--loglevel',
    'warning',
  ]
  const command = pinnable ? ['taskset', '-c', String(cpu), 'redis-server', ...args] : ['redis-server', ...args]
  const child = track(spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] }))
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
    stop: async () => {
      child.kill('SIGKILL')
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve))
    },
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
