/** How much history each topic keeps, for both buses. */
import { ConfigError, positiveSetting } from '../errors.ts'

export interface HistoryOptions {
  /**
   * Entries kept per history (one model, one room): older ones are dropped, and a cursor from
   * before them answers RESYNC_REQUIRED. With Redis, trimming is approximate (`MAXLEN ~`): a
   * stream may keep up to about 100 entries more. A positive integer.
   * @default 1000
   */
  maxEvents?: number
  /**
   * Seconds an entry is kept, and a quiet history lives. A positive integer.
   * @default 300 (5 minutes)
   */
  maxAgeSeconds?: number
  /**
   * Seconds a history remembers where it ended after its entries aged out, so that a cursor of a
   * quiet topic (nothing came since) still resumes instead of answering RESYNC_REQUIRED. Costs
   * one small key per history. At least `maxAgeSeconds`.
   * @default 86400 (one day)
   */
  metaTtlSeconds?: number
}

export interface ResolvedHistoryOptions {
  readonly maxEvents: number
  readonly maxAgeMs: number
  readonly metaTtlMs: number
}

export const defaultHistory = { maxEvents: 1000, maxAgeSeconds: 300, metaTtlSeconds: 86_400 } as const

export function resolveHistoryOptions(options: HistoryOptions = {}): ResolvedHistoryOptions {
  const maxEvents = positiveSetting('history.maxEvents', options.maxEvents ?? defaultHistory.maxEvents)
  const maxAgeSeconds = positiveSetting('history.maxAgeSeconds', options.maxAgeSeconds ?? defaultHistory.maxAgeSeconds)
  const metaTtlSeconds = positiveSetting(
    'history.metaTtlSeconds',
    options.metaTtlSeconds ?? Math.max(defaultHistory.metaTtlSeconds, maxAgeSeconds),
  )
  if (metaTtlSeconds < maxAgeSeconds)
    throw new ConfigError(
      'history.metaTtlSeconds',
      `must be at least history.maxAgeSeconds (${maxAgeSeconds}), got ${metaTtlSeconds}`,
    )
  return { maxEvents, maxAgeMs: maxAgeSeconds * 1000, metaTtlMs: metaTtlSeconds * 1000 }
}
