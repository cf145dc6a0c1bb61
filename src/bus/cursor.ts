/**
 * Cursors: where a client is in one topic's history (one model, one room), as an opaque string.
 *
 * A cursor says "the client has seen every entry of this history up to `position`, and every
 * event that process `origin` published with a sequence number up to `seq`" for each pair in
 * `seen`. The second part is what local-first delivery needs: a gateway delivers its own events
 * before Redis gives them a position, so a client may have seen events that come after
 * `position` in the history (they are skipped on resume) and the history may hold, before
 * `position`, nothing it has not seen.
 *
 * A cursor names its history by a hash (`history`) and its deployment and history epoch by a
 * `tag` (the bus prefix and the id of the data Redis holds, or the memory bus's instance), so that a
 * cursor of another topic, another deployment or a history that was lost is refused
 * (RESYNC_REQUIRED), never misread.
 */
import { createHash } from 'node:crypto'
import { formatStreamId, parseStreamId, type StreamId } from './stream-id.ts'

export const CURSOR_VERSION = '1'

export interface Cursor {
  /** The deployment and history epoch the cursor belongs to. */
  readonly tag: string
  /** `historyHash` of the history (topic and key) it is a position in. */
  readonly history: string
  readonly position: StreamId
  /** Process origin → highest sequence number of its events the client has seen. */
  readonly seen: ReadonlyMap<string, number>
}

/** A short stable hash: 8 bytes of SHA-256, base64url (11 characters). */
export const shortHash = (text: string): string =>
  createHash('sha256').update(text).digest().subarray(0, 8).toString('base64url')

const hashes = new Map<string, string>()

/** The hash that names a history in cursors; cached, since every delivery formats one. */
export function historyHash(topic: string, key: string): string {
  const name = `${topic}\u0000${key}`
  let hash = hashes.get(name)
  if (hash === undefined) {
    // A bounded cache: rooms come and go; recomputing a hash is cheap.
    if (hashes.size >= 10_000) hashes.clear()
    hashes.set(name, (hash = shortHash(name)))
  }
  return hash
}

const tokenPattern = /^[A-Za-z0-9_-]{1,64}$/
const seenPattern = /^([A-Za-z0-9_-]{1,64}):(\d{1,16})$/

export function formatCursor(cursor: Cursor): string {
  const parts = [CURSOR_VERSION, cursor.tag, cursor.history, formatStreamId(cursor.position)]
  if (cursor.seen.size) parts.push([...cursor.seen].map(([origin, seq]) => `${origin}:${seq}`).join(','))
  return Buffer.from(parts.join('.')).toString('base64url')
}

/** Reads a cursor; undefined when it is not one this version wrote (malformed, truncated, forged). */
export function parseCursor(text: string): Cursor | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 2048 || !/^[A-Za-z0-9_-]+$/.test(text))
    return undefined
  const parts = Buffer.from(text, 'base64url').toString('utf8').split('.')
  if (parts.length < 4 || parts.length > 5 || parts[0] !== CURSOR_VERSION) return undefined
  const [, tag, history, positionText, seenText] = parts as [string, string, string, string, string | undefined]
  if (!tokenPattern.test(tag) || !tokenPattern.test(history)) return undefined
  const position = parseStreamId(positionText)
  if (!position) return undefined
  const seen = new Map<string, number>()
  if (seenText !== undefined) {
    for (const pair of seenText.split(',')) {
      const match = seenPattern.exec(pair)
      if (!match) return undefined
      const seq = Number(match[2])
      if (!Number.isSafeInteger(seq) || seen.has(match[1]!)) return undefined
      seen.set(match[1]!, seq)
    }
  }
  return { tag, history, position, seen }
}
