/**
 * The Prisma Client for DATABASE_URL: the one generated from prisma/sqlite for a `file:` URL, the
 * one from prisma/postgresql for a `postgres://` URL. Both schemas have the same models, so both
 * clients have the same API, and the data model is the same.
 */
import { PrismaBetterSqlite3 } from '@prisma/adapter-better-sqlite3'
import { PrismaPg } from '@prisma/adapter-pg'
import { PrismaClient as PostgresClient } from '../generated/postgresql/prisma/client.js'
import { PrismaClient } from '../generated/sqlite/prisma/client.js'

export { dataModel } from '../generated/sqlite/mizzen/index.js'
export type { PrismaClient }

export const databaseUrl = process.env.DATABASE_URL ?? 'file:./data/chat.db'

export function openPrisma(url = databaseUrl): PrismaClient {
  if (url.startsWith('file:')) return new PrismaClient({ adapter: new PrismaBetterSqlite3({ url }) })
  return new PostgresClient({ adapter: new PrismaPg({ connectionString: url }) }) as unknown as PrismaClient
}
