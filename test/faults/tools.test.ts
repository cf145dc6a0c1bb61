/**
 * The fault tools themselves: a redis-server of the test's own that dies, comes back with or
 * without its data and freezes; a TCP proxy that cuts, black-holes and restores.
 */
import { once } from 'node:events'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startRedisServer, type RedisServer } from '../helpers/redis-server.ts'
import { missing } from '../helpers/services.ts'
import { startTcpProxy } from '../helpers/tcp-proxy.ts'

/** A raw client: what it received, and how it ended. */
function rawClient(port: number) {
  const socket = connect(port, '127.0.0.1')
  const state = { received: '', ended: undefined as undefined | 'end' | 'reset' }
  socket.on('data', (chunk) => (state.received += chunk.toString()))
  socket.on('end', () => (state.ended ??= 'end'))
  socket.on(
    'error',
    (error: NodeJS.ErrnoException) => (state.ended = error.code === 'ECONNRESET' ? 'reset' : state.ended),
  )
  // Not events.once: it rejects on the 'error' a reset emits.
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const connected = new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  return { socket, state, closed, connected }
}

/** Waits (polling) until `check` holds. */
async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not reached')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe.skipIf(missing('redis-server'))('test redis-server', () => {
  let redis: RedisServer
  beforeAll(async () => {
    redis = await startRedisServer()
  })
  afterAll(() => redis?.stop())

  it('should keep acknowledged data across a SIGKILL and restart, or start empty when asked', async () => {
    const client = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    client.on('error', () => {})
    await client.connect()
    await client.set('kept', 'yes')
    const ended = once(client, 'end')
    await redis.kill()
    expect(redis.running).toBe(false)
    await ended
    await redis.restart()
    const again = new Redis(redis.url)
    again.on('error', () => {})
    expect(await again.get('kept')).toBe('yes')
    await redis.restart({ data: 'empty' })
    // Queued while it reconnects, then answered by the new server.
    expect(await again.get('kept')).toBeNull()
    again.disconnect()
  })

  it('should freeze on pause and answer again on resume', async () => {
    const client = new Redis(redis.url)
    await client.ping()
    redis.pause()
    let answered = false
    const ping = client.ping().then(() => (answered = true))
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(answered).toBe(false)
    redis.resume()
    await ping
    client.disconnect()
  })
})

describe('tcp proxy', () => {
  let echo: Server
  const serverSockets = new Set<Socket>()
  let port: number
  beforeAll(async () => {
    echo = createServer((socket) => {
      serverSockets.add(socket)
      socket.on('error', () => {})
      socket.on('close', () => serverSockets.delete(socket))
      socket.on('data', (chunk) => socket.write(chunk))
    })
    echo.listen(0, '127.0.0.1')
    await once(echo, 'listening')
    port = (echo.address() as { port: number }).port
  })
  afterAll(() => new Promise((resolve) => echo.close(resolve)))

  it('should forward both ways, and pass a clean close on', async () => {
    const proxy = await startTcpProxy({ port })
    const client = rawClient(proxy.port)
    await client.connected
    client.socket.write('hello')
    await until(() => client.state.received === 'hello')
    client.socket.end()
    await until(() => serverSockets.size === 0)
    await proxy.close()
  })

  it('should reset open and new connections when cut, and forward again once restored', async () => {
    const proxy = await startTcpProxy({ port })
    const open = rawClient(proxy.port)
    await open.connected
    open.socket.write('x')
    await until(() => open.state.received === 'x')
    proxy.cut()
    await open.closed
    expect(open.state.ended).toBe('reset')
    const during = rawClient(proxy.port)
    await during.closed
    expect(during.state.received).toBe('')
    proxy.restore()
    const after = rawClient(proxy.port)
    after.socket.write('back')
    await until(() => after.state.received === 'back')
    after.socket.destroy()
    await proxy.close()
  })

  it('should hold everything in a black hole, on open and new connections, and deliver it in order on restore', async () => {
    const proxy = await startTcpProxy({ port })
    const open = rawClient(proxy.port)
    open.socket.write('a')
    await until(() => open.state.received === 'a')
    proxy.blackHole()
    open.socket.write('b')
    open.socket.write('c')
    const fresh = rawClient(proxy.port)
    await fresh.connected
    fresh.socket.write('new')
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(open.state.received).toBe('a')
    expect(fresh.state.received).toBe('')
    expect(open.state.ended).toBeUndefined()
    proxy.restore()
    await until(() => open.state.received === 'abc' && fresh.state.received === 'new')
    open.socket.destroy()
    fresh.socket.destroy()
    await proxy.close()
  })

  it.skipIf(missing('redis-server'))('should close the client’s connection when the target dies', async () => {
    const redis = await startRedisServer()
    const proxy = await startTcpProxy({ port: redis.port })
    const client = rawClient(proxy.port)
    client.socket.write('PING\r\n')
    await until(() => client.state.received === '+PONG\r\n')
    await redis.kill()
    await client.closed
    expect(client.state.ended).toBeDefined()
    await proxy.close()
    await redis.stop()
  })
})
