/**
 * Change capture through crashes: capturing gateways in processes of their own on one Redis and
 * one PostgreSQL (wal_level=logical, this file's own). The one reading the slot is SIGKILLed
 * while rows are being written; another takes the slot over within 10 s, and a client of the
 * survivor gets every row exactly once, in commit order. Then the survivor is killed in turn.
 */
import { randomUUID } from 'node:crypto'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { connectWs, subscribeWs } from './helpers/clients.ts'
import { startGatewayProcess, type GatewayProcess } from './helpers/gateway-process.ts'
import { settled } from './helpers/gateway.ts'
import { useLogicalPostgres } from './helpers/logical-postgres.ts'
import { missing, redisUrl } from './helpers/services.ts'

const server = useLogicalPostgres()

const READING = /^change capture: reading the replication slot$/
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.skipIf(missing('redis'))('change capture when the capturing gateway is SIGKILLed', () => {
  it('hands the slot to another gateway within 10 s; its clients get every row once, in order', async () => {
    const database = await server.createDatabase()
    const env = {
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl,
      MIZZEN_REDIS_PREFIX: `mizzen-test-${randomUUID()}:`,
      MIZZEN_CAPTURE: 'database',
    }
    const gateways: GatewayProcess[] = []
    const sql = new pg.Client({ connectionString: database.url })
    const clients: ReturnType<typeof connectWs>[] = []
    await sql.connect()
    try {
      const start = async (name: string) => {
        const gateway = await startGatewayProcess(name, env)
        gateways.push(gateway)
        return gateway
      }
      const a = await start('a')
      await settled(() => expect(a.logs(READING)).toHaveLength(1))
      const b = await start('b')

      let written = 0
      /** Writes rows `from`..`to`, one transaction each, at a steady pace; `during(n)` runs after row n. */
      const write = async (from: number, to: number, during: (row: number) => Promise<void>) => {
        for (let row = from; row <= to; row++) {
          await sql.query(`INSERT INTO "User" (email, name) VALUES ($1, $2)`, [`row${row}@example.com`, `row ${row}`])
          written = row
          await during(row)
          await sleep(5)
        }
      }
      /** A client of `gateway` collecting the names of created users. */
      const watch = async (gateway: GatewayProcess) => {
        const ws = connectWs(gateway.wsUrl)
        clients.push(ws)
        await ws.ack
        const events = subscribeWs<any>(ws.client, 'subscription { userEvents(verbs: [CREATED]) { node { name } } }')
        // Attached once a probe row written now reaches it (probes are left out of the rows below).
        await settled(async () => {
          await sql.query(`INSERT INTO "User" (email, name) VALUES ($1, 'probe')`, [`${randomUUID()}@example.com`])
          await sleep(200)
          expect(events.received.length).toBeGreaterThan(0)
        })
        return events
      }
      const names = (events: ReturnType<typeof subscribeWs<any>>) =>
        events.received
          .map((result) => result.data?.userEvents?.node?.name ?? JSON.stringify(result.errors))
          .filter((name) => name !== 'probe')
      const rows = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `row ${from + i}`)

      // Phase 1: a reads the slot, b stands by; a dies at row 100 of 300.
      const ofB = await watch(b)
      let killedAt = 0
      await write(1, 300, async (row) => {
        if (row === 100) {
          killedAt = Date.now()
          await a.kill('SIGKILL')
        }
      })
      await settled(() => expect(names(ofB)).toHaveLength(300))
      expect(names(ofB)).toEqual(rows(1, 300))
      const tookOver = b.logs(READING)[0]
      expect(tookOver, 'b took the slot over').toBeDefined()
      expect(Number(tookOver!.time) - killedAt).toBeLessThan(10_000)

      // Phase 2: c stands by, b reads; b dies at row 400 of 600.
      const c = await start('c')
      const ofC = await watch(c)
      await write(301, 600, async (row) => {
        if (row === 400) await b.kill('SIGKILL')
      })
      await settled(() => expect(names(ofC)).toHaveLength(300))
      expect(names(ofC)).toEqual(rows(301, 600))
      expect(c.logs(READING)).toHaveLength(1)

      // Nothing more comes after the last row: a sentinel row arrives next, and alone.
      await sql.query(`INSERT INTO "User" (email, name) VALUES ('sentinel@example.com', 'sentinel')`)
      await settled(() => expect(names(ofC)).toHaveLength(301))
      expect(names(ofC).at(-1)).toBe('sentinel')
      expect(written).toBe(600)
    } finally {
      for (const ws of clients) await ws.client.dispose()
      for (const gateway of gateways) await gateway.kill('SIGKILL')
      await sql.end().catch(() => {})
      await database.drop()
    }
  }, 180_000)
})
