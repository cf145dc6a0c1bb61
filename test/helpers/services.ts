/**
 * The services this run may use, as the preflight (./preflight.ts) found them. A suite that
 * needs one is declared with `describe.skipIf(missing('redis'))` (or `eachDatabase`), so that a
 * missing service skips it, reported as skipped, instead of failing every test after a timeout.
 */
import { describe, inject } from 'vitest'
import type { Service } from './service-status.ts'

export type { Service } from './service-status.ts'

const services = inject('services')

/** True when any of `needed` is missing from this run. */
export const missing = (...needed: Service[]): boolean => needed.some((service) => !services[service].available)

/** Redis for this run (`TEST_REDIS_URL`, default redis://127.0.0.1:6379). */
export const redisUrl = services.redis.url
/** The PostgreSQL server for this run (`TEST_POSTGRES_URL`); each test file creates its own database on it. */
export const postgresUrl = services.postgresql.url

/** An item of `describeEach`: what its block needs of this run's services. */
export interface Needing {
  readonly needs?: readonly Service[]
}

/**
 * `describe.each(items)(name, body)` for items that may need a service: a block whose service is
 * missing from this run is reported as skipped. `$key` in `name` is replaced by `item[key]`.
 */
export function describeEach<T extends Needing>(items: readonly T[], name: string, body: (item: T) => void): void {
  for (const item of items) {
    const title = name.replace(/\$(\w+)/g, (_, key: string) => String((item as Record<string, unknown>)[key]))
    describe.skipIf(missing(...(item.needs ?? [])))(title, () => body(item))
  }
}
