/**
 * The chat end to end, as a user runs it: `mizzen migrate`, a gateway (`mizzen serve` on SQLite,
 * this project's own src/gateway.ts on PostgreSQL), a graphql-ws client watching `messageEvents`,
 * and the backend script writing a message through the realtime extension, in another process,
 * with Redis between them. Needs Redis (REDIS_URL, default redis://127.0.0.1:6379) and PostgreSQL
 * (TEST_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/test, where a fresh database is
 * created and dropped).
 */
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { after, describe, it } from 'node:test'
import { createClient, type Client } from 'graphql-ws'
import { Redis } from 'ioredis'
import pg from 'pg'
import WebSocket from 'ws'
import { openPrisma } from '../src/database.js'

const run = promisify(execFile)
const root = fileURLToPath(new URL('..', import.meta.url))
const bin = (name: string) => join(root, 'node_modules', '.bin', name)
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const adminPostgresUrl = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'

interface Database {
  readonly url: string
  drop(): Promise<void>
}

function sqliteDatabase(): Database {
  const dir = mkdtempSync(join(tmpdir(), 'chat-backend-'))
  return { url: `file:${join(dir, 'chat.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) }
}

async function postgresDatabase(): Promise<Database> {
  const name = `chat_backend_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminPostgresUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(adminPostgresUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: adminPostgresUrl })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await client.end()
    },
  }
}

/** A gateway process and the URL it logged; `stop()` sends SIGTERM and resolves with the exit code. */
async function startGateway(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; child: ChildProcess; stop(): Promise<number | null> }> {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM')
    return exited
  }
  for (let waited = 0; waited < 60_000; waited += 100) {
    const line = output.split('\n').find((l) => l.includes('mizzen gateway listening'))
    if (line) return { url: JSON.parse(line).url as string, child, stop }
    if (child.exitCode !== null) throw new Error(`the gateway exited early:\n${output}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  child.kill('SIGKILL')
  throw new Error(`the gateway did not start:\n${output}`)
}

interface MessageEvent {
  verb: string
  recordId?: string
  node: { text: string; author: string; channel: { name: string } } | null
}

interface Watch {
  readonly events: MessageEvent[]
  /** What went wrong, for the failure message (the close at shutdown lands here too). */
  readonly problems: unknown[]
}

/** Subscribes to messageEvents and collects what arrives. */
function watchMessages(client: Client): Watch {
  const watch: Watch = { events: [], problems: [] }
  client.subscribe<{ messageEvents: MessageEvent }>(
    { query: 'subscription { messageEvents { verb node { text author channel { name } } } }' },
    {
      next: (result) =>
        result.data ? watch.events.push(result.data.messageEvents) : watch.problems.push(result.errors),
      error: (error) =>
        watch.problems.push(error instanceof Error ? error.message : ((error as { code?: number }).code ?? error)),
      complete: () => {},
    },
  )
  return watch
}

/**
 * Runs the backend script until the subscriber hears one of its messages (a subscription starts
 * asynchronously, so the first message may be published before the gateway listens for it).
 */
async function postUntilHeard(env: NodeJS.ProcessEnv, { events, problems }: Watch): Promise<MessageEvent> {
  for (let attempt = 1; attempt <= 10; attempt++) {
    const text = `hello ${randomBytes(4).toString('hex')}`
    await run(bin('tsx'), ['src/backend.ts', 'general', 'ada', text], { cwd: root, env: { ...process.env, ...env } })
    for (let waited = 0; waited < 2000; waited += 50) {
      const heard = events.find((event) => event.node?.text === text)
      if (heard) return heard
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
  }
  throw new Error(
    `no messageEvents after 10 messages; received ${JSON.stringify(events)}, problems ${JSON.stringify(problems)}`,
  )
}

/** Deletes the keys the run left under `prefix` (the bus keeps a history in Redis). */
async function deleteRedisKeys(prefix: string): Promise<void> {
  const redis = new Redis(redisUrl)
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 100)
      if (keys.length) await redis.del(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

async function tableNames(url: string): Promise<string[]> {
  const prisma = openPrisma(url)
  try {
    const rows = url.startsWith('file:')
      ? await prisma.$queryRawUnsafe<{ name: string }[]>(
          "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
      : await prisma.$queryRawUnsafe<{ name: string }[]>(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = 'public'",
        )
    return rows.map((row) => row.name).sort()
  } finally {
    await prisma.$disconnect()
  }
}

const cases = [
  { provider: 'SQLite', database: async () => sqliteDatabase(), gateway: [bin('mizzen'), ['serve']] as const },
  { provider: 'PostgreSQL', database: postgresDatabase, gateway: [bin('tsx'), ['src/gateway.ts']] as const },
]

for (const {
  provider,
  database: createDatabase,
  gateway: [command, args],
} of cases) {
  describe(`the chat on ${provider}`, () => {
    const cleanups: (() => Promise<unknown>)[] = []
    after(async () => {
      for (const cleanup of cleanups.reverse()) await cleanup()
    })

    it('should deliver messageEvents for a message the backend script writes, with only the chat tables', async () => {
      const database = await createDatabase()
      cleanups.push(() => database.drop())
      // A Redis prefix of this run's own: other runs on the same Redis hear nothing of it.
      const prefix = `chat-backend-test-${randomBytes(6).toString('hex')}:`
      cleanups.push(() => deleteRedisKeys(prefix))
      const env = {
        DATABASE_URL: database.url,
        REDIS_URL: redisUrl,
        MIZZEN_REDIS_PREFIX: prefix,
        PORT: '0',
        HOST: '127.0.0.1',
        MIZZEN_API_KEYS: 'chat-backend-test-key',
      }

      const migrated = await run(bin('mizzen'), ['migrate'], { cwd: root, env: { ...process.env, ...env } })
      assert.match(migrated.stdout, /applied 1 migration\(s\): \d+_init/)

      const gateway = await startGateway(command, [...args], env)
      cleanups.push(() => gateway.stop())
      // No credentials: the config's policies let anonymous clients watch messages.
      const client = createClient({
        url: gateway.url.replace(/^http/, 'ws'),
        webSocketImpl: WebSocket,
        retryAttempts: 0,
      })
      cleanups.push(async () => client.dispose())
      const watch = watchMessages(client)

      const heard = await postUntilHeard(env, watch)
      assert.equal(heard.verb, 'CREATED')
      assert.equal(heard.node?.author, 'ada')
      assert.equal(heard.node?.channel.name, 'general')

      // The project's own models, and nothing of mizzen's example app.
      assert.deepEqual(await tableNames(database.url), ['Channel', 'Message', '_prisma_migrations'])
      assert.equal(await gateway.stop(), 0)
    })
  })
}
