/**
 * A PostgreSQL server of the test file's own, with `wal_level=logical` (what change capture
 * needs; the run's shared server stays `replica` and is never reconfigured): `initdb` and
 * `postgres` from the machine's binaries (/usr/lib/postgresql/<version>/bin) in a temporary
 * directory, trust authentication, listening on 127.0.0.1 on a port of 55400-55419. As root,
 * both run as the `postgres` user (PostgreSQL refuses to run as root): spawned with its uid and
 * gid rather than through `runuser`, so that signals reach the server itself. Without vitest:
 * the tests use it through `logical-postgres.ts`, the capture benchmark (bench/capture.ts) directly.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { TestDatabase } from './databases.ts'
import { portFree } from './free-port.ts'

/** The tests' ports (the capture benchmark uses 55420-55439). */
const DEFAULT_PORTS = { from: 55400, to: 55419 }

/** The newest installed PostgreSQL's bin directory, or undefined when none is installed. */
export function postgresBinaries(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] ? join(root, versions[0], 'bin') : undefined
}

const isRoot = () => process.getuid?.() === 0

function postgresUser(): { uid: number; gid: number } | undefined {
  const result = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const group = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  if (result.status !== 0 || group.status !== 0) return undefined
  return { uid: Number(result.stdout.trim()), gid: Number(group.stdout.trim()) }
}

export interface LogicalPostgres {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string
  readonly port: number
  /** The postmaster's process id (its backends are its children). */
  readonly pid: number
  /** A fresh database on this server (dropped with `drop()`, or when the server stops). */
  createDatabase(): Promise<TestDatabase>
  /** Runs one SQL statement as the superuser on `database` (default: `postgres`). */
  query<T extends pg.QueryResultRow = Record<string, unknown>>(sql: string, database?: string): Promise<T[]>
  stop(): Promise<void>
}

export interface LogicalPostgresOptions {
  /** `wal_level` of the server. @default "logical" */
  walLevel?: 'logical' | 'replica'
  /** The ports to try, in order. @default 55400-55419 */
  ports?: { from: number; to: number }
  /**
   * More server settings (`-c name=value`), after the defaults: the benchmark sets
   * `synchronous_commit=on`, since with it off a commit reaches the log's readers only when the
   * WAL writer flushes (every `wal_writer_delay`, 200 ms).
   */
  settings?: Record<string, string>
  /** Pin the server (and its backends) to this CPU with `taskset`, as the benchmark pins its processes. */
  cpu?: number
}

/** Starts a server; resolves once it accepts connections. */
export async function startLogicalPostgres(options: LogicalPostgresOptions = {}): Promise<LogicalPostgres> {
  const bin = postgresBinaries()
  if (!bin) throw new Error('no PostgreSQL binaries under /usr/lib/postgresql/*/bin (apt-get install postgresql)')
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-pg-'))
  const user = isRoot() ? postgresUser() : undefined
  if (isRoot()) {
    if (!user) throw new Error('running as root needs a `postgres` user to run PostgreSQL as')
    chownSync(dir, user.uid, user.gid)
  }
  const as = user ? { uid: user.uid, gid: user.gid, env: { ...process.env, HOME: dir, USER: 'postgres' } } : {}
  const data = join(dir, 'data')
  const initArgs = ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']
  const init = spawnSync(join(bin, 'initdb'), initArgs, { encoding: 'utf8', cwd: dir, ...as })
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`)

  let child: ChildProcess | undefined
  let port = 0
  let log = ''
  const ports = options.ports ?? DEFAULT_PORTS
  for (let candidate = ports.from; candidate <= ports.to && !child; candidate++) {
    if (!(await portFree(candidate))) continue
    const args = [
      '-D',
      data,
      '-p',
      String(candidate),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      `wal_level=${options.walLevel ?? 'logical'}`,
      '-c',
      'max_replication_slots=10',
      '-c',
      'max_wal_senders=10',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'shared_buffers=16MB',
      ...Object.entries(options.settings ?? {}).flatMap(([name, value]) => ['-c', `${name}=${value}`]),
    ]
    // taskset execs postgres: the child is the server itself either way.
    const command =
      options.cpu === undefined
        ? [join(bin, 'postgres'), ...args]
        : ['taskset', '-c', String(options.cpu), join(bin, 'postgres'), ...args]
    const started = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, ...as })
    log = ''
    started.stdout!.on('data', (chunk: Buffer) => (log += chunk.toString()))
    started.stderr!.on('data', (chunk: Buffer) => (log += chunk.toString()))
    const exited = once(started, 'exit')
    const ready = await Promise.race([waitForConnection(candidate).then(() => true), exited.then(() => false)])
    if (ready) {
      child = started
      port = candidate
    } else if (!/could not bind|Address already in use/.test(log)) {
      rmSync(dir, { recursive: true, force: true })
      throw new Error(`postgres did not start:\n${log}`)
    }
  }
  if (!child) {
    rmSync(dir, { recursive: true, force: true })
    throw new Error(`no free port in ${ports.from}-${ports.to} for a PostgreSQL:\n${log}`)
  }
  const server = child
  const exited = once(server, 'exit')
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  const urlOf = (database: string) => `postgres://postgres@127.0.0.1:${port}/${database}`
  const query = async <T extends pg.QueryResultRow>(sql: string, database = 'postgres') => {
    const client = new pg.Client({ connectionString: urlOf(database) })
    await client.connect()
    try {
      return (await client.query<T>(sql)).rows
    } finally {
      await client.end()
    }
  }
  return {
    url,
    port,
    pid: server.pid!,
    query,
    async createDatabase() {
      const name = `mizzen_capture_${randomBytes(5).toString('hex')}`
      await query(`CREATE DATABASE ${name}`)
      return {
        url: urlOf(name),
        drop: async () => {
          // A database with a replication slot cannot be dropped: drop its slots first.
          await query(
            `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '${name}' AND NOT active`,
          )
          await query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        },
      }
    },
    async stop() {
      if (server.exitCode === null && server.signalCode === null) {
        // SIGQUIT: immediate shutdown (the data is thrown away anyway).
        server.kill('SIGQUIT')
        await exited
      }
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function waitForConnection(port: number): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` })
    client.on('error', () => {})
    try {
      await client.connect()
      await client.end()
      return
    } catch {
      await client.end().catch(() => {})
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
  throw new Error(`postgres on port ${port} did not accept connections`)
}
