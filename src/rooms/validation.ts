/**
 * Checks on what clients send to rooms: names, event filters, message data. Each failure is a
 * BAD_USER_INPUT error naming the argument, so a client can tell what to fix.
 */
import { badInput } from '../errors.ts'
import type { EventFilter } from './selectors.ts'

/** Longest room or event name, in characters. */
export const MAX_NAME_LENGTH = 256

/** Default largest `data` of a message, in bytes of its JSON text (64 KiB). */
export const DEFAULT_MAX_DATA_BYTES = 64 * 1024

/** A room or event name: 1 to MAX_NAME_LENGTH characters. */
export function checkName(name: string, argument: string): string {
  if (name.length === 0) throw badInput(`${argument} must not be empty`, { argument })
  if (name.length > MAX_NAME_LENGTH) {
    throw badInput(`${argument} must be at most ${MAX_NAME_LENGTH} characters, got ${name.length}`, {
      argument,
      limit: MAX_NAME_LENGTH,
    })
  }
  return name
}

/** A non-empty list of room names, each checked, duplicates dropped. */
export function checkRooms(rooms: readonly string[], argument: string): string[] {
  if (rooms.length === 0) throw badInput(`${argument} must name at least one room`, { argument })
  return [...new Set(rooms.map((room, i) => checkName(room, `${argument}[${i}]`)))]
}

/** A subscription's `events` argument: null or absent means every event; an empty list is refused (it would match nothing). */
export function checkEvents(events: readonly string[] | null | undefined): EventFilter {
  if (events == null) return null
  if (events.length === 0)
    throw badInput('events must name at least one event; leave it out to receive every event', { argument: 'events' })
  return new Set(events.map((event, i) => checkName(event, `events[${i}]`)))
}

/** Message data, refused when its JSON is over `maxBytes`; undefined becomes null. */
export function checkData(data: unknown, maxBytes: number): unknown {
  const size = Buffer.byteLength(JSON.stringify(data ?? null))
  if (size > maxBytes)
    throw badInput(`data must be at most ${maxBytes} bytes of JSON, got ${size}`, { argument: 'data', limit: maxBytes })
  return data ?? null
}
