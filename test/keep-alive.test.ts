/**
 * The server's keep-alive (src/transport/keep-alive.ts, docs/architecture.md §9): pings spread
 * over the period, a socket dropped only once its ping is a period old and unanswered; and over
 * real sockets, a client that stops answering pings is dropped while one that answers stays.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { KeepAlive, type KeptAlive } from '../src/transport/keep-alive.ts'
import { useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'
import { connectRaw } from './helpers/raw-socket.ts'

/** A connection that records its pings and whether it was terminated. */
class Peer implements KeptAlive {
  pingedAt = 0
  pings = 0
  terminated = false
  constructor(readonly set: Set<Peer>) {}
  sendPing(): void {
    this.pings++
  }
  terminate(): void {
    this.terminated = true
    this.set.delete(this)
  }
  answer(): void {
    this.pingedAt = 0
  }
}

const keepAlives: KeepAlive<Peer>[] = []
afterEach(() => {
  for (const keepAlive of keepAlives.splice(0)) keepAlive.stop()
})

/** 12,000 ms period: 48 slices of a quarter second. Visits are driven by hand with `now`. */
function setUp(count: number) {
  const peers = new Set<Peer>()
  for (let i = 0; i < count; i++) peers.add(new Peer(peers))
  const keepAlive = new KeepAlive(peers, 12_000)
  keepAlives.push(keepAlive)
  return { peers: [...peers], set: peers, keepAlive }
}

describe('KeepAlive', () => {
  it('pings a slice of the sockets at each visit, each socket once per round', () => {
    const { peers, keepAlive } = setUp(480)
    keepAlive.visitSlice(1000)
    expect(peers.filter((p) => p.pings === 1)).toHaveLength(10)
    for (let tick = 1; tick < 48; tick++) keepAlive.visitSlice(1000 + tick * 250)
    expect(peers.every((p) => p.pings === 1)).toBe(true)
  })

  it('pings again in the next round a socket that answered, and drops one whose ping is a period old', () => {
    const { peers, keepAlive } = setUp(48)
    const [silent, answering] = [peers[0]!, peers[1]!]
    let now = 1000
    // Round one: every socket pinged; all but `silent` answer.
    for (let tick = 0; tick < 49; tick++) keepAlive.visitSlice((now += 250))
    for (const peer of peers) if (peer !== silent) peer.answer()
    // Round two, a period after round one's pings: `silent` dropped, the others pinged again.
    for (let tick = 0; tick < 49; tick++) keepAlive.visitSlice((now += 250))
    expect(silent.terminated).toBe(true)
    expect(answering.terminated).toBe(false)
    expect(answering.pings).toBe(2)
    expect(peers.filter((p) => p.terminated)).toEqual([silent])
  })

  it('never drops a socket whose ping is younger than a period, however early its next visit comes', () => {
    const { peers, set, keepAlive } = setUp(48)
    const last = peers[47]!
    let now = 1000
    for (let tick = 0; tick < 48; tick++) keepAlive.visitSlice((now += 250))
    expect(last.pings).toBe(1)
    // Every other socket closes: the next round visits `last` first, a quarter second later.
    for (const peer of peers) if (peer !== last) set.delete(peer)
    keepAlive.visitSlice((now += 250))
    keepAlive.visitSlice((now += 250))
    expect(last.terminated).toBe(false)
    // It stays unanswered: dropped at the first visit a period after its ping.
    while (!last.terminated && now < 40_000) keepAlive.visitSlice((now += 250))
    expect(last.terminated).toBe(true)
    expect(now - last.pingedAt).toBeGreaterThanOrEqual(12_000)
    // At the first visit a period after its ping: the next round, at most a period later.
    expect(now - last.pingedAt).toBeLessThan(24_000)
  })

  it('pings each socket once per period when there are fewer sockets than slices', () => {
    for (const count of [1, 3, 10]) {
      const { peers, keepAlive } = setUp(count)
      // Two periods of quarter-second visits, every socket answering at once.
      for (let now = 250; now <= 24_000; now += 250) {
        keepAlive.visitSlice(now)
        for (const peer of peers) peer.answer()
      }
      expect(peers.map((p) => p.pings)).toEqual(peers.map(() => 2))
    }
  })

  it('visits sockets that connect during a round, and none twice in it', () => {
    const { peers, set, keepAlive } = setUp(96)
    let now = 1000
    for (let tick = 0; tick < 24; tick++) keepAlive.visitSlice((now += 250))
    const late = new Peer(set)
    set.add(late)
    for (let tick = 0; tick < 24; tick++) keepAlive.visitSlice((now += 250))
    expect(late.pings).toBe(1)
    expect(peers.every((p) => p.pings === 1)).toBe(true)
  })
})

describe('keep-alive over WebSocket', () => {
  const env = useFixture()
  let gateway: TestGateway
  beforeAll(async () => {
    gateway = await env.startGateway({ limits: { keepAliveMs: 300 } })
  })

  it('drops a client that stops answering pings (1006), and keeps one that answers', async () => {
    const [silent, answering] = await Promise.all([
      connectRaw(gateway.wsUrl, undefined, { autoPong: false }),
      connectRaw(gateway.wsUrl),
    ])
    let pings = 0
    silent.socket.on('ping', () => pings++)
    expect((await silent.closed).code).toBe(1006)
    expect(pings).toBeGreaterThanOrEqual(1)
    // The answering client, connected at the same time, outlived several periods.
    expect(answering.isOpen).toBe(true)
    expect(await answering.execute('1', '{ __typename }')).toMatchObject({ type: 'next' })
    await answering.close()
  })
})
