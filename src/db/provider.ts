import { ConfigError } from '../errors.ts'

/** The databases mizzen runs on: an embedded SQLite file, or PostgreSQL for scale-out. */
export type DatabaseProvider = 'sqlite' | 'postgresql'

/** The provider a `DATABASE_URL` names; anything else stops startup with a message naming it. */
export function databaseProvider(url: string): DatabaseProvider {
  if (url.startsWith('file:')) return 'sqlite'
  if (/^postgres(ql)?:\/\//.test(url)) return 'postgresql'
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]
  throw new ConfigError(
    'DATABASE_URL',
    `unsupported database ${scheme ? `"${scheme}"` : `"${url}"`}: use file:<path> (SQLite) or postgres://… (PostgreSQL)`,
  )
}
