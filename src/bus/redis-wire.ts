/**
 * What the Redis bus says to Redis and reads back: its scripts as commands, the channel message
 * the publish script sends, and the read script's reply (a page of a topic's log, or why not).
 */
import type { Cluster, Redis } from 'ioredis'
import type { LogEntry } from './redis-topic.ts'
import { formatStreamId, parseStreamId, type StreamId } from './stream-id.ts'

/** The scripts of `redis-scripts.ts`, defined as commands on the publisher connection. */
export type ScriptCommands = {
  mizzenPublish(...args: (string | number)[]): Promise<number>
  mizzenRead(...args: (string | number)[]): Promise<string[]>
  mizzenTail(...args: (string | number)[]): Promise<string>
}

/** The publisher connection (one Redis, or a Redis Cluster client), with the scripts defined on it. */
export type ScriptConnection = (Redis | Cluster) & ScriptCommands

/** Whether a Redis command failed by going unanswered for `commandTimeout` (ioredis's message). */
export const isTimeout = (error: unknown) => error instanceof Error && error.message === 'Command timed out'

/** Parses `<id> <origin> <seq>\n<payload>`, the channel message the publish script sends. */
export function parseWire(text: string): LogEntry | undefined {
  const newline = text.indexOf('\n')
  if (newline < 0) return undefined
  const [idText, origin, seqText] = text.slice(0, newline).split(' ')
  const id = idText ? parseStreamId(idText) : undefined
  const seq = Number(seqText)
  if (!id || !origin || !Number.isSafeInteger(seq)) return undefined
  return { id, origin, seq, text: text.slice(newline + 1) }
}

/** Entries from the read script's flat reply (id, origin, seq, payload, …). */
export function parseEntries(reply: readonly string[]): LogEntry[] {
  const entries: LogEntry[] = []
  for (let i = 1; i + 3 < reply.length; i += 4) {
    const id = parseStreamId(reply[i]!)
    if (!id) throw new Error(`unexpected stream id from Redis: ${reply[i]}`)
    entries.push({ id, origin: reply[i + 1]!, seq: Number(reply[i + 2]), text: reply[i + 3]! })
  }
  return entries
}

/**
 * The keys and channel of a topic (see `redis-scripts.ts`): all under its `{topic}` hash tag, so
 * that on Redis Cluster they share one slot.
 */
export const topicKeys = (prefix: string, topic: string) => ({
  log: `${prefix}{${topic}}log`,
  history: (key: string) => `${prefix}{${topic}}hist:${key}`,
  channel: `${prefix}{${topic}}`,
})

/** The topic a channel of `topicKeys` belongs to, or undefined for another channel. */
export function channelTopic(prefix: string, channel: string): string | undefined {
  if (!channel.startsWith(`${prefix}{`) || !channel.endsWith('}')) return undefined
  return channel.slice(prefix.length + 1, -1)
}

/** Where the read script reads: the connection and the history meta TTL. */
export interface LogSource {
  readonly commands: ScriptCommands
  readonly metaTtlMs: number
}

/** A page of a log, or where it no longer reaches back to (a gap), or a position ahead of it. */
export type LogPage = { entries: LogEntry[] } | { gap: StreamId | undefined } | 'future'

/** Reads up to `count` entries of the stream `key` after `after`, up to `upTo` (`+`: its end). */
export async function readLog(
  source: LogSource,
  key: string,
  after: StreamId,
  upTo: string,
  count: number,
  seen: ReadonlyMap<string, number> = new Map(),
): Promise<LogPage> {
  const reply = await source.commands.mizzenRead(
    key,
    formatStreamId(after),
    upTo,
    count,
    source.metaTtlMs,
    ...[...seen].flat(),
  )
  if (reply[0] === 'future') return 'future'
  if (reply[0] === 'gap') return { gap: reply[1] ? parseStreamId(reply[1]) : undefined }
  return { entries: parseEntries(reply) }
}
