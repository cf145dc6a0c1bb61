/**
 * PostgreSQL log sequence numbers (LSN): byte positions in the write-ahead log, 64 bits, written
 * `X/Y` (two hexadecimal halves). Kept as bigint here.
 */

export type Lsn = bigint

export function parseLsn(text: string): Lsn {
  const match = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text)
  if (!match) throw new Error(`not a log position: ${JSON.stringify(text)}`)
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`)
}

export function formatLsn(lsn: Lsn): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`
}

/**
 * Where a captured event stands in the log: its transaction's commit position and its index among
 * that transaction's events. Written with the event (`ModelEvent.logPosition`) as fixed-width hex,
 * so that positions compare as strings too.
 */
export interface LogPosition {
  readonly commit: Lsn
  readonly index: number
}

export const formatPosition = ({ commit, index }: LogPosition): string =>
  `${commit.toString(16).padStart(16, '0')}:${index.toString(16).padStart(8, '0')}`

export function parsePosition(text: unknown): LogPosition | undefined {
  if (typeof text !== 'string') return undefined
  const match = /^([0-9a-f]{16}):([0-9a-f]{8})$/.exec(text)
  if (!match) return undefined
  return { commit: BigInt(`0x${match[1]}`), index: Number.parseInt(match[2]!, 16) }
}

/** Negative, zero or positive as `a` comes before, at or after `b`. */
export function comparePositions(a: LogPosition, b: LogPosition): number {
  if (a.commit !== b.commit) return a.commit < b.commit ? -1 : 1
  return a.index - b.index
}
