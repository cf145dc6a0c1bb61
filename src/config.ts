/**
 * The gateway's configuration from the environment, validated at startup. A bad value stops
 * startup with a `ConfigError` that names the setting.
 */
import { z } from 'zod'
import { databaseProvider } from './db/provider.ts'
import { ConfigError } from './errors.ts'

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const

export interface Config {
  /** TCP port of HTTP and WebSocket. `PORT`. @default 4000 */
  readonly port: number
  /** Interface to listen on. `HOST`. @default "0.0.0.0" (all IPv4 interfaces) */
  readonly host: string
  /** `file:<path>` for SQLite or `postgres://…`. `DATABASE_URL`. @default "file:./data/mizzen.db" */
  readonly databaseUrl: string
  /** Redis for running several gateways as one; unset means the in-memory bus. `REDIS_URL`. */
  readonly redisUrl: string | undefined
  /** pino level. `LOG_LEVEL`. @default "info" */
  readonly logLevel: (typeof logLevels)[number]
  /** `NODE_ENV`: production masks unexpected errors and disables GraphiQL. @default "development" */
  readonly nodeEnv: 'development' | 'production' | 'test'
}

const env = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  HOST: z.string().min(1).default('0.0.0.0'),
  DATABASE_URL: z
    .string()
    .default('file:./data/mizzen.db')
    .superRefine((url, ctx) => {
      try {
        databaseProvider(url)
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as ConfigError).message.replace(/^DATABASE_URL: /, '') })
      }
    }),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected redis://… or rediss://…')
    .optional(),
  LOG_LEVEL: z.enum(logLevels).default('info'),
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
})

/** Reads and validates the configuration; throws a ConfigError naming the first bad setting. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "not set", as shells and .env files often leave them.
  const present = Object.fromEntries(Object.entries(source).filter(([, value]) => value !== ''))
  const parsed = env.safeParse(present)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!
    const setting = String(issue.path[0])
    throw new ConfigError(setting, `${issue.message}${setting in present ? ` (got "${present[setting]}")` : ''}`)
  }
  const e = parsed.data
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    logLevel: e.LOG_LEVEL,
    nodeEnv: e.NODE_ENV,
  }
}
