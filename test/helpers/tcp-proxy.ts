/**
 * A TCP proxy in front of a server (Redis, PostgreSQL), to put a network fault between it and
 * its clients while the server itself keeps running and keeps its data:
 *
 * - `cut()`: every open connection is reset (both sides see ECONNRESET), and connections made
 *   while cut are reset at once, as when a link or a NAT drops its state.
 * - `blackHole()`: connections stay open and accept writes, but nothing passes in either
 *   direction, and new connections are accepted and hang there: a partition where packets
 *   vanish and nobody is told. What was sent meanwhile is held, and delivered in order on
 *   `restore()`, as TCP retransmission would once the partition heals (unless `cut()` first).
 * - `restore()`: forwarding again; new connections go through.
 *
 *   const proxy = await startTcpProxy({ port: redis.port })
 *   connect to proxy.url('redis') … proxy.cut() … proxy.restore()
 *   await proxy.close()
 */
import { connect, createServer, type Server, type Socket } from 'node:net'

export type ProxyMode = 'forward' | 'cut' | 'black-hole'

export interface TcpProxy {
  /** The port clients connect to (on 127.0.0.1). */
  readonly port: number
  readonly mode: ProxyMode
  /** Client connections open through the proxy. */
  readonly connectionCount: number
  /** `<scheme>://127.0.0.1:<port><rest>`, e.g. `url('redis')` or `url('postgres', '/db')`. */
  url(scheme: string, rest?: string): string
  /** Resets every connection, and every new one until `restore()`. */
  cut(): void
  /** Holds everything in both directions, on open and new connections, until `restore()`. */
  blackHole(): void
  /** Forwards again (delivering what a black hole held). */
  restore(): void
  /** Resets every connection and stops listening. */
  close(): Promise<void>
}

/** One client connection and its connection to the target, with what waits to pass each way. */
class Link {
  upstream: Socket | undefined
  readonly toUpstream: Buffer[] = []
  readonly toClient: Buffer[] = []
  /** A side that ended (FIN) while the link held data: its end is passed on after the data. */
  clientEnded = false
  upstreamEnded = false

  constructor(readonly client: Socket) {}

  reset(): void {
    this.client.resetAndDestroy()
    this.upstream?.resetAndDestroy()
  }
}

export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1'
  const links = new Set<Link>()
  let mode: ProxyMode = 'forward'

  /** Passes held data on, and a held end after it, while forwarding. */
  const flush = (link: Link) => {
    if (mode !== 'forward' || !link.upstream || link.upstream.connecting) return
    for (const chunk of link.toUpstream.splice(0)) link.upstream.write(chunk)
    for (const chunk of link.toClient.splice(0)) link.client.write(chunk)
    if (link.clientEnded) link.upstream.end()
    if (link.upstreamEnded) link.client.end()
  }

  const openUpstream = (link: Link) => {
    const upstream = connect(target.port, host)
    link.upstream = upstream
    upstream.setNoDelay(true)
    upstream.on('connect', () => flush(link))
    upstream.on('data', (chunk: Buffer) => {
      link.toClient.push(chunk)
      flush(link)
    })
    upstream.on('end', () => {
      link.upstreamEnded = true
      flush(link)
    })
    // The target refused or reset: so does the proxy, towards the client.
    upstream.on('error', () => link.client.resetAndDestroy())
    upstream.on('close', () => {
      if (!link.client.destroyed && !link.upstreamEnded) link.client.resetAndDestroy()
    })
  }

  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    client.on('error', () => {}) // a reset from either side is the point, not a failure
    if (mode === 'cut') {
      client.resetAndDestroy()
      return
    }
    const link = new Link(client)
    links.add(link)
    client.setNoDelay(true)
    client.on('data', (chunk: Buffer) => {
      link.toUpstream.push(chunk)
      flush(link)
    })
    client.on('end', () => {
      link.clientEnded = true
      flush(link)
    })
    client.on('error', () => link.upstream?.resetAndDestroy())
    client.on('close', () => {
      links.delete(link)
      if (link.upstream && !link.upstream.destroyed && !link.clientEnded) link.upstream.resetAndDestroy()
    })
    // In a black hole the target is not even reached; the connection is made on restore.
    if (mode === 'forward') openUpstream(link)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const { port } = server.address() as { port: number }

  return {
    port,
    get mode() {
      return mode
    },
    get connectionCount() {
      return links.size
    },
    url: (scheme, rest = '') => `${scheme}://127.0.0.1:${port}${rest}`,
    cut() {
      mode = 'cut'
      for (const link of links) link.reset()
      links.clear()
    },
    blackHole() {
      mode = 'black-hole'
    },
    restore() {
      mode = 'forward'
      for (const link of links) {
        if (link.upstream) flush(link)
        else openUpstream(link)
      }
    },
    async close() {
      mode = 'cut'
      for (const link of links) link.reset()
      links.clear()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
