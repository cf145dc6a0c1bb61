/**
 * A `redis-server` of a test's own, on a free port, to kill, restart and pause without touching
 * the shared Redis other tests use. It writes an append-only file synced on every write, so a
 * SIGKILL loses nothing it acknowledged and a restart can come back with the same data, or empty.
 *
 *   const redis = await startRedisServer()
 *   await redis.kill()                    // SIGKILL: clients see their connections reset
 *   await redis.restart()                 // same port, same data
 *   await redis.restart({ data: 'empty' }) // same port, nothing in it (a replacement server)
 *   redis.pause(); redis.resume()         // SIGSTOP / SIGCONT: connections open, no answers
 *   await redis.stop()                    // in afterAll: kills it and removes its files
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { freePort } from './free-port.ts'

export interface RedisServerOptions {
  /** The port to listen on. @default a free one */
  port?: number
  /** Extra `redis-server` arguments, e.g. `['--maxmemory', '10mb']`. @default [] */
  args?: string[]
  /** How long to wait for the server to answer PING after (re)starting, in ms. @default 10000 */
  startTimeoutMs?: number
}

export interface RedisServer {
  readonly port: number
  /** `redis://127.0.0.1:<port>` */
  readonly url: string
  /** Whether the process runs (false after `kill`, true again after `restart`). */
  readonly running: boolean
  /** The server's last log lines (for failure messages). */
  readonly log: string[]
  /** Kills the process (SIGKILL unless told otherwise) and resolves once it exited. No-op when not running. */
  kill(signal?: 'SIGKILL' | 'SIGTERM'): Promise<void>
  /** Kills it if it runs, then starts it again on the same port, with its data (`kept`, the default) or none. Resolves once it answers. */
  restart(options?: { data?: 'kept' | 'empty' }): Promise<void>
  /** SIGSTOP: the process freezes; its connections stay open and nothing answers. */
  pause(): void
  /** SIGCONT after `pause`. */
  resume(): void
  /** Kills it and removes its files (for afterAll). */
  stop(): Promise<void>
}

/** Resolves once a PING on a fresh connection answers PONG (not LOADING), or rejects after `timeoutMs`. */
async function waitForPong(port: number, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (exited()) throw new Error('redis-server exited while starting')
    const answer = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      let text = ''
      const done = (value: string) => {
        socket.destroy()
        resolve(value)
      }
      socket.setTimeout(500, () => done(''))
      socket.on('error', () => done(''))
      socket.on('connect', () => socket.write('PING\r\n'))
      socket.on('data', (chunk) => {
        text += chunk.toString()
        if (text.includes('\r\n')) done(text)
      })
    })
    if (answer.startsWith('+PONG')) return
    await sleep(25)
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${timeoutMs} ms`)
}

export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-redis-'))
  const startTimeoutMs = options.startTimeoutMs ?? 10_000
  const log: string[] = []
  let child: ChildProcess | undefined
  let exited: Promise<unknown> = Promise.resolve()
  let hasExited = true

  const launch = async () => {
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'yes',
      '--appendfsync',
      'always',
      '--protected-mode',
      'no',
      '--daemonize',
      'no',
      '--logfile',
      '',
      ...(options.args ?? []),
    ]
    const started = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    hasExited = false
    exited = once(started, 'exit').finally(() => (hasExited = true))
    const keep = (chunk: Buffer) => {
      log.push(...chunk.toString().split('\n').filter(Boolean))
      log.splice(0, Math.max(0, log.length - 50))
    }
    started.stdout!.on('data', keep)
    started.stderr!.on('data', keep)
    started.once('error', (error) => log.push(`spawn failed: ${error.message}`))
    try {
      await waitForPong(port, startTimeoutMs, () => hasExited)
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${log.slice(-10).join('\n')}`)
    }
  }

  const kill = async (signal: 'SIGKILL' | 'SIGTERM' = 'SIGKILL') => {
    if (!child || hasExited) return
    // A stopped process does not act on SIGTERM until it runs again.
    child.kill('SIGCONT')
    child.kill(signal)
    await exited
  }

  await launch()
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get running() {
      return !hasExited
    },
    log,
    kill,
    async restart({ data = 'kept' } = {}) {
      await kill()
      if (data === 'empty')
        for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true })
      await launch()
    },
    pause: () => void child?.kill('SIGSTOP'),
    resume: () => void child?.kill('SIGCONT'),
    async stop() {
      await kill()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
