/**
 * Convergence of live queries (docs/live-queries.md): two gateways on Redis and PostgreSQL,
 * live clients on both, some 200 randomised concurrent creates, updates and deletes sent to
 * both gateways. Once the writes stop, every client's last result equals a fresh execution of
 * its query; no result repeats the one before it; and results of one query leave at most once
 * per throttle interval (100 ms).
 *
 * The interval is checked gap by gap where results leave the gateway (a probe around
 * `live.join`), and by counting where clients read them: the clients run in the gateways'
 * process, on a loaded machine, and a result read late makes the gap to the next one look short.
 * Counted from a time taken before the writes, n results need at least (n - 2) intervals, however
 * late each is read; and each group executes at most once per interval.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { postGraphQL, type GraphQLResponse } from './helpers/clients.ts'
import { missing, useFixture } from './helpers/fixture.ts'
import { settled, type TestGateway } from './helpers/gateway.ts'

const QUERIES = [
  'query Users @live { users(orderBy: [{ id: asc }]) { id name email } }',
  'query Published @live { posts(where: { published: { equals: true } }, orderBy: [{ title: asc }, { id: asc }]) { id title author { name } } }',
  'query Newest @live { users(orderBy: [{ id: desc }], take: 5) { name posts(orderBy: [{ id: asc }]) { title published } } }',
]
const WRITES = 200
const THROTTLE_MS = 100

interface Received {
  readonly result: unknown
  readonly at: number
}

/** A live query read from a raw graphql-ws client, each result with the time it arrived. */
function holdLive(env: ReturnType<typeof useFixture>, gateway: TestGateway, query: string) {
  const received: Received[] = []
  const { client } = env.connect(undefined, gateway)
  const stop = client.subscribe(
    { query },
    {
      next: (result) => received.push({ result, at: performance.now() }),
      error: (error) => received.push({ result: { clientError: String(error) }, at: performance.now() }),
      complete: () => {},
    },
  )
  return { gateway, query, received, stop }
}

/**
 * Records when `gateway` hands each result to each of its live queries (the server's side: a
 * probe around `live.join`), so that the throttle is checked on the gateway's clock.
 */
function probeDeliveries(gateway: TestGateway): number[][] {
  const members: number[][] = []
  const join = gateway.live.join.bind(gateway.live)
  gateway.live.join = (operation, mask, member) => {
    const times: number[] = []
    members.push(times)
    return join(operation, mask, {
      ...member,
      deliver: (result) => (times.push(performance.now()), member.deliver(result)),
    })
  }
  return members
}

/** A random integer in [0, n). */
const pick = (n: number) => Math.floor(Math.random() * n)

describe.skipIf(missing('redis', 'postgresql'))('live queries on two gateways (Redis, PostgreSQL)', () => {
  const env = useFixture({ database: 'postgresql', bus: 'redis', gateways: 2 })
  // A gateway on Redis that reports an error (as `mizzen serve` would log it) fails the test.
  afterEach(() => expect(env.takeRedisErrors()).toEqual([]))

  it('should converge: after 200 concurrent writes through both gateways every client’s last result equals a fresh query', async () => {
    const [a, b] = env.gateways as [TestGateway, TestGateway]
    const call = (gateway: TestGateway, query: string): Promise<GraphQLResponse> => postGraphQL(gateway.url, query)
    // Some rows to start from.
    for (let i = 0; i < 5; i++) {
      const user = await call(
        a,
        `mutation { createUser(data: { email: "seed${i}@c.test", name: "seed ${i}" }) { id } }`,
      )
      await call(
        b,
        `mutation { createPost(data: { title: "seed ${i}", published: true, authorId: "${(user.data as any).createUser.id}" }) { id } }`,
      )
    }
    const probes = [a, b].map(probeDeliveries)
    const lives = [a, b].flatMap((gateway) => QUERIES.map((query) => holdLive(env, gateway, query)))
    await settled(() => {
      for (const live of lives) expect(live.received.length).toBeGreaterThan(0)
    })
    const executionsBefore = a.live.executions + b.live.executions

    // Ids known to exist at some point; a write to one deleted meanwhile fails (NOT_FOUND), as it may in production.
    const userIds: string[] = []
    const postIds: string[] = []
    const initial = await call(a, '{ users { id } posts { id } }')
    userIds.push(...(initial.data as any).users.map((user: { id: string }) => user.id))
    postIds.push(...(initial.data as any).posts.map((post: { id: string }) => post.id))
    let written = 0
    let failed = 0
    const write = async (n: number) => {
      const gateway = n % 2 ? a : b
      const anyUser = () => userIds[pick(userIds.length)]
      const anyPost = () => postIds[pick(postIds.length)]
      const choice = pick(100)
      let mutation: string
      if (choice < 20 || userIds.length < 2) {
        mutation = `mutation { createUser(data: { email: "u${n}@c.test", name: "user ${n}" }) { id } }`
      } else if (choice < 40) {
        mutation = `mutation { createPost(data: { title: "post ${n}", published: ${Math.random() < 0.5}, authorId: "${anyUser()}" }) { id } }`
      } else if (choice < 55) {
        mutation = `mutation { updateUser(id: "${anyUser()}", data: { name: "renamed ${n}" }) { id } }`
      } else if (choice < 75 && postIds.length) {
        mutation = `mutation { updatePost(id: "${anyPost()}", data: { published: ${Math.random() < 0.5}, title: "title ${pick(10)}" }) { id } }`
      } else if (choice < 90 && postIds.length) {
        mutation = `mutation { deletePost(id: "${anyPost()}") { id } }`
      } else {
        // Fails while the user has posts (a foreign key): a write that changes nothing.
        mutation = `mutation { deleteUser(id: "${anyUser()}") { id } }`
      }
      const result = await call(gateway, mutation)
      if (result.errors) {
        failed++
        return
      }
      written++
      const data = result.data as Record<string, { id: string }>
      if (data.createUser) userIds.push(data.createUser.id)
      if (data.createPost) postIds.push(data.createPost.id)
    }
    // Eight writers at once, alternating gateways: concurrent commits from both, until 200 took.
    let next = 0
    const started = performance.now()
    const receivedBefore = lives.map((live) => live.received.length)
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (written < WRITES && next < 2 * WRITES) await write(next++)
      }),
    )
    const burstMs = performance.now() - started

    // Once writes stop, each client's last result is what a fresh query answers on its gateway.
    await settled(async () => {
      for (const live of lives) {
        const fresh = await call(live.gateway, live.query.replace(' @live', ''))
        expect(live.received.at(-1)!.result).toEqual(fresh)
      }
    })
    const settledMs = performance.now() - started
    const executions = a.live.executions + b.live.executions - executionsBefore
    const groups = a.live.groupCount + b.live.groupCount
    const results = lives.reduce((sum, live, i) => sum + live.received.length - receivedBefore[i]!, 0)
    const gaps = lives.flatMap((live) => live.received.slice(1).map((each, i) => each.at - live.received[i]!.at))
    console.info(
      `live convergence: ${written} writes (${failed} refused) in ${Math.round(burstMs)} ms, converged after ${Math.round(settledMs)} ms; ` +
        `${executions} executions over ${groups} groups; ${results} results to ${lives.length} clients; ` +
        `gap between results as read: min ${Math.round(Math.min(...gaps))} ms, median ${Math.round(gaps.sort((x, y) => x - y)[gaps.length >> 1]!)} ms`,
    )
    expect(written).toBeGreaterThanOrEqual(WRITES)
    expect(groups).toBe(2 * QUERIES.length)
    for (const [i, live] of lives.entries()) {
      // Never a result equal to the one before.
      for (let j = 1; j < live.received.length; j++)
        expect(JSON.stringify(live.received[j]!.result)).not.toBe(JSON.stringify(live.received[j - 1]!.result))
      // At most one result per 100 ms.
      const during = live.received.length - receivedBefore[i]!
      expect(during).toBeLessThanOrEqual(Math.floor((live.received.at(-1)!.at - started) / THROTTLE_MS) + 2)
    }
    // On the gateways' clock, each live query's results leave at least 100 ms apart.
    const sent = probes.flat()
    expect(sent).toHaveLength(lives.length)
    const sentGaps = sent.flatMap((times) => times.slice(1).map((at, i) => at - times[i]!))
    console.info(`live convergence: gap between results as sent: min ${Math.round(Math.min(...sentGaps))} ms`)
    for (const gap of sentGaps) expect(gap).toBeGreaterThanOrEqual(THROTTLE_MS)
    // At most one execution per group per 100 ms: a burst costs the throttle's pace, not one execution per write.
    expect(executions).toBeLessThanOrEqual(groups * (Math.floor(settledMs / THROTTLE_MS) + 2))
    for (const live of lives) live.stop()
    await settled(() => expect(a.live.memberCount + b.live.memberCount).toBe(0))
  }, 120_000)
})
