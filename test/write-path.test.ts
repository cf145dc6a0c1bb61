/**
 * The write path (docs/performance.md, "The write path"): `next` frames written as WebSocket
 * frames to the TCP socket under `ws`, everything a socket is due in one turn of the event loop
 * as one write, the shared payload bytes never copied per recipient. What a client receives must
 * not change: every frame intact whatever its size, in delivery order, interleaved correctly
 * with the frames `ws` writes itself, and nothing held back past the turn it was produced in.
 */
import type { Socket } from 'node:net'
import * as ws from 'ws'
import { afterEach, describe, expect, it } from 'vitest'
import { nextWebSocketFrame } from '../src/transport/frame-writer.ts'
import { useFixture } from './helpers/fixture.ts'
import { settled } from './helpers/gateway.ts'
import type { Message, RawClient } from './helpers/raw-socket.ts'

/** ws's own framing, the reference (exported by ws, not by its type definitions). */
const { Sender } = ws as unknown as {
  Sender: { frame(data: Buffer, options: Record<string, unknown>): Buffer[] }
}

const ROOM = 'subscription Room($name: String!) { room(name: $name) { event data } }'

/** Counts the writes a TCP socket hands to the operating system (each is one write or writev system call). */
function countWrites(socket: Socket): { readonly count: number } {
  const handle = (socket as unknown as { _handle: Record<string, (...args: unknown[]) => unknown> })._handle
  const counter = { count: 0 }
  for (const method of ['writev', 'writeBuffer', 'writeUtf8String', 'writeLatin1String', 'writeAsciiString']) {
    const original = handle[method]!
    handle[method] = function (this: unknown, ...args: unknown[]) {
      counter.count++
      return original.apply(this, args)
    }
  }
  return counter
}

const nextsOf = (client: RawClient) => client.received.filter((m) => m.type === 'next' || m.type === 'complete')
const describeMessage = (m: Message) => `${m.type} ${m.id}${m.type === 'next' ? ` ${m.payload.data.room.data.i}` : ''}`

describe('the write path', () => {
  const env = useFixture()
  const clients: RawClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()))
    await settled(() => expect(env.gateway.hub.subscriberCount).toBe(0))
  })

  /** A client subscribed to room `name` as operations `ids`, once the gateway runs its subscriptions. */
  async function subscriber(name: string, ids: string[]): Promise<RawClient> {
    const client = await env.connectRaw()
    clients.push(client)
    const before = env.gateway.hub.subscriberCount
    for (const id of ids) client.subscribe(id, ROOM, { name })
    await settled(() => expect(env.gateway.hub.subscriberCount).toBe(before + ids.length))
    return client
  }

  const send = (room: string, data: unknown) =>
    env.gateway.rooms.send({ event: 'm', data, sender: null }, { rooms: [room], omit: [] })

  it('should frame every payload length as ws does (7-bit, 16-bit and 64-bit lengths)', () => {
    const prefix = Buffer.from('{"id":"1","type":"next","payload":')
    for (const length of [0, 1, 89, 90, 91, 65_499, 65_500, 1_000_000]) {
      const payload = Buffer.alloc(length, 'a')
      const message = Buffer.concat([prefix, payload, Buffer.from('}')])
      const framedByWs = Buffer.concat(Sender.frame(message, { fin: true, opcode: 1, mask: false, readOnly: true }))
      expect(nextWebSocketFrame(prefix, payload).equals(framedByWs), `payload of ${length} bytes`).toBe(true)
    }
  })

  it('should send what a socket is due in one turn as one write, in delivery order, before the next turn', async () => {
    const client = await subscriber('turn', ['a', 'b'])
    const writes = countWrites(env.servers.of(client))
    // Three broadcasts in one turn: the local delivery runs before each send returns.
    for (let i = 0; i < 3; i++) void send('turn', { i })
    expect(writes.count).toBe(0)
    await new Promise((resolve) => setImmediate(resolve))
    expect(writes.count).toBe(1)
    await settled(() => expect(nextsOf(client)).toHaveLength(6))
    expect(nextsOf(client).map(describeMessage)).toEqual([
      'next a 0',
      'next b 0',
      'next a 1',
      'next b 1',
      'next a 2',
      'next b 2',
    ])
  })

  it('should deliver frames of every header size intact, alone and after one another in one write', async () => {
    const client = await subscriber('sizes', ['s'])
    // Payloads around the 125-byte and 65,535-byte boundaries of the frame header (the room's data
    // limit is 64 KiB of JSON, so the largest frame is past 65,535 bytes with the envelope).
    const sizes = [0, 60, 100, 200, 65_300, 65_500]
    for (const size of sizes) void send('sizes', { i: size, text: 'x'.repeat(size) })
    await settled(() => expect(nextsOf(client)).toHaveLength(sizes.length))
    expect(nextsOf(client).map((m) => m.payload.data.room.data.text.length)).toEqual(sizes)
    for (const size of sizes) {
      void send('sizes', { i: size, text: 'é'.repeat(size / 2) })
      await settled(() => expect(nextsOf(client).at(-1)?.payload.data.room.data.text).toBe('é'.repeat(size / 2)))
    }
  })

  it('should keep the frames ws writes itself in order with the next frames of the same turn', async () => {
    const client = await subscriber('order', ['a', 'b'])
    void send('order', { i: 1 })
    // Ending every subscription in the same turn: the completes go through ws, after the nexts.
    env.gateway.hub.endAll()
    await settled(() => expect(nextsOf(client)).toHaveLength(4))
    expect(nextsOf(client).map(describeMessage)).toEqual(['next a 1', 'next b 1', 'complete a', 'complete b'])
    await client.roundTrip()
  })

  it('should send every member of a group the same payload bytes under its own operation id', async () => {
    const one = await subscriber('shared', ['x'])
    const two = await subscriber('shared', ['a-much-longer-id'])
    void send('shared', { i: 7 })
    await settled(() => expect([nextsOf(one), nextsOf(two)].map((m) => m.length)).toEqual([1, 1]))
    expect(nextsOf(one)[0]).toEqual({
      id: 'x',
      type: 'next',
      payload: { data: { room: { event: 'm', data: { i: 7 } } } },
    })
    expect(nextsOf(two)[0]).toEqual({
      id: 'a-much-longer-id',
      type: 'next',
      payload: { data: { room: { event: 'm', data: { i: 7 } } } },
    })
  })
})
