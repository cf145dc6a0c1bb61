/**
 * Rooms over GraphQL, end to end: a real gateway, real graphql-ws clients. Rooms never touch the
 * database, so one database kind (SQLite) is enough.
 *
 * A test shows that a connection did NOT receive something by sending it a later message that it
 * does receive: delivery to a connection is in order, so that later message must come first.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { postGraphQL } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'
import {
  BLAST,
  BROADCAST,
  MESSAGES,
  nextMessage,
  ROOM,
  roomClients,
  settled,
  type Connection,
} from './helpers/rooms.ts'

describe('rooms', () => {
  const env = useFixture()
  let gateway: TestGateway
  let rooms: ReturnType<typeof roomClients>

  beforeAll(() => {
    gateway = env.gateway
    rooms = roomClients(gateway)
  })
  afterEach(() => rooms.closeAll())

  /** Runs an operation over HTTP and returns its data; errors fail the test. */
  async function post(query: string, variables?: Record<string, unknown>): Promise<Record<string, any>> {
    const result = await postGraphQL(gateway.url, query, variables)
    expect(result.errors).toBeUndefined()
    return result.data!
  }
  const broadcast = (variables: Record<string, unknown>) => post(BROADCAST, variables).then((data) => data.broadcast)
  /** A message addressed to one connection only (its id as the room). */
  const marker = (connection: Connection) => broadcast({ rooms: [connection.id], event: 'marker' })
  const members = (room: string) =>
    post('query ($room: String!) { roomMembers(room: $room) }', { room }).then((data) => data.roomMembers)
  const join = (connection: Connection, room: string) =>
    post(
      'mutation ($id: ID!, $room: String!) { join(connectionId: $id, room: $room) { room connectionIds memberCount } }',
      { id: connection.id, room },
    ).then((data) => data.join)

  /** The seed's setup: a and b subscribe to funSockets (events: hello); c, outside it, to messages. */
  async function funSockets() {
    const [a, b, c] = [await rooms.connect(), await rooms.connect(), await rooms.connect()]
    const roomA = await rooms.subscribe(a, ROOM, { name: 'funSockets', events: ['hello'] })
    const roomB = await rooms.subscribe(b, ROOM, { name: 'funSockets', events: ['hello'] })
    const messagesC = await rooms.subscribe(c, MESSAGES)
    return { a, b, c, roomA, roomB, messagesC }
  }

  describe('the Sails scenario (funSockets)', () => {
    it('should deliver a broadcast to the two room subscribers and not to the connection outside the room', async () => {
      const { c, roomA, roomB, messagesC } = await funSockets()
      const result = await broadcast({ rooms: ['funSockets'], event: 'hello', data: 'Hello to all my fun sockets!' })
      expect(result).toEqual({ messageId: expect.any(String), recipients: 2 })
      for (const subscription of [roomA, roomB]) {
        const message = await nextMessage(subscription)
        expect(message).toEqual({
          id: result.messageId,
          room: 'funSockets',
          event: 'hello',
          data: 'Hello to all my fun sockets!',
          sender: null,
          sentAt: expect.any(String),
        })
        expect(new Date(message.sentAt).toISOString()).toBe(message.sentAt)
      }
      await marker(c)
      expect(await nextMessage(messagesC)).toMatchObject({ event: 'marker', room: c.id })
    })

    it('should leave out the omitted connection', async () => {
      const { a, roomA, roomB } = await funSockets()
      expect(await broadcast({ rooms: ['funSockets'], event: 'hello', data: 'not for a', omit: a.id })).toMatchObject({
        recipients: 1,
      })
      expect(await nextMessage(roomB)).toMatchObject({ data: 'not for a' })
      await broadcast({ rooms: ['funSockets'], event: 'hello', data: 'for all' })
      expect(await nextMessage(roomA)).toMatchObject({ data: 'for all' })
    })

    it('should reach a connection the server joined to the room on messages, until it leaves', async () => {
      const { c, messagesC } = await funSockets()
      expect(await join(c, 'funSockets')).toEqual({ room: 'funSockets', connectionIds: [c.id], memberCount: 3 })
      expect(await broadcast({ rooms: ['funSockets'], event: 'hello', data: 'welcome c' })).toMatchObject({
        recipients: 3,
      })
      expect(await nextMessage(messagesC)).toMatchObject({ room: 'funSockets', event: 'hello', data: 'welcome c' })

      const left = await post(
        'mutation ($id: ID!) { leave(connectionId: $id, room: "funSockets") { room connectionIds memberCount } }',
        { id: c.id },
      )
      expect(left.leave).toEqual({ room: 'funSockets', connectionIds: [c.id], memberCount: 2 })
      await broadcast({ rooms: ['funSockets'], event: 'hello', data: 'c is gone' })
      await marker(c)
      expect(await nextMessage(messagesC)).toMatchObject({ event: 'marker' })
    })

    it('should make a broadcast to room b reach every member of funSockets after addRoomMembersToRooms', async () => {
      const { a, b, c, messagesC } = await funSockets()
      await join(c, 'funSockets')
      const [messagesA, messagesB] = [await rooms.subscribe(a, MESSAGES), await rooms.subscribe(b, MESSAGES)]
      const added = await post(
        'mutation { addRoomMembersToRooms(sourceRoom: "funSockets", rooms: ["b"]) { room connectionIds memberCount } }',
      )
      expect(added.addRoomMembersToRooms).toEqual([{ room: 'b', connectionIds: [a.id, b.id, c.id], memberCount: 3 }])
      expect(await broadcast({ rooms: ['b'], event: 'hello', data: 'to b' })).toMatchObject({ recipients: 3 })
      for (const subscription of [messagesA, messagesB, messagesC])
        expect(await nextMessage(subscription)).toMatchObject({ room: 'b', data: 'to b' })
    })

    it('should leave every member in no room after leaveAll, completing their room subscriptions', async () => {
      const { a, b, c, roomA, roomB } = await funSockets()
      await join(c, 'funSockets')
      await post('mutation { addRoomMembersToRooms(sourceRoom: "funSockets", rooms: ["b"]) { room } }')
      const { leaveAll } = await post('mutation { leaveAll(room: "funSockets") { room connectionIds memberCount } }')
      expect(leaveAll).toEqual([
        { room: 'funSockets', connectionIds: [a.id, b.id, c.id], memberCount: 0 },
        { room: 'b', connectionIds: [a.id, b.id, c.id], memberCount: 0 },
      ])
      await Promise.all([roomA.completed, roomB.completed])
      expect(await post('{ rooms { name memberCount } }')).toEqual({ rooms: [] })
      for (const connection of [a, b, c])
        expect(await rooms.execute(connection, '{ connection { rooms } }')).toEqual({ connection: { rooms: [] } })
    })
  })

  describe('room subscriptions', () => {
    it('should deliver only the events asked for', async () => {
      const a = await rooms.connect()
      const room = await rooms.subscribe(a, ROOM, { name: 'x', events: ['hello', 'bye'] })
      const messages = await rooms.subscribe(a, MESSAGES, { events: ['bye'] })
      for (const event of ['other', 'hello', 'bye']) await broadcast({ rooms: ['x'], event })
      expect((await nextMessage(room)).event).toBe('hello')
      expect((await nextMessage(room)).event).toBe('bye')
      expect((await nextMessage(messages)).event).toBe('bye')
    })

    it('should deliver a message once to each subscription when the connection is in several targeted rooms', async () => {
      const a = await rooms.connect()
      const [x, y] = [await rooms.subscribe(a, ROOM, { name: 'x' }), await rooms.subscribe(a, ROOM, { name: 'y' })]
      const messages = await rooms.subscribe(a, MESSAGES)
      await join(a, 'x')
      expect(await broadcast({ rooms: ['y', 'x', 'y'], event: 'both' })).toMatchObject({ recipients: 1 })
      expect(await nextMessage(x)).toMatchObject({ room: 'x', event: 'both' })
      expect(await nextMessage(y)).toMatchObject({ room: 'y', event: 'both' })
      expect(await nextMessage(messages)).toMatchObject({ room: 'y', event: 'both' })
      await broadcast({ rooms: ['x', 'y'], event: 'next' })
      expect(await nextMessage(x)).toMatchObject({ event: 'next' })
      expect(await nextMessage(y)).toMatchObject({ event: 'next' })
      expect(await nextMessage(messages)).toMatchObject({ event: 'next' })
    })

    it('should leave the room when the subscription completes, unless the server joined the connection too', async () => {
      const a = await rooms.connect()
      const first = await rooms.subscribe(a, ROOM, { name: 'solo' })
      expect(await members('solo')).toEqual([a.id])
      first.stop()
      await settled(async () => expect(await members('solo')).toEqual([]))

      await join(a, 'solo')
      const second = await rooms.subscribe(a, ROOM, { name: 'solo' })
      second.stop()
      await settled(() => expect(gateway.hub.subscriberCount).toBe(0))
      expect(await members('solo')).toEqual([a.id])
    })

    it('should keep the connection in the room while another of its room subscriptions runs', async () => {
      const a = await rooms.connect()
      const first = await rooms.subscribe(a, ROOM, { name: 'x' })
      const second = await rooms.subscribe(a, ROOM, { name: 'x', events: ['e'] })
      first.stop()
      await settled(() => expect(gateway.hub.subscriberCount).toBe(1))
      expect(await members('x')).toEqual([a.id])
      await broadcast({ rooms: ['x'], event: 'e' })
      expect(await nextMessage(second)).toMatchObject({ event: 'e' })
      second.stop()
      await settled(async () => expect(await members('x')).toEqual([]))
    })

    it('should complete the room subscriptions of a connection the server makes leave the room', async () => {
      const a = await rooms.connect()
      const x = await rooms.subscribe(a, ROOM, { name: 'x' })
      const y = await rooms.subscribe(a, ROOM, { name: 'y' })
      await join(a, 'x')
      await post('mutation ($id: ID!) { leave(connectionId: $id, room: "x") { room } }', { id: a.id })
      await x.completed
      expect(await rooms.execute(a, '{ connection { rooms } }')).toEqual({ connection: { rooms: ['y'] } })
      await broadcast({ rooms: ['y'], event: 'still' })
      expect(await nextMessage(y)).toMatchObject({ event: 'still' })
    })

    it('should refuse room and messages over HTTP (SSE) with WEBSOCKET_REQUIRED', async () => {
      for (const query of ['subscription { room(name: "x") { id } }', 'subscription { messages { id } }']) {
        const response = await fetch(gateway.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'text/event-stream' },
          body: JSON.stringify({ query }),
        })
        // The `next` event's data line; `complete` carries an empty one.
        const data = (await response.text()).split('\n').find((line) => line.startsWith('data: {'))!
        expect(JSON.parse(data.slice(5)).errors[0]).toMatchObject({
          message: expect.stringMatching(/needs a WebSocket connection/),
          extensions: { code: 'WEBSOCKET_REQUIRED' },
        })
      }
      expect(await post('{ rooms { name } }')).toEqual({ rooms: [] })
    })
  })

  describe('blast and direct messages', () => {
    it('should blast to every connection except omit, with no room', async () => {
      const connections = [await rooms.connect(), await rooms.connect(), await rooms.connect()]
      const [a, b, c] = connections
      const [messagesA, messagesB, messagesC] = [
        await rooms.subscribe(a!, MESSAGES),
        await rooms.subscribe(b!, MESSAGES),
        await rooms.subscribe(c!, MESSAGES),
      ]
      expect(await post(BLAST, { event: 'news', data: { n: 1 }, omit: b!.id })).toMatchObject({
        blast: { recipients: 2 },
      })
      for (const subscription of [messagesA, messagesC])
        expect(await nextMessage(subscription)).toMatchObject({ room: null, event: 'news', data: { n: 1 } })
      await marker(b!)
      expect(await nextMessage(messagesB)).toMatchObject({ event: 'marker' })
    })

    it('should not deliver a blast to room subscriptions', async () => {
      const a = await rooms.connect()
      const room = await rooms.subscribe(a, ROOM, { name: 'x' })
      await post(BLAST, { event: 'news' })
      await broadcast({ rooms: ['x'], event: 'room news' })
      expect(await nextMessage(room)).toMatchObject({ event: 'room news' })
    })

    it('should reach a connection addressed by its id as a room name, without making it a room', async () => {
      const [a, b] = [await rooms.connect(), await rooms.connect()]
      const messages = await rooms.subscribe(a, MESSAGES)
      expect(await broadcast({ rooms: [a.id], event: 'direct', data: 'just you', omit: b.id })).toMatchObject({
        recipients: 1,
      })
      expect(await nextMessage(messages)).toMatchObject({ room: a.id, event: 'direct', data: 'just you' })
      expect(await post('{ rooms { name } }')).toEqual({ rooms: [] })
    })
  })

  describe('cursors', () => {
    it('should give a room message the cursor of its room, the same on room and messages, and none to blasts and direct messages', async () => {
      const a = await rooms.connect()
      const inRoom = await rooms.subscribe(a, 'subscription { room(name: "cursors") { event cursor } }')
      const everything = await rooms.subscribe(a, 'subscription { messages { event room cursor } }')
      await broadcast({ rooms: ['cursors'], event: 'one' })
      await broadcast({ rooms: ['cursors'], event: 'two' })
      await post(BLAST, { event: 'blast' })
      await marker(a)
      const one = await nextMessage(inRoom)
      const two = await nextMessage(inRoom)
      expect(one).toEqual({ event: 'one', cursor: expect.any(String) })
      expect(two).toEqual({ event: 'two', cursor: expect.any(String) })
      expect(two.cursor).not.toBe(one.cursor)
      const seen = [
        await nextMessage(everything),
        await nextMessage(everything),
        await nextMessage(everything),
        await nextMessage(everything),
      ]
      expect(seen).toEqual([
        { event: 'one', room: 'cursors', cursor: one.cursor },
        { event: 'two', room: 'cursors', cursor: two.cursor },
        { event: 'blast', room: null, cursor: null },
        { event: 'marker', room: a.id, cursor: null },
      ])
    })
  })

  describe('queries', () => {
    it('should answer connection { id rooms } over WebSocket and null over HTTP', async () => {
      const a = await rooms.connect()
      expect(await rooms.execute(a, '{ connection { id rooms } }')).toEqual({ connection: { id: a.id, rooms: [] } })
      await join(a, 'x')
      await rooms.subscribe(a, ROOM, { name: 'w' })
      expect(await rooms.execute(a, '{ connection { id rooms } }')).toEqual({
        connection: { id: a.id, rooms: ['w', 'x'] },
      })
      expect(await post('{ connection { id } }')).toEqual({ connection: null })
    })

    it('should list the members of a room and every room with its member count', async () => {
      const [a, b] = [await rooms.connect(), await rooms.connect()]
      await join(a, 'x')
      await join(b, 'x')
      await join(b, 'y')
      expect(await members('x')).toEqual([a.id, b.id].sort())
      expect(await members('none')).toEqual([])
      expect(await post('{ rooms { name memberCount } }')).toEqual({
        rooms: [
          { name: 'x', memberCount: 2 },
          { name: 'y', memberCount: 1 },
        ],
      })
    })
  })

  describe('mutations', () => {
    it('should set the sender of a message sent over WebSocket and leave it out with omitSelf', async () => {
      const [a, b] = [await rooms.connect(), await rooms.connect()]
      const [roomA, roomB] = [
        await rooms.subscribe(a, ROOM, { name: 'x' }),
        await rooms.subscribe(b, ROOM, { name: 'x' }),
      ]
      const messagesA = await rooms.subscribe(a, MESSAGES)
      expect(await rooms.execute(a, BROADCAST, { rooms: ['x'], event: 'mine', omitSelf: true })).toMatchObject({
        broadcast: { recipients: 1 },
      })
      expect(await nextMessage(roomB)).toMatchObject({ event: 'mine', sender: a.id })
      expect(await rooms.execute(a, BLAST, { event: 'all but me', omitSelf: true })).toMatchObject({
        blast: { recipients: 1 },
      })
      expect(await rooms.execute(a, BROADCAST, { rooms: ['x'], event: 'echo' })).toMatchObject({
        broadcast: { recipients: 2 },
      })
      expect(await nextMessage(roomA)).toMatchObject({ event: 'echo', sender: a.id })
      expect(await nextMessage(messagesA)).toMatchObject({ event: 'echo' })
    })

    it('should ignore omitSelf over HTTP, where there is no self', async () => {
      const a = await rooms.connect()
      await join(a, 'x')
      expect(await broadcast({ rooms: ['x'], event: 'e', omitSelf: true })).toMatchObject({ recipients: 1 })
    })

    it('should run membership mutations over WebSocket too', async () => {
      const [a, b] = [await rooms.connect(), await rooms.connect()]
      const joined = await rooms.execute(
        a,
        'mutation ($id: ID!) { join(connectionId: $id, room: "x") { room connectionIds memberCount } }',
        { id: b.id },
      )
      expect(joined).toEqual({ join: { room: 'x', connectionIds: [b.id], memberCount: 1 } })
      const again = await rooms.execute(
        a,
        'mutation ($id: ID!) { join(connectionId: $id, room: "x") { connectionIds } }',
        { id: b.id },
      )
      expect(again).toEqual({ join: { connectionIds: [] } })
      expect(await members('x')).toEqual([b.id])
    })

    it('should remove the members of a room from other rooms', async () => {
      const [a, b, c] = [await rooms.connect(), await rooms.connect(), await rooms.connect()]
      for (const connection of [a, b]) await join(connection, 'source')
      for (const connection of [a, b, c]) await join(connection, 'y')
      const { removeRoomMembersFromRooms } = await post(
        'mutation { removeRoomMembersFromRooms(sourceRoom: "source", rooms: ["y", "z"]) { room connectionIds memberCount } }',
      )
      expect(removeRoomMembersFromRooms).toEqual([
        { room: 'y', connectionIds: [a.id, b.id], memberCount: 1 },
        { room: 'z', connectionIds: [], memberCount: 0 },
      ])
      expect(await members('y')).toEqual([c.id])
      expect(await members('source')).toEqual([a.id, b.id].sort())
    })
  })
})
