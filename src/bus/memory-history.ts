/**
 * The memory bus's histories: one bounded list of entries per history (a model, a room),
 * trimmed by count and age, with the same rules a Redis stream follows (see `redis-scripts.ts`):
 * what was dropped is remembered as `lost` (a cursor before it must resynchronise), and a quiet
 * history keeps only where it ended (`last`) until `metaTtlMs` has passed.
 */
import { ResyncRequiredError } from './bus.ts'
import type { ResolvedHistoryOptions } from './history-options.ts'
import type { HistoryEntry } from './resumption.ts'
import { compareStreamIds, type StreamId } from './stream-id.ts'

interface Stream {
  /** Entries from `head` on; the ones before `head` are dropped, awaiting compaction. */
  readonly entries: HistoryEntry[]
  head: number
  /** The last entry ever added. */
  last: StreamId
  /** The last entry dropped (trimmed or aged out), if any. */
  lost: StreamId | undefined
}

export class MemoryHistory {
  readonly #streams = new Map<string, Stream>()
  readonly #options: ResolvedHistoryOptions

  constructor(options: ResolvedHistoryOptions) {
    this.#options = options
  }

  append(name: string, entry: HistoryEntry): void {
    let stream = this.#streams.get(name)
    if (!stream) this.#streams.set(name, (stream = { entries: [], head: 0, last: entry.id, lost: undefined }))
    stream.entries.push(entry)
    stream.last = entry.id
    while (stream.entries.length - stream.head > this.#options.maxEvents) this.#drop(stream)
    this.#ageOut(stream, entry.id.ms)
  }

  /** Entries of `name` after `after`, up to `upTo`, at most `count`; throws ResyncRequiredError when some were dropped. */
  read(name: string, after: StreamId, upTo: StreamId, count: number, now: number): HistoryEntry[] {
    const stream = this.#streams.get(name)
    if (!stream) {
      // Never written, or quiet for longer than metaTtl: fine unless the cursor is that old.
      if (after.ms < now - this.#options.metaTtlMs) throw trimmed()
      return []
    }
    this.#ageOut(stream, now)
    if (stream.lost && compareStreamIds(stream.lost, after) > 0) throw trimmed()
    const page: HistoryEntry[] = []
    for (let i = this.#firstAfter(stream, after); i < stream.entries.length && page.length < count; i++) {
      const entry = stream.entries[i]!
      if (compareStreamIds(entry.id, upTo) > 0) break
      page.push(entry)
    }
    return page
  }

  /** Drops aged entries, and forgets histories quiet for longer than metaTtl. */
  sweep(now: number): void {
    for (const [name, stream] of this.#streams) {
      this.#ageOut(stream, now)
      if (stream.entries.length === stream.head && stream.last.ms < now - this.#options.metaTtlMs)
        this.#streams.delete(name)
    }
  }

  /** Histories held (with entries or only their end), for diagnostics. */
  get size(): number {
    return this.#streams.size
  }

  #ageOut(stream: Stream, now: number): void {
    const oldest = now - this.#options.maxAgeMs
    while (stream.head < stream.entries.length && stream.entries[stream.head]!.id.ms < oldest) this.#drop(stream)
  }

  #drop(stream: Stream): void {
    stream.lost = stream.entries[stream.head]!.id
    stream.entries[stream.head] = undefined as unknown as HistoryEntry
    stream.head++
    if (stream.head >= 1024 && stream.head * 2 >= stream.entries.length) {
      stream.entries.splice(0, stream.head)
      stream.head = 0
    }
  }

  /** Index of the first entry after `after` (binary search: ids increase). */
  #firstAfter(stream: Stream, after: StreamId): number {
    let low = stream.head
    let high = stream.entries.length
    while (low < high) {
      const middle = (low + high) >>> 1
      if (compareStreamIds(stream.entries[middle]!.id, after) <= 0) low = middle + 1
      else high = middle
    }
    return low
  }
}

const trimmed = () => new ResyncRequiredError('trimmed', 'the history no longer reaches back to this cursor')
