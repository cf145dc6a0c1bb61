/**
 * Column text as PostgreSQL writes it (the same output function the replication stream uses),
 * read by change capture into what Prisma returns for each field type.
 */
import { describe, expect, it } from 'vitest'
import pg from 'pg'
import { Decimal } from '@prisma/client/runtime/client'
import { arrayElements, fieldValue, scalarValue } from '../src/capture/values.ts'
import type { ScalarField } from '../src/models/data-model.ts'
import { missing, postgresUrl } from './helpers/services.ts'

/** PostgreSQL's text for each expression, from the run's shared server (read only). */
async function texts(expressions: readonly string[]): Promise<string[]> {
  const client = new pg.Client({ connectionString: postgresUrl })
  await client.connect()
  try {
    const { rows } = await client.query<string[]>({
      text: `SELECT ${expressions.map((e) => `(${e})::text`).join(', ')}`,
      rowMode: 'array',
    })
    return rows[0]!
  } finally {
    await client.end()
  }
}

describe.skipIf(missing('postgresql'))('change capture: column text to field values', () => {
  it('reads every scalar type as Prisma returns it', async () => {
    const [int, bigint, float, decimal, boolean, timestamp, timestamptz, date, json, bytes, text] = await texts([
      `42::int4`,
      `9007199254740993::int8`,
      `1.5::float8`,
      `12.5::numeric(65,30)`,
      `true`,
      `'2026-12-07 04:15:45.123'::timestamp(3)`,
      `'2026-12-07 04:15:45.123+02'::timestamptz`,
      `'2026-12-07'::date`,
      `'{"a": [1, "b"], "c": null}'::jsonb`,
      `'\\x00ff10'::bytea`,
      `'it''s'::text`,
    ])
    expect(scalarValue('Int', int!)).toBe(42)
    expect(scalarValue('BigInt', bigint!)).toBe(9007199254740993n)
    expect(scalarValue('Float', float!)).toBe(1.5)
    const value = scalarValue('Decimal', decimal!)
    expect(value).toBeInstanceOf(Decimal)
    expect(String(value)).toBe('12.5')
    expect(scalarValue('Boolean', boolean!)).toBe(true)
    expect(scalarValue('Boolean', 'f')).toBe(false)
    expect(scalarValue('DateTime', timestamp!)).toEqual(new Date('2026-12-07T04:15:45.123Z'))
    expect(scalarValue('DateTime', timestamptz!)).toEqual(new Date('2026-12-07T02:15:45.123Z'))
    expect(scalarValue('DateTime', date!)).toEqual(new Date('2026-12-07T00:00:00Z'))
    expect(scalarValue('Json', json!)).toEqual({ a: [1, 'b'], c: null })
    expect(scalarValue('Bytes', bytes!)).toEqual(new Uint8Array([0, 255, 16]))
    expect(scalarValue('String', text!)).toBe("it's")
    expect(scalarValue('Role', 'ADMIN')).toBe('ADMIN') // an enum
  })

  it('reads lists, with quoted elements and NULLs', async () => {
    const [ints, strings, empty] = await texts([
      `ARRAY[1, 2, 3]::int4[]`,
      `ARRAY['a', 'b,c', 'd"e', NULL, 'NULL']::text[]`,
      `ARRAY[]::text[]`,
    ])
    const list = (type: string) => ({ type, isList: true }) as ScalarField
    expect(fieldValue(list('Int'), ints!)).toEqual([1, 2, 3])
    expect(arrayElements(strings!)).toEqual(['a', 'b,c', 'd"e', null, 'NULL'])
    expect(fieldValue(list('String'), empty!)).toEqual([])
    expect(fieldValue(list('String'), null)).toBeNull()
  })
})
