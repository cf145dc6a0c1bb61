/**
 * `npm start` as a user runs it: npm's process, configured from the environment, stopped with
 * SIGTERM sent to npm (as a process manager would).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { connectWs, postGraphQL } from './helpers/clients.ts'
import { eachDatabase, useFixture } from './helpers/fixture.ts'

const root = fileURLToPath(new URL('..', import.meta.url))

interface Started {
  child: ChildProcess
  output: () => string
  exited: Promise<number | null>
}

function startMain(env: Record<string, string>): Started {
  const child = spawn('npm', ['start', '--silent'], {
    cwd: root,
    env: { ...process.env, NODE_ENV: 'development', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return { child, output: () => output, exited }
}

/** Waits for the "listening" log line and returns the URL it names. */
async function listeningUrl(started: Started): Promise<string> {
  for (let waited = 0; waited < 30_000; waited += 50) {
    const line = started
      .output()
      .split('\n')
      .find((l) => l.includes('mizzen gateway listening'))
    if (line) return JSON.parse(line).url
    if (started.child.exitCode !== null) throw new Error(`exited early:\n${started.output()}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`did not start:\n${started.output()}`)
}

const running: Started[] = []
afterEach(() => running.splice(0).forEach((s) => s.child.kill('SIGKILL')))

eachDatabase('npm start on $provider', (provider) => {
  const env = useFixture({ database: provider, gateways: 0 })
  it('should serve, then close WebSockets with 1001 and exit 0 on SIGTERM', async () => {
    const { database } = env
    const started = startMain({ PORT: '0', HOST: '127.0.0.1', DATABASE_URL: database.url })
    running.push(started)
    const url = await listeningUrl(started)
    expect((await fetch(new URL('/health', url))).status).toBe(200)
    expect(await postGraphQL(url, '{ users { id } }')).toEqual({ data: { users: [] } })
    const ws = connectWs(url.replace(/^http/, 'ws'))
    expect((await ws.ack)?.connectionId).toBeTypeOf('string')

    started.child.kill('SIGTERM')
    expect(await ws.closed).toBe(1001)
    expect(await started.exited).toBe(0)
    await ws.client.dispose()
  })
})

describe('npm start with bad configuration', () => {
  it('should exit non-zero naming the setting', async () => {
    const started = startMain({ DATABASE_URL: 'mysql://x' })
    running.push(started)
    expect(await started.exited).toBe(1)
    expect(started.output()).toMatch(/DATABASE_URL: unsupported database "mysql"/)
  })
})

describe('npm start with a service that does not answer', () => {
  it('should exit 1 with one line naming REDIS_URL, the address and the reason, and not the password', async () => {
    const started = startMain({
      PORT: '0',
      REDIS_URL: 'redis://:hunter2@127.0.0.1:1',
      DATABASE_URL: 'file:./data/never-opened-by-main-test.db',
    })
    running.push(started)
    expect(await started.exited).toBe(1)
    // Besides JSON log lines (none expected, but not the point), one plain line says it all.
    const lines = started
      .output()
      .split('\n')
      .filter((line) => line && !line.startsWith('{'))
    expect(lines).toEqual([
      'mizzen: cannot start: REDIS_URL: cannot reach Redis at 127.0.0.1:1 (connect ECONNREFUSED 127.0.0.1:1)',
    ])
    expect(started.output()).not.toContain('hunter2')
    // Nothing was done before the check: not even the migrations of the SQLite file.
    expect(started.output()).not.toContain('database migrated')
  })
})

describe('npm start on a port in use', () => {
  const env = useFixture({ gateways: 0 })
  it('should exit non-zero saying so', async () => {
    const { createServer } = await import('node:net')
    const blocker = createServer().listen(0, '127.0.0.1')
    await once(blocker, 'listening')
    const port = (blocker.address() as { port: number }).port
    const started = startMain({ PORT: String(port), HOST: '127.0.0.1', DATABASE_URL: env.database.url })
    running.push(started)
    expect(await started.exited).toBe(1)
    expect(started.output()).toMatch(/cannot listen: .*EADDRINUSE.*\(set PORT or HOST\)/)
    blocker.close()
  })
})
