/**
 * Positions in a topic's history, in the form Redis streams use: `<ms>-<seq>`, where `ms` is the
 * server's clock when the entry was added and `seq` orders entries added in the same millisecond.
 * The memory bus makes its ids the same way, so that age checks and comparisons are one code.
 */

export interface StreamId {
  /** Milliseconds since the epoch (the history's clock when the entry was added). */
  readonly ms: number
  /** Order among entries of the same millisecond. */
  readonly seq: number
}

const idPattern = /^(\d{1,15})-(\d{1,16})$/

/** Parses `<ms>-<seq>`; undefined when it is not one (or its parts are not safe integers). */
export function parseStreamId(text: string): StreamId | undefined {
  const match = idPattern.exec(text)
  if (!match) return undefined
  const ms = Number(match[1])
  const seq = Number(match[2])
  if (!Number.isSafeInteger(ms) || !Number.isSafeInteger(seq)) return undefined
  return { ms, seq }
}

export const formatStreamId = (id: StreamId): string => `${id.ms}-${id.seq}`

/** Negative, zero or positive as `a` is before, at or after `b`. */
export const compareStreamIds = (a: StreamId, b: StreamId): number => a.ms - b.ms || a.seq - b.seq

/** The greatest of two positions. */
export const laterStreamId = (a: StreamId, b: StreamId): StreamId => (compareStreamIds(a, b) >= 0 ? a : b)

/**
 * The last position before millisecond `ms`: every entry added at `ms` or later comes after it.
 * What a history that is empty "has seen" when it is read at `ms`.
 */
export const beforeMillisecond = (ms: number): StreamId => ({ ms: ms - 1, seq: Number.MAX_SAFE_INTEGER })
