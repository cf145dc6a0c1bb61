/** What the gateway depends on, as `extensions.service` of an UNAVAILABLE error names it. */
export type Service = 'redis' | 'database' | 'gateway'

/**
 * A service the gateway depends on failed or did not answer in time. Thrown by the layers that
 * talk to it (the Redis rooms registry, readiness checks); clients see it as UNAVAILABLE.
 */
export class ServiceUnavailableError extends Error {
  override readonly name: string = 'ServiceUnavailableError'
  constructor(
    readonly service: Service,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

/** Redis failed with `error` (a driver or connection error): unavailable, with the driver's reason. */
export const redisFailed = (error: unknown) =>
  new ServiceUnavailableError(
    'redis',
    `Redis is unavailable: ${error instanceof Error ? error.message : String(error)}`,
    {
      cause: error,
    },
  )
