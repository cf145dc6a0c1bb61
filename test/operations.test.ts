/**
 * Operations (docs/operations.md): one info line per WebSocket connection opening and closing, and GraphiQL
 * sent compressed.
 */
import { request } from 'node:http'
import { brotliDecompressSync, gunzipSync } from 'node:zlib'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { chooseEncoding } from '../src/http/graphiql.ts'
import { bearer, JWT_SECRET, SERVICE_KEY, userToken } from './helpers/auth.ts'
import { useFixture } from './helpers/fixture.ts'
import { settled } from './helpers/gateway.ts'
import type { RawClient } from './helpers/raw-socket.ts'

type LogLine = Record<string, unknown> & { msg: string; level: number }

/** A pino logger at level info that keeps every line, parsed. */
function capturingLogger() {
  const lines: LogLine[] = []
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as LogLine) })
  return { logger, lines }
}

const connectionIdOf = (client: RawClient) =>
  client.received.find((message) => message.type === 'connection_ack')?.payload?.connectionId as string

describe('connection logs', () => {
  const { logger, lines } = capturingLogger()
  const env = useFixture({ gateway: { auth: { apiKeys: [SERVICE_KEY], jwtSecret: JWT_SECRET }, logger } })
  const linesAbout = (msg: string, match: (line: LogLine) => boolean) =>
    lines.filter((line) => line.msg === msg && match(line))

  it('should log one info line when a connection opens and one when it closes, with its id, role, address and close code', async () => {
    const client = await env.connectRaw({ payload: bearer(await userToken('42')), localAddress: '127.0.0.7' })
    const connectionId = connectionIdOf(client)
    expect(connectionId).toBeTruthy()
    const opened = linesAbout('websocket connection opened', (line) => line.connectionId === connectionId)
    expect(opened).toEqual([
      expect.objectContaining({ level: 30, connectionId, role: 'user', userId: '42', ip: '127.0.0.7' }),
    ])

    client.socket.close(1000, 'bye')
    await client.closed
    await settled(() =>
      expect(linesAbout('websocket connection closed', (line) => line.connectionId === connectionId)).toHaveLength(1),
    )
    const [closed] = linesAbout('websocket connection closed', (line) => line.connectionId === connectionId)
    expect(closed).toMatchObject({
      level: 30,
      connectionId,
      role: 'user',
      ip: '127.0.0.7',
      code: 1000,
      reason: 'bye',
      closedBy: 'client',
    })
    expect(closed!.durationMs).toEqual(expect.any(Number))
  })

  it('should log the role of a service (API key)', async () => {
    const client = await env.connectRaw({ payload: bearer(SERVICE_KEY) })
    const connectionId = connectionIdOf(client)
    expect(linesAbout('websocket connection opened', (line) => line.connectionId === connectionId)).toEqual([
      expect.objectContaining({ role: 'service', ip: '127.0.0.1' }),
    ])
    expect(lines.find((line) => line.connectionId === connectionId)).not.toHaveProperty('userId')
  })

  it('should log the close of a refused connection (no id) with the server as the one closing, code 4403', async () => {
    const outcome = await env.attempt({ localAddress: '127.0.0.9' })
    if (outcome.kind !== 'open') throw new Error(`the upgrade failed: ${JSON.stringify(outcome)}`)
    outcome.client.send({ type: 'connection_init', payload: bearer('not-a-key') })
    expect((await outcome.client.closed).code).toBe(4403)
    await settled(() =>
      expect(linesAbout('websocket connection closed', (line) => line.ip === '127.0.0.9')).toHaveLength(1),
    )
    const [closed] = linesAbout('websocket connection closed', (line) => line.ip === '127.0.0.9')
    expect(closed).toMatchObject({ level: 30, code: 4403, reason: 'Forbidden', closedBy: 'server' })
    expect(closed).not.toHaveProperty('connectionId')
    expect(closed).not.toHaveProperty('role')
    expect(linesAbout('websocket connection opened', (line) => line.ip === '127.0.0.9')).toEqual([])
  })

  it('should log a frame that ws refuses (over the payload limit, 1009) as closed by the server, with why', async () => {
    const client = await env.connectRaw({ payload: bearer(SERVICE_KEY), localAddress: '127.0.0.11' })
    client.send('x'.repeat(70 * 1024))
    expect((await client.closed).code).toBe(1009)
    await settled(() =>
      expect(linesAbout('websocket connection closed', (line) => line.ip === '127.0.0.11')).toHaveLength(1),
    )
    const [closed] = linesAbout('websocket connection closed', (line) => line.ip === '127.0.0.11')
    expect(closed).toMatchObject({ reason: 'Max payload size exceeded', closedBy: 'server' })
  })

  it('should log the connections a gateway closes when it stops, code 1001', async () => {
    const capture = capturingLogger()
    const gateway = await env.startGateway({ auth: { apiKeys: [SERVICE_KEY] }, logger: capture.logger })
    const client = await env.connectRaw({ payload: bearer(SERVICE_KEY), gateway })
    const connectionId = connectionIdOf(client)
    await gateway.close()
    await settled(() =>
      expect(
        capture.lines.filter(
          (line) => line.msg === 'websocket connection closed' && line.connectionId === connectionId,
        ),
      ).toEqual([
        expect.objectContaining({ role: 'service', code: 1001, reason: 'Server shutting down', closedBy: 'server' }),
      ]),
    )
  })
})

interface RawResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  /** The body as it came over the wire (not decoded). */
  body: Buffer
}

/** A GET with node:http, which (unlike fetch) leaves the body as it came. */
function get(url: string, headers: Record<string, string>): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    request(url, { headers }, (response) => {
      const chunks: Buffer[] = []
      response.on('data', (chunk: Buffer) => chunks.push(chunk))
      response.on('end', () =>
        resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }),
      )
      response.on('error', reject)
    })
      .on('error', reject)
      .end()
  })
}

describe('GraphiQL', () => {
  const env = useFixture()
  const page = (encoding?: string, extra: Record<string, string> = {}) =>
    get(env.gateway.url, {
      accept: 'text/html,application/xhtml+xml',
      ...(encoding === undefined ? {} : { 'accept-encoding': encoding }),
      ...extra,
    })

  it('should choose brotli or gzip as Accept-Encoding allows', () => {
    expect(chooseEncoding(undefined)).toBe('identity')
    expect(chooseEncoding('gzip, deflate, br, zstd')).toBe('br')
    expect(chooseEncoding('gzip, deflate')).toBe('gzip')
    expect(chooseEncoding('br;q=0, gzip;q=0.5')).toBe('gzip')
    expect(chooseEncoding('br;q=0.2, gzip;q=0.8')).toBe('gzip')
    expect(chooseEncoding('*')).toBe('br')
    expect(chooseEncoding('*;q=0, identity')).toBe('identity')
    expect(chooseEncoding('deflate')).toBe('identity')
  })

  it('should send GraphiQL uncompressed to a client that accepts no compression', async () => {
    const response = await page()
    expect(response.status).toBe(200)
    expect(response.headers['content-type']).toBe('text/html; charset=utf-8')
    expect(response.headers['content-encoding']).toBeUndefined()
    expect(response.headers.vary).toMatch(/Accept-Encoding/i)
    const html = response.body.toString()
    expect(html).toContain('<title>mizzen</title>')
    expect(html).toContain('YogaGraphiQL.renderYogaGraphiQL')
    expect(Number(response.headers['content-length'])).toBe(response.body.length)
  })

  it.each([
    ['br', 'gzip, deflate, br', brotliDecompressSync],
    ['gzip', 'gzip, deflate', gunzipSync],
  ] as const)(
    'should send GraphiQL as %s, a fraction of its size, decoding to the same page',
    async (encoding, accept, decode) => {
      const plain = await page()
      const response = await page(accept)
      expect(response.status).toBe(200)
      expect(response.headers['content-encoding']).toBe(encoding)
      expect(response.headers.vary).toMatch(/Accept-Encoding/i)
      expect(Number(response.headers['content-length'])).toBe(response.body.length)
      // Measured: 9.1 MB plain, about 2 MB compressed.
      expect(response.body.length).toBeLessThan(plain.body.length / 3)
      expect(decode(response.body).equals(plain.body)).toBe(true)
      // Compressed once: the second answer is the same bytes.
      expect((await page(accept)).body.equals(response.body)).toBe(true)
    },
  )

  it('should answer a revalidation with 304 and no body', async () => {
    const first = await page('gzip')
    expect(first.headers['cache-control']).toBe('no-cache')
    const etag = first.headers.etag as string
    expect(etag).toMatch(/^"[\w-]+"$/)
    const again = await page('gzip', { 'if-none-match': etag })
    expect(again.status).toBe(304)
    expect(again.body.length).toBe(0)
    expect(again.headers.etag).toBe(etag)
  })

  it('should leave GET requests that are not a browser’s to Yoga', async () => {
    const response = await fetch(`${env.gateway.url}?query=${encodeURIComponent('{ mizzenVersion }')}`, {
      headers: { accept: 'application/json' },
    })
    expect(response.status).toBe(200)
    expect(await response.json()).toEqual({ data: { mizzenVersion: expect.any(String) } })
  })

  it('should not serve GraphiQL or the demo when turned off (as in production)', async () => {
    const gateway = await env.startGateway({ graphiql: false, demo: false })
    const graphiql = await get(gateway.url, { accept: 'text/html' })
    expect(graphiql.body.toString()).not.toContain('YogaGraphiQL')
    const demo = await get(new URL('/demo', gateway.url).href, { accept: 'text/html' })
    expect(demo.status).toBe(404)
  })
})
