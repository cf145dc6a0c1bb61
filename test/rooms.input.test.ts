/** Bad input to rooms: clear errors with stable codes, and the gateway keeps serving everyone else. */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { ConfigError } from '../src/errors.ts'
import { DEFAULT_MAX_DATA_BYTES, MAX_NAME_LENGTH } from '../src/rooms/validation.ts'
import { postGraphQL, subscribeWs } from './helpers/clients.ts'
import { useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'
import { BLAST, BROADCAST, nextMessage, ROOM, roomClients } from './helpers/rooms.ts'

const tooLong = 'r'.repeat(MAX_NAME_LENGTH + 1)
const longest = 'r'.repeat(MAX_NAME_LENGTH)

describe('rooms: bad input', () => {
  const env = useFixture()
  let gateway: TestGateway
  let rooms: ReturnType<typeof roomClients>

  beforeAll(() => {
    gateway = env.gateway
    rooms = roomClients(gateway)
  })
  afterEach(() => rooms.closeAll())

  /** The error of an operation sent over HTTP: its message and extensions.code. */
  async function errorOf(query: string, variables?: Record<string, unknown>) {
    const result = await postGraphQL(gateway.url, query, variables)
    expect(result.errors, JSON.stringify(result)).toHaveLength(1)
    return { message: result.errors![0]!.message, code: result.errors![0]!.extensions?.code }
  }

  describe('names', () => {
    it('should refuse empty and over-long room names in broadcast, membership mutations and queries', async () => {
      const cases: [string, Record<string, unknown>, RegExp][] = [
        [BROADCAST, { rooms: [''], event: 'e' }, /rooms\[0\] must not be empty/],
        [BROADCAST, { rooms: ['ok', tooLong], event: 'e' }, /rooms\[1\] must be at most 256 characters, got 257/],
        [
          'mutation ($room: String!) { join(connectionId: "x", room: $room) { room } }',
          { room: '' },
          /^room must not be empty/,
        ],
        [
          'mutation ($room: String!) { leave(connectionId: "x", room: $room) { room } }',
          { room: tooLong },
          /^room must be at most 256/,
        ],
        ['mutation ($room: String!) { leaveAll(room: $room) { room } }', { room: '' }, /^room must not be empty/],
        [
          'mutation ($room: String!) { addRoomMembersToRooms(sourceRoom: $room, rooms: ["a"]) { room } }',
          { room: tooLong },
          /^sourceRoom must be at most/,
        ],
        [
          'mutation ($room: String!) { removeRoomMembersFromRooms(sourceRoom: "a", rooms: [$room]) { room } }',
          { room: '' },
          /^rooms\[0\] must not be empty/,
        ],
        ['query ($room: String!) { roomMembers(room: $room) }', { room: tooLong }, /^room must be at most/],
      ]
      for (const [query, variables, message] of cases) {
        expect(await errorOf(query, variables), query).toEqual({
          message: expect.stringMatching(message),
          code: 'BAD_USER_INPUT',
        })
      }
    })

    it('should refuse empty and over-long event names', async () => {
      expect(await errorOf(BROADCAST, { rooms: ['x'], event: '' })).toEqual({
        message: 'event must not be empty',
        code: 'BAD_USER_INPUT',
      })
      expect(await errorOf(BLAST, { event: tooLong })).toEqual({
        message: 'event must be at most 256 characters, got 257',
        code: 'BAD_USER_INPUT',
      })
    })

    it('should accept names of exactly the longest length', async () => {
      const a = await rooms.connect()
      const subscription = await rooms.subscribe(a, ROOM, { name: longest, events: [longest] })
      await postGraphQL(gateway.url, BROADCAST, { rooms: [longest], event: longest })
      expect(await nextMessage(subscription)).toMatchObject({ room: longest, event: longest })
    })

    it('should refuse bad names and event filters in subscriptions, and keep the connection usable', async () => {
      const a = await rooms.connect()
      const cases: [Record<string, unknown>, RegExp][] = [
        [{ name: '' }, /^name must not be empty/],
        [{ name: tooLong }, /^name must be at most 256/],
        [{ name: 'x', events: [] }, /^events must name at least one event/],
        [{ name: 'x', events: ['ok', ''] }, /^events\[1\] must not be empty/],
        [{ name: 'x', events: [tooLong] }, /^events\[0\] must be at most 256/],
      ]
      for (const [variables, message] of cases) {
        const subscription = subscribeWs(a.client, ROOM, variables)
        await subscription.completed
        expect(subscription.received).toEqual([
          {
            errors: [
              expect.objectContaining({
                message: expect.stringMatching(message),
                extensions: expect.objectContaining({ code: 'BAD_USER_INPUT' }),
              }),
            ],
          },
        ])
      }
      const messages = subscribeWs(a.client, 'subscription { messages(events: []) { id } }')
      await messages.completed
      expect(messages.received[0]?.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } })
      expect(await rooms.execute(a, '{ connection { rooms } }')).toEqual({ connection: { rooms: [] } })
    })

    it('should refuse an empty list of rooms', async () => {
      expect(await errorOf(BROADCAST, { rooms: [], event: 'e' })).toEqual({
        message: 'rooms must name at least one room',
        code: 'BAD_USER_INPUT',
      })
      expect(await errorOf('mutation { addRoomMembersToRooms(sourceRoom: "a", rooms: []) { room } }')).toMatchObject({
        code: 'BAD_USER_INPUT',
      })
    })
  })

  describe('data', () => {
    it('should refuse data over the size limit, measured as JSON bytes', async () => {
      const justFits = 'x'.repeat(DEFAULT_MAX_DATA_BYTES - 2)
      expect(
        (await postGraphQL(gateway.url, BROADCAST, { rooms: ['x'], event: 'e', data: justFits })).errors,
      ).toBeUndefined()
      expect(await errorOf(BROADCAST, { rooms: ['x'], event: 'e', data: `${justFits}é` })).toEqual({
        message: `data must be at most ${DEFAULT_MAX_DATA_BYTES} bytes of JSON, got ${DEFAULT_MAX_DATA_BYTES + 2}`,
        code: 'BAD_USER_INPUT',
      })
      expect(await errorOf(BLAST, { event: 'e', data: { big: 'x'.repeat(DEFAULT_MAX_DATA_BYTES) } })).toMatchObject({
        code: 'BAD_USER_INPUT',
      })
    })

    it('should take the limit from the maxDataBytes option and refuse a bad one at startup', async () => {
      const small = await env.startGateway({ rooms: { maxDataBytes: 10 } })
      try {
        expect((await postGraphQL(small.url, BLAST, { event: 'e', data: 'x'.repeat(8) })).errors).toBeUndefined()
        expect((await postGraphQL(small.url, BLAST, { event: 'e', data: 'x'.repeat(9) })).errors?.[0]?.message).toBe(
          'data must be at most 10 bytes of JSON, got 11',
        )
      } finally {
        await small.close()
      }
      await expect(env.startGateway({ rooms: { maxDataBytes: 0 } })).rejects.toThrow(ConfigError)
      await expect(env.startGateway({ rooms: { maxDataBytes: 1.5 } })).rejects.toThrow(
        'rooms.maxDataBytes: expected a positive integer, got 1.5',
      )
    })
  })

  describe('connection ids', () => {
    it('should answer join and leave of an unknown connection with NOT_FOUND', async () => {
      for (const mutation of ['join', 'leave']) {
        expect(await errorOf(`mutation { ${mutation}(connectionId: "nope", room: "x") { room } }`)).toEqual({
          message: 'no connection with id "nope"',
          code: 'NOT_FOUND',
        })
      }
      expect(await postGraphQL(gateway.url, '{ rooms { name } }')).toEqual({ data: { rooms: [] } })
    })

    it('should answer join of a connection that has closed with NOT_FOUND', async () => {
      const a = await rooms.connect()
      await rooms.closeAll()
      expect(
        await errorOf('mutation ($id: ID!) { join(connectionId: $id, room: "x") { room } }', { id: a.id }),
      ).toMatchObject({ code: 'NOT_FOUND' })
    })

    it('should ignore omit of an unknown connection', async () => {
      const a = await rooms.connect()
      const subscription = await rooms.subscribe(a, ROOM, { name: 'x' })
      const result = await postGraphQL(gateway.url, BROADCAST, { rooms: ['x'], event: 'e', omit: 'nope' })
      expect(result).toEqual({ data: { broadcast: { messageId: expect.any(String), recipients: 1 } } })
      expect(await nextMessage(subscription)).toMatchObject({ event: 'e' })
    })
  })

  it('should keep delivering to the other connections after a connection sends bad input', async () => {
    const [a, b] = [await rooms.connect(), await rooms.connect()]
    const room = await rooms.subscribe(b, ROOM, { name: 'x' })
    const bad = subscribeWs(a.client, ROOM, { name: '' })
    await bad.completed
    const refused = await postGraphQL(gateway.url, BROADCAST, {
      rooms: ['x'],
      event: 'e',
      data: 'x'.repeat(DEFAULT_MAX_DATA_BYTES),
    })
    expect(refused.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT')
    expect(await rooms.execute(a, BROADCAST, { rooms: ['x'], event: 'fine' })).toMatchObject({
      broadcast: { recipients: 1 },
    })
    expect(await nextMessage(room)).toMatchObject({ event: 'fine', sender: a.id })
  })
})
