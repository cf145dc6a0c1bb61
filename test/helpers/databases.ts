/**
 * The databases every database-facing test runs on: a fresh SQLite file, and a fresh
 * PostgreSQL database on the run's server (`TEST_POSTGRES_URL`, default
 * postgres://postgres@127.0.0.1:5432/test), created per test file and dropped after it.
 * Tests get theirs from the fixture (./fixture.ts).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import type { DatabaseProvider } from '../../src/db/provider.ts'
import { postgresUrl } from './services.ts'

export const adminPostgresUrl = postgresUrl

export interface TestDatabase {
  readonly url: string
  drop(): Promise<void>
}

async function createPostgresDatabase(): Promise<TestDatabase> {
  const name = `mizzen_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: adminPostgresUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const url = new URL(adminPostgresUrl)
  url.pathname = `/${name}`
  return {
    url: url.toString(),
    drop: async () => {
      const client = new pg.Client({ connectionString: adminPostgresUrl })
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await client.end()
    },
  }
}

async function createSqliteDatabase(): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'mizzen-test-'))
  return { url: `file:${join(dir, 'test.db')}`, drop: async () => rmSync(dir, { recursive: true, force: true }) }
}

export const databaseKinds: { provider: DatabaseProvider; create: () => Promise<TestDatabase> }[] = [
  { provider: 'sqlite', create: createSqliteDatabase },
  { provider: 'postgresql', create: createPostgresDatabase },
]
