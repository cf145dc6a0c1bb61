/** The services the tests may use, where to find them, and what the preflight found. */
export type Service = 'postgresql' | 'redis'

export interface ServiceStatus {
  /** Where it was looked for (`off`: skipped on purpose). */
  readonly url: string
  readonly available: boolean
  /** Why it is missing. */
  readonly reason?: string
}

export const serviceVariables: Record<Service, string> = { postgresql: 'TEST_POSTGRES_URL', redis: 'TEST_REDIS_URL' }
export const serviceLabels: Record<Service, string> = { postgresql: 'PostgreSQL', redis: 'Redis' }
export const defaultServiceUrls: Record<Service, string> = {
  postgresql: 'postgres://postgres@127.0.0.1:5432/test',
  redis: 'redis://127.0.0.1:6379',
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: Record<Service, ServiceStatus>
  }
}
