/**
 * mizzen as a user runs it, on a fresh SQLite file: an open gateway for `room` and `userEvents`
 * (every client a service), and for `postEvents` one with JWT auth and the example app's
 * policies (each client a user, half of them each of two users). Messages are published as
 * mizzen's own mutations do, without the HTTP request around them: `Rooms.send` for a broadcast
 * that does not select `recipients`,
 * what `publishUser` does for userEvents (read the record through Prisma, publish on the bus),
 * and the bus for the post updates the realtime extension would publish.
 * On Redis (`redisUrl`, or a Redis Cluster's seed nodes `redisCluster`), as `mizzen serve` runs
 * several gateways (docs/several-gateways.md): one shared pair of connections, the Redis bus and
 * the Redis rooms registry on it under one prefix, so that what one gateway publishes reaches
 * the subscribers of all.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openExampleDatabase } from '../../examples/app/database.ts'
import { examplePolicies } from '../../examples/app/policies.ts'
import { createRedisBus } from '../../src/bus/redis.ts'
import { createGateway } from '../../src/gateway.ts'
import { SharedRedis } from '../../src/redis/shared.ts'
import { createRedisRoomRegistry } from '../../src/rooms/redis.ts'
import { BENCH_JWT_SECRET, type Scenario } from '../common.ts'
import { benchGatewayOptions } from './gateway-options.ts'
import { eventFor } from './payloads.ts'
import type { BenchServer } from './server.ts'

/** `metrics: false` runs the same gateway counting nothing: the difference is what metrics cost. */
export async function startMizzen(
  scenario: Scenario,
  options: { metrics?: boolean; redisUrl?: string; redisCluster?: readonly string[] } = {},
): Promise<BenchServer> {
  const database = await openExampleDatabase(`file:${join(mkdtempSync(join(tmpdir(), 'mizzen-bench-')), 'bench.db')}`)
  const prefix = 'mizzen-bench:'
  const target = options.redisCluster
    ? { cluster: options.redisCluster }
    : options.redisUrl
      ? { url: options.redisUrl }
      : undefined
  const shared = target
    ? await SharedRedis.open({ ...target, epochKey: `${prefix}epoch`, onError: (error) => console.error(error) })
    : undefined
  const gateway = await createGateway({
    ...(shared
      ? {
          bus: await createRedisBus({ shared, prefix }),
          rooms: { registry: await createRedisRoomRegistry({ shared, keyPrefix: `${prefix}rooms:` }) },
        }
      : {}),
    ...benchGatewayOptions,
    prisma: database.prisma,
    metrics: options.metrics ?? true,
    ...(scenario === 'postEvents' ? { auth: { jwtSecret: BENCH_JWT_SECRET }, policies: examplePolicies } : {}),
  })
  // publishUser reads the records it publishes to: user 1 must exist.
  if (scenario === 'userEvents')
    await gateway.prisma.user.create({ data: { id: 1, email: 'ada@example.com', name: 'Ada' } })
  return {
    port: gateway.port,
    subscribers: () => gateway.hub.subscriberCount,
    publish: async (stamp) => {
      const event = eventFor(scenario, stamp) as any
      if (scenario === 'room') {
        // As `broadcast(…) { messageId }` does: no recipient count (a Redis request of its own on
        // several gateways), as Socket.IO's emit to a room makes none.
        await gateway.rooms.send(
          { event: event.event, data: event.data, sender: null },
          { rooms: ['bench'], omit: [] },
          { countRecipients: false },
        )
      } else if (scenario === 'userEvents') {
        // What publishUser does: read the record, publish a MESSAGE event with its state.
        const [user] = await gateway.prisma.user.findMany({ where: { id: { in: [1] } } })
        await gateway.bus.publish('model:User', { ...event, node: user })
      } else {
        await gateway.bus.publish('model:Post', event)
      }
    },
  }
}
