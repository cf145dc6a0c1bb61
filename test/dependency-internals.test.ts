/**
 * The private fields of `ws` and Node that the transport relies on (each use is guarded, so a
 * rename would not crash: it would silently lose what the field was for). This test fails
 * instead when an upgrade of `ws` or Node renames one:
 * - `ws`'s `_socket`, the TCP socket the frame writer writes `next` frames to (frame-writer.ts);
 * - `ws`'s `_receiver._buffers`, the queue of received chunks whose storage a connection lets go
 *   when it is empty (connection.ts, releaseReadQueue);
 * - Node's `_peername`, the peer address a TCP socket caches once read, let go after the upgrade
 *   (upgrade.ts, forgetPeerAddress).
 */
import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import WebSocket, { WebSocketServer } from 'ws'

let http: Server | undefined
afterEach(async () => {
  http?.closeAllConnections()
  await new Promise((resolve) => http?.close(resolve))
})

describe('private fields the transport relies on', () => {
  it("ws's _socket and _receiver._buffers, and Node's _peername, exist where the transport reads them", async () => {
    http = createServer()
    const wss = new WebSocketServer({ server: http })
    http.listen(0, '127.0.0.1')
    await once(http, 'listening')
    const port = (http.address() as { port: number }).port
    const upgraded = once(http, 'upgrade')
    const accepted = once(wss, 'connection')
    const client = new WebSocket(`ws://127.0.0.1:${port}`)
    const [, rawSocket] = (await upgraded) as [unknown, Socket]
    const [serverSide] = (await accepted) as [WebSocket]
    await once(client, 'open')

    expect(rawSocket.remoteAddress).toBe('127.0.0.1')
    expect(rawSocket).toHaveProperty('_peername')

    const internals = serverSide as WebSocket & { _socket?: unknown; _receiver?: { _buffers?: unknown } }
    expect(internals._socket).toBeInstanceOf(Socket)
    const message = once(serverSide, 'message')
    client.send('hello')
    await message
    expect(Array.isArray(internals._receiver?._buffers)).toBe(true)
    client.close()
  })
})
