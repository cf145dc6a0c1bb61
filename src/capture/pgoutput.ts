/**
 * Decoding what a logical replication stream carries: the walsender's CopyData frames (XLogData
 * `w`, primary keepalive `k`) and, inside XLogData, the messages of the `pgoutput` plugin at
 * protocol version 1 (PostgreSQL's "Logical Replication Message Formats"): Begin, Commit,
 * Origin, Relation, Type, Insert, Update, Delete, Truncate. Column values stay as PostgreSQL's
 * text output (`values.ts` turns them into the data model's types).
 */
import type { Lsn } from './lsn.ts'

/** A column of a tuple: null, an unchanged TOASTed value (not sent), or its text. */
export type ColumnValue = null | { readonly unchanged: true } | string

export const UNCHANGED = Object.freeze({ unchanged: true as const })

export interface RelationColumn {
  readonly name: string
  /** Part of the replica identity (the key). */
  readonly isKey: boolean
  readonly typeOid: number
}

export interface RelationMessage {
  readonly tag: 'relation'
  readonly id: number
  readonly schema: string
  readonly table: string
  /** `d` default, `n` nothing, `f` full, `i` index. */
  readonly replicaIdentity: string
  readonly columns: readonly RelationColumn[]
}

export type PgOutputMessage =
  | { readonly tag: 'begin'; readonly finalLsn: Lsn; readonly commitTime: Date; readonly xid: number }
  | { readonly tag: 'commit'; readonly commitLsn: Lsn; readonly endLsn: Lsn; readonly commitTime: Date }
  | RelationMessage
  | { readonly tag: 'insert'; readonly relation: number; readonly row: readonly ColumnValue[] }
  | {
      readonly tag: 'update'
      readonly relation: number
      /** The old row: all columns (`O`, REPLICA IDENTITY FULL) or the key's (`K`, when the key changed); absent otherwise. */
      readonly old?: { readonly kind: 'key' | 'full'; readonly row: readonly ColumnValue[] }
      readonly row: readonly ColumnValue[]
    }
  | {
      readonly tag: 'delete'
      readonly relation: number
      readonly old: { readonly kind: 'key' | 'full'; readonly row: readonly ColumnValue[] }
    }
  | { readonly tag: 'truncate'; readonly relations: readonly number[] }
  /** Origin, Type, logical decoding messages: nothing mizzen uses. */
  | { readonly tag: 'other'; readonly code: string }

/** Microseconds from the Unix epoch to PostgreSQL's (2000-01-01). */
const PG_EPOCH_US = 946_684_800_000_000n

const pgTime = (microseconds: bigint) => new Date(Number((microseconds + PG_EPOCH_US) / 1000n))

/** The current time in PostgreSQL's clock (µs since 2000-01-01), for status updates. */
export const pgNow = () => BigInt(Date.now()) * 1000n - PG_EPOCH_US

class Reader {
  offset = 0
  constructor(readonly buffer: Buffer) {}
  byte(): number {
    return this.buffer.readUInt8(this.offset++)
  }
  char(): string {
    return String.fromCharCode(this.byte())
  }
  int16(): number {
    const value = this.buffer.readInt16BE(this.offset)
    this.offset += 2
    return value
  }
  int32(): number {
    const value = this.buffer.readInt32BE(this.offset)
    this.offset += 4
    return value
  }
  uint32(): number {
    const value = this.buffer.readUInt32BE(this.offset)
    this.offset += 4
    return value
  }
  int64(): bigint {
    const value = this.buffer.readBigUInt64BE(this.offset)
    this.offset += 8
    return value
  }
  string(): string {
    const end = this.buffer.indexOf(0, this.offset)
    if (end < 0) throw new Error('pgoutput: unterminated string')
    const value = this.buffer.toString('utf8', this.offset, end)
    this.offset = end + 1
    return value
  }
  tuple(): ColumnValue[] {
    const count = this.int16()
    const values: ColumnValue[] = []
    for (let i = 0; i < count; i++) {
      const kind = this.char()
      if (kind === 'n') values.push(null)
      else if (kind === 'u') values.push(UNCHANGED)
      else if (kind === 't') {
        const length = this.int32()
        values.push(this.buffer.toString('utf8', this.offset, this.offset + length))
        this.offset += length
      } else throw new Error(`pgoutput: unknown tuple column kind ${JSON.stringify(kind)}`)
    }
    return values
  }
}

export function decodePgOutput(buffer: Buffer): PgOutputMessage {
  const reader = new Reader(buffer)
  const code = reader.char()
  switch (code) {
    case 'B': {
      const finalLsn = reader.int64()
      const commitTime = pgTime(reader.int64())
      return { tag: 'begin', finalLsn, commitTime, xid: reader.uint32() }
    }
    case 'C': {
      reader.byte() // flags, unused
      const commitLsn = reader.int64()
      const endLsn = reader.int64()
      return { tag: 'commit', commitLsn, endLsn, commitTime: pgTime(reader.int64()) }
    }
    case 'R': {
      const id = reader.uint32()
      const schema = reader.string()
      const table = reader.string()
      const replicaIdentity = reader.char()
      const count = reader.int16()
      const columns: RelationColumn[] = []
      for (let i = 0; i < count; i++) {
        const flags = reader.byte()
        const name = reader.string()
        const typeOid = reader.uint32()
        reader.int32() // type modifier
        columns.push({ name, isKey: (flags & 1) === 1, typeOid })
      }
      return { tag: 'relation', id, schema, table, replicaIdentity, columns }
    }
    case 'I': {
      const relation = reader.uint32()
      reader.char() // 'N'
      return { tag: 'insert', relation, row: reader.tuple() }
    }
    case 'U': {
      const relation = reader.uint32()
      let kind = reader.char()
      let old: { kind: 'key' | 'full'; row: ColumnValue[] } | undefined
      if (kind === 'K' || kind === 'O') {
        old = { kind: kind === 'K' ? 'key' : 'full', row: reader.tuple() }
        kind = reader.char() // 'N'
      }
      const row = reader.tuple()
      return old ? { tag: 'update', relation, old, row } : { tag: 'update', relation, row }
    }
    case 'D': {
      const relation = reader.uint32()
      const kind = reader.char()
      return { tag: 'delete', relation, old: { kind: kind === 'K' ? 'key' : 'full', row: reader.tuple() } }
    }
    case 'T': {
      const count = reader.int32()
      reader.byte() // options (CASCADE, RESTART IDENTITY)
      const relations: number[] = []
      for (let i = 0; i < count; i++) relations.push(reader.uint32())
      return { tag: 'truncate', relations }
    }
    default:
      return { tag: 'other', code }
  }
}

/** A CopyData frame of the replication stream. */
export type ReplicationFrame =
  | { readonly tag: 'xlog'; readonly start: Lsn; readonly end: Lsn; readonly data: Buffer }
  | { readonly tag: 'keepalive'; readonly end: Lsn; readonly replyNow: boolean }

export function decodeFrame(chunk: Buffer): ReplicationFrame | undefined {
  const code = String.fromCharCode(chunk[0]!)
  if (code === 'w') {
    return {
      tag: 'xlog',
      start: chunk.readBigUInt64BE(1),
      end: chunk.readBigUInt64BE(9),
      data: chunk.subarray(25),
    }
  }
  if (code === 'k') return { tag: 'keepalive', end: chunk.readBigUInt64BE(1), replyNow: chunk[17] === 1 }
  return undefined
}

/**
 * A Standby Status Update (`r`): what the client wrote, flushed and applied. PostgreSQL may
 * recycle the log up to `flushed`, and restarts the slot there.
 */
export function standbyStatus(flushed: Lsn, replyNow = false): Buffer {
  const buffer = Buffer.alloc(34)
  buffer.write('r', 0)
  buffer.writeBigUInt64BE(flushed, 1)
  buffer.writeBigUInt64BE(flushed, 9)
  buffer.writeBigUInt64BE(flushed, 17)
  buffer.writeBigInt64BE(pgNow(), 25)
  buffer.writeUInt8(replyNow ? 1 : 0, 33)
  return buffer
}
