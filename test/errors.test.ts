/**
 * The error module: failures of every layer mapped to client errors (codes, messages,
 * extensions) and the one set of close codes. End-to-end paths (HTTP, WebSocket) are covered
 * by the feature tests; this pins the mapping itself, with the real error classes.
 */
import { PrismaClientKnownRequestError, PrismaClientValidationError } from '@prisma/client/runtime/client'
import { GraphQLError } from 'graphql'
import { CloseCode as GraphQLWsCloseCode } from 'graphql-ws'
import { describe, expect, it } from 'vitest'
import { BusClosedError, HistoryUnavailableError, ResyncRequiredError } from '../src/bus/bus.ts'
import {
  CloseCode,
  clientErrorsJson,
  ErrorCode,
  historyClientError,
  maskInfrastructureErrors,
  rateLimited,
  redisFailed,
  resyncRequired,
  roomClientError,
  ServiceUnavailableError,
  toUnavailable,
  writeClientError,
} from '../src/errors.ts'
import { RoomCommandTimeoutError } from '../src/rooms/redis-commands.ts'
import { RegistryClosedError, UnknownConnectionError } from '../src/rooms/registry.ts'

const clientVersion = '7.10.0'
const known = (code: string, meta?: Record<string, unknown>) =>
  new PrismaClientKnownRequestError(`prisma failed with ${code}`, { code, clientVersion, meta })
const json = (error: unknown) => (error as GraphQLError).toJSON()

describe('close codes', () => {
  it("should be graphql-ws's, every member with its value, plus mizzen's own from the WebSocket standard", () => {
    for (const [name, value] of Object.entries(GraphQLWsCloseCode))
      expect(CloseCode[name as keyof typeof CloseCode], name).toBe(value)
    expect(CloseCode.GoingAway).toBe(1001)
    expect(CloseCode.PolicyViolation).toBe(1008)
    expect(CloseCode.Forbidden).toBe(4403)
    expect(Object.isFrozen(CloseCode)).toBe(true)
  })
})

describe('infrastructure failures', () => {
  it('should answer UNAVAILABLE, retryable, naming the service, for a ServiceUnavailableError and what wraps one', () => {
    const error = new ServiceUnavailableError('redis', 'Redis did not answer within 200 ms')
    expect(json(toUnavailable(error))).toEqual({
      message: 'Redis did not answer within 200 ms',
      extensions: { code: ErrorCode.Unavailable, service: 'redis', retryable: true },
    })
    const wrapped = new Error('joining failed', { cause: error })
    expect(json(toUnavailable(wrapped)).extensions).toMatchObject({ service: 'redis' })
    expect(toUnavailable(redisFailed(new Error('connect ECONNREFUSED')))?.message).toBe(
      'Redis is unavailable: connect ECONNREFUSED',
    )
  })

  it('should name another gateway instance for a rooms command it did not answer in time', () => {
    const error = new RoomCommandTimeoutError('b1', 'join', 200)
    expect(json(toUnavailable(error))).toEqual({
      message: 'gateway instance b1 did not answer the rooms command "join" within 200 ms',
      extensions: { code: ErrorCode.Unavailable, service: 'gateway', retryable: true },
    })
  })

  it("should turn Prisma's connection codes into a short reason naming the database", () => {
    expect(toUnavailable(known('P1001'))?.message).toBe('the database server cannot be reached')
    expect(json(toUnavailable(known('P2021')))).toEqual({
      message: 'the database is unavailable: a table does not exist: the database lacks the migrated schema',
      extensions: { code: ErrorCode.Unavailable, service: 'database', retryable: true },
    })
  })

  it('should leave every other error alone', () => {
    expect(toUnavailable(new Error('a bug'))).toBeUndefined()
    expect(toUnavailable(known('P2002'))).toBeUndefined()
    expect(toUnavailable('not even an error')).toBeUndefined()
  })

  it("should keep a field error's path, and hand anything else to Yoga's masking", () => {
    const fallback = () => new GraphQLError('Unexpected error.')
    const mask = maskInfrastructureErrors(fallback)
    const fieldError = new GraphQLError('reading the author failed', {
      path: ['postEvents', 'node', 'author'],
      originalError: new ServiceUnavailableError('database', 'the database did not answer in time'),
    })
    expect(json(mask(fieldError, 'Unexpected error.'))).toEqual({
      message: 'the database did not answer in time',
      path: ['postEvents', 'node', 'author'],
      extensions: { code: ErrorCode.Unavailable, service: 'database', retryable: true },
    })
    expect(mask(new Error('a bug'), 'Unexpected error.').message).toBe('Unexpected error.')
  })
})

describe('model write failures', () => {
  it('should answer CONFLICT naming the fields of a violated unique constraint', () => {
    expect(json(writeClientError(known('P2002', { target: ['email'] }), 'User', 'create'))).toEqual({
      message: 'a User with this email already exists',
      extensions: { code: ErrorCode.Conflict, fields: ['email'] },
    })
  })

  it('should tell a refused delete (CONFLICT) from a write pointing at a missing record (BAD_USER_INPUT)', () => {
    expect(json(writeClientError(known('P2003'), 'User', 'delete')).extensions?.code).toBe(ErrorCode.Conflict)
    expect(json(writeClientError(known('P2003'), 'Post', 'create'))).toEqual({
      message: 'Post: a related record does not exist',
      extensions: { code: ErrorCode.BadUserInput },
    })
  })

  it('should answer NOT_FOUND naming the record the write named', () => {
    expect(json(writeClientError(known('P2025'), 'Post', 'update', 7))).toEqual({
      message: 'Post 7 not found',
      extensions: { code: ErrorCode.NotFound, id: '7' },
    })
    expect(json(writeClientError(known('P2025'), 'Post')).message).toBe('Post: the record to change does not exist')
  })

  it("should answer BAD_USER_INPUT with the last line of Prisma's validation message", () => {
    const error = new PrismaClientValidationError('Invalid `create()` invocation:\n\nArgument `title` is missing.', {
      clientVersion,
    })
    expect(json(writeClientError(error, 'Post', 'create'))).toEqual({
      message: 'Post: Argument `title` is missing.',
      extensions: { code: ErrorCode.BadUserInput },
    })
  })

  it('should return errors that are not the client’s unchanged, for masking', () => {
    const bug = new Error('a bug')
    expect(writeClientError(bug, 'Post')).toBe(bug)
    const down = known('P1001')
    expect(writeClientError(down, 'Post')).toBe(down)
  })
})

describe('rooms registry and history failures', () => {
  it('should answer NOT_FOUND for a connection no instance holds', () => {
    expect(json(roomClientError(new UnknownConnectionError('c1')))).toEqual({
      message: 'no connection with id "c1"',
      extensions: { code: ErrorCode.NotFound, connectionId: 'c1' },
    })
  })

  it('should answer the same UNAVAILABLE for a closed registry and a closed bus: the gateway is shutting down', () => {
    const expected = {
      message: 'this gateway is shutting down; retry on another',
      extensions: { code: ErrorCode.Unavailable, service: 'gateway', retryable: true },
    }
    expect(json(roomClientError(new RegistryClosedError()))).toEqual(expected)
    expect(json(roomClientError(new BusClosedError()))).toEqual(expected)
    const bug = new Error('a bug')
    expect(roomClientError(bug)).toBe(bug)
  })

  it('should answer RESYNC_REQUIRED with its reason and what to do, and UNAVAILABLE (retryable) for an unreadable history', () => {
    expect(json(historyClientError(new ResyncRequiredError('trimmed', 'the history no longer reaches back')))).toEqual({
      message: 'the history no longer reaches back: reload with a query, then subscribe again without after',
      extensions: { code: ErrorCode.ResyncRequired, reason: 'trimmed' },
    })
    expect(json(historyClientError(new HistoryUnavailableError('Redis is unreachable')))).toEqual({
      message: 'Redis is unreachable',
      extensions: { code: ErrorCode.Unavailable, service: 'redis', retryable: true },
    })
  })

  it('should write client errors as the JSON of an error message', () => {
    expect(JSON.parse(clientErrorsJson(resyncRequired('missed events'), rateLimited('too many')))).toEqual([
      {
        message: 'missed events: reload with a query, then subscribe again without after',
        extensions: { code: 'RESYNC_REQUIRED' },
      },
      { message: 'too many', extensions: { code: 'RATE_LIMITED' } },
    ])
  })
})
