/**
 * What change capture needs of PostgreSQL, checked at startup, and what it creates there
 * (docs/capture.md): `wal_level = logical`, a role that may replicate, a publication over the
 * data model's tables (REPLICA IDENTITY FULL set on them when asked), and a permanent logical
 * replication slot using `pgoutput`. Names come from the deployment's name.
 */
import type pg from 'pg'
import type { CapturedTable } from './tables.ts'
import { quoteIdent } from './tables.ts'

/** The setting that turns capture on, named in every refusal. */
export const CAPTURE_SETTING = 'MIZZEN_CAPTURE'

/** Capture cannot run on this database: says what to change. */
export class CaptureRefusedError extends Error {
  override readonly name = 'CaptureRefusedError'
  readonly setting = CAPTURE_SETTING
}

/** The publication's and the slot's name for a deployment (`MIZZEN_REDIS_PREFIX`-like): lower-case letters, digits and `_`, at most 63 characters. */
export function captureName(deployment: string): string {
  const cleaned = deployment
    .toLowerCase()
    .replace(/[^a-z0-9_]+/g, '_')
    .replace(/^_+|_+$/g, '')
  return `${cleaned || 'mizzen'}_capture`.slice(0, 63)
}

/** Refuses (CaptureRefusedError) unless the server decodes logically and the role may replicate. */
export async function checkCaptureSupport(client: pg.Client): Promise<void> {
  const { rows } = await client.query<{ wal_level: string; role: string; may: boolean }>(
    `SELECT current_setting('wal_level') AS wal_level, current_user AS role,
            (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)
              OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rds_replication' AND pg_has_role(current_user, oid, 'member')) AS may`,
  )
  const { wal_level, role, may } = rows[0]!
  if (wal_level !== 'logical')
    throw new CaptureRefusedError(
      `capture mode database needs wal_level=logical, and this PostgreSQL has wal_level=${wal_level}: set wal_level=logical and restart it (docs/capture.md says how on each host), or set ${CAPTURE_SETTING}=extension`,
    )
  if (!may)
    throw new CaptureRefusedError(
      `capture mode database needs a role with REPLICATION, and role "${role}" lacks it: ALTER ROLE "${role}" REPLICATION (on RDS: GRANT rds_replication TO "${role}"), or set ${CAPTURE_SETTING}=extension`,
    )
}

export interface PublicationOptions {
  readonly name: string
  readonly tables: ReadonlyMap<string, CapturedTable>
  /** Set REPLICA IDENTITY FULL on the tables when creating or widening the publication. */
  readonly replicaIdentityFull: boolean
}

/**
 * Creates the publication over the tables (in the connection's current schema) when missing,
 * and sets its table list when the data model changed. Fails while a table does not exist yet
 * (the database is not migrated): the caller tries again.
 */
export async function ensurePublication(client: pg.Client, options: PublicationOptions): Promise<void> {
  const { rows: schemaRows } = await client.query<{ schema: string }>('SELECT current_schema() AS schema')
  const schema = schemaRows[0]!.schema
  const wanted = [...options.tables.keys()].sort()
  const { rows: existing } = await client.query<{ table: string }>(
    'SELECT tablename AS table FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2',
    [options.name, schema],
  )
  const { rows: publication } = await client.query('SELECT 1 FROM pg_publication WHERE pubname = $1', [options.name])
  const have = existing.map((row) => row.table).sort()
  if (publication.length && have.join('\u0000') === wanted.join('\u0000')) return
  const list = wanted.map((table) => `${quoteIdent(schema)}.${quoteIdent(table)}`).join(', ')
  if (options.replicaIdentityFull)
    for (const table of wanted)
      await client.query(`ALTER TABLE ${quoteIdent(schema)}.${quoteIdent(table)} REPLICA IDENTITY FULL`)
  try {
    if (publication.length) await client.query(`ALTER PUBLICATION ${quoteIdent(options.name)} SET TABLE ${list}`)
    else await client.query(`CREATE PUBLICATION ${quoteIdent(options.name)} FOR TABLE ${list}`)
  } catch (error) {
    // Another gateway created it at the same moment.
    if ((error as { code?: string }).code !== '42710') throw error
  }
}

export interface SlotState {
  readonly exists: boolean
  /** `reserved`, `extended`, `unreserved` or `lost` (PostgreSQL 13+): lost means invalidated. */
  readonly walStatus: string | undefined
  readonly active: boolean
  /** WAL written since the position the slot confirmed, in bytes. */
  readonly lagBytes: number | undefined
}

export async function slotState(client: pg.Client, slot: string): Promise<SlotState> {
  const { rows } = await client.query<{ wal_status: string | null; active: boolean; lag: string | null }>(
    `SELECT to_jsonb(s)->>'wal_status' AS wal_status, active,
            pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag
       FROM pg_replication_slots s WHERE slot_name = $1`,
    [slot],
  )
  const row = rows[0]
  if (!row) return { exists: false, walStatus: undefined, active: false, lagBytes: undefined }
  return {
    exists: true,
    walStatus: row.wal_status ?? undefined,
    active: row.active,
    lagBytes: row.lag === null ? undefined : Number(row.lag),
  }
}

/** Creates the permanent slot when missing (`pgoutput`); true when it was created now. */
export async function ensureSlot(client: pg.Client, slot: string): Promise<boolean> {
  const { rows } = await client.query('SELECT 1 FROM pg_replication_slots WHERE slot_name = $1', [slot])
  if (rows.length) return false
  try {
    await client.query(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [slot])
    return true
  } catch (error) {
    if ((error as { code?: string }).code === '42710') return false
    throw error
  }
}

/** Drops a slot PostgreSQL invalidated, so that a new one can start from now. */
export async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query('SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1', [
    slot,
  ])
}
