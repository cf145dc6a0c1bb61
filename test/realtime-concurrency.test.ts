/**
 * `previous` is the state the write really changed, even with a concurrent writer (PostgreSQL,
 * READ COMMITTED): the extension locks the rows before reading them.
 */
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { missing, useFixture } from './helpers/fixture.ts'
import type { RealtimeFixture } from './helpers/realtime.ts'

describe.skipIf(missing('postgresql'))('concurrent writers on postgresql', () => {
  const env = useFixture({ database: 'postgresql', gateways: 0, backend: true })
  let rt: RealtimeFixture
  let observer: pg.Client

  beforeAll(async () => {
    rt = env.backend
    observer = new pg.Client({ connectionString: env.database.url })
    await observer.connect()
  })
  afterAll(async () => {
    await observer?.end()
  })

  /** Resolves once some session of this database waits for a lock another one holds. */
  const someoneWaitsForALock = () =>
    vi.waitFor(
      async () => {
        const { rows } = await observer.query(
          'SELECT count(*)::int AS waiting FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE NOT l.granted AND a.datname = current_database()',
        )
        expect(rows[0].waiting).toBeGreaterThan(0)
      },
      { timeout: 10_000, interval: 10 },
    )

  it('should give the second writer the first one’s result as previous', async () => {
    const user = await rt.prisma.user.create({ data: { email: 'race@example.com', name: 'a' } })
    rt.clear()
    let commit!: () => void
    const committed = new Promise<void>((resolve) => (commit = resolve))
    let updatedInFirst!: () => void
    const firstWrote = new Promise<void>((resolve) => (updatedInFirst = resolve))
    // Prisma's queries start when awaited: then() starts each one now.
    const first = rt.prisma
      .$transaction(async (tx) => {
        await tx.user.update({ where: { id: user.id }, data: { name: 'b' } })
        updatedInFirst()
        await committed
      })
      .then(() => {})
    await firstWrote
    const second = rt.prisma.user.update({ where: { id: user.id }, data: { name: 'c' } }).then(() => {})
    await someoneWaitsForALock()
    commit()
    await Promise.all([first, second])
    expect(rt.events.map((e) => [e.verb, e.previous?.name, e.node?.name])).toEqual([
      ['UPDATED', 'a', 'b'],
      ['UPDATED', 'b', 'c'],
    ])
  })
})
