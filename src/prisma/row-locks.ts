/**
 * Locks the rows a write is about to change, so that the `previous` state read before it is the
 * state it really changes. Under PostgreSQL's READ COMMITTED a plain read takes no lock: a
 * concurrent transaction could commit a change between our read and our write, and the event
 * would carry a stale `previous`. `SELECT … FOR UPDATE` makes that writer go first, or wait.
 * SQLite needs none: a transaction that read a stale snapshot cannot write at all (SQLITE_BUSY).
 */
import type { Model } from '../models/data-model.ts'
import { activeProvider } from './client.ts'

type RawClient = { $queryRawUnsafe: (sql: string, ...values: unknown[]) => Promise<unknown> }

const quote = (identifier: string) => `"${identifier.replaceAll('"', '""')}"`

export type RowLocker = (tx: unknown, model: Model, ids: readonly unknown[]) => Promise<void>

/** The row locker for a Prisma client's database, or undefined where none is needed. */
export function rowLockerFor(client: unknown): RowLocker | undefined {
  // Without the provider (Prisma exposes it only internally), writes go unlocked.
  const provider = activeProvider(client)
  if (provider !== 'postgresql' && provider !== 'cockroachdb') return undefined
  return async (tx, model, ids) => {
    if (ids.length === 0) return
    const sql = `SELECT 1 FROM ${quote(model.dbName ?? model.name)} WHERE ${quote(model.id.dbName ?? model.id.name)} = ANY($1) FOR UPDATE`
    await (tx as RawClient).$queryRawUnsafe(sql, ids)
  }
}
