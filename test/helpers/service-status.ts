/** The services the tests may use, where to find them, and what the preflight found. */
export type Service = 'postgresql' | 'redis' | 'redis-server'

export interface ServiceStatus {
  /** Where it was looked for: a URL, or a command (`off`: skipped on purpose). */
  readonly url: string
  readonly available: boolean
  /** Why it is missing. */
  readonly reason?: string
}

export interface ServiceInfo {
  readonly label: string
  /** The variable that says where it is; none for a command looked up on PATH. */
  readonly variable?: string
  readonly default: string
}

export const serviceInfo: Record<Service, ServiceInfo> = {
  postgresql: {
    label: 'PostgreSQL',
    variable: 'TEST_POSTGRES_URL',
    default: 'postgres://postgres@127.0.0.1:5432/test',
  },
  redis: { label: 'Redis', variable: 'TEST_REDIS_URL', default: 'redis://127.0.0.1:6379' },
  // The fault tests start, kill and pause Redis servers of their own (test/helpers/redis-server.ts).
  'redis-server': { label: 'The redis-server command (fault tests run their own servers)', default: 'redis-server' },
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: Record<Service, ServiceStatus>
  }
}
