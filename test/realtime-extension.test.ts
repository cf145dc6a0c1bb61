import { beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { createMemoryBus } from '../src/bus/memory.ts'
import { eachDatabase, useFixture } from './helpers/fixture.ts'
import { brief, openRealtime, type RealtimeFixture } from './helpers/realtime.ts'

eachDatabase('realtime extension on $provider', (database) => {
  const env = useFixture({ database, gateways: 0, backend: true })
  let rt: RealtimeFixture
  let n = 0
  const email = () => `u${++n}@example.com`

  beforeAll(() => {
    rt = env.backend
  })
  beforeEach(() => rt.clear())

  describe('records', () => {
    it('should publish CREATED, UPDATED with previous and updatedFields, and DELETED', async () => {
      const user = await rt.prisma.user.create({ data: { email: email(), name: 'Ada' } })
      await rt.prisma.user.update({ where: { id: user.id }, data: { name: 'Ada L.' } })
      await rt.prisma.user.delete({ where: { id: user.id } })
      expect(brief(rt.events)).toEqual([
        `CREATED User:${user.id}`,
        `UPDATED User:${user.id} name`,
        `DELETED User:${user.id}`,
      ])
      expect(rt.events[0]!.node).toMatchObject({ id: user.id, name: 'Ada' })
      expect(rt.events[1]!.previous).toMatchObject({ name: 'Ada' })
      expect(rt.events[1]!.node).toMatchObject({ name: 'Ada L.' })
      expect(rt.events[2]!.previous).toMatchObject({ name: 'Ada L.' })
      expect(rt.events[2]!.node).toBeUndefined()
      expect(new Date(rt.events[0]!.at).getTime()).not.toBeNaN()
    })

    it('should publish nothing for an update that changes nothing', async () => {
      const user = await rt.prisma.user.create({ data: { email: email(), name: 'Same' } })
      rt.clear()
      await rt.prisma.user.update({ where: { id: user.id }, data: { name: 'Same' } })
      expect(rt.events).toEqual([])
    })

    it('should publish one event per record for createMany, updateMany and deleteMany, each with its own previous', async () => {
      const result = await rt.prisma.user.createMany({
        data: [1, 2, 3].map((i) => ({ email: `many${i}-${email()}`, name: `m${i}` })),
      })
      expect(result).toEqual({ count: 3 })
      expect(rt.events.map((e) => e.verb)).toEqual(['CREATED', 'CREATED', 'CREATED'])
      const ids = rt.events.map((e) => e.recordId)
      rt.clear()
      await rt.prisma.user.updateMany({ where: { name: { startsWith: 'm' } }, data: { name: 'renamed' } })
      expect(rt.events.map((e) => [e.verb, e.recordId, e.previous?.name, e.node?.name])).toEqual(
        ids.map((id, i) => ['UPDATED', id, `m${i + 1}`, 'renamed']),
      )
      rt.clear()
      await rt.prisma.user.deleteMany({ where: { name: 'renamed' } })
      expect(rt.events.map((e) => [e.verb, e.recordId, e.previous?.name])).toEqual(
        ids.map((id) => ['DELETED', id, 'renamed']),
      )
    })

    it('should publish for createManyAndReturn and updateManyAndReturn', async () => {
      const rows = await rt.prisma.user.createManyAndReturn({
        data: [{ email: email(), name: 'r1' }],
        select: { name: true },
      })
      expect(rows).toEqual([{ name: 'r1' }])
      const [created] = rt.events
      rt.clear()
      await rt.prisma.user.updateManyAndReturn({ where: { name: 'r1' }, data: { name: 'r2' } })
      expect(brief(rt.events)).toEqual([`UPDATED User:${created!.recordId} name`])
    })

    it('should publish CREATED or UPDATED for upsert', async () => {
      const address = email()
      const user = await rt.prisma.user.upsert({
        where: { email: address },
        create: { email: address, name: 'new' },
        update: { name: 'old' },
      })
      await rt.prisma.user.upsert({
        where: { email: address },
        create: { email: address, name: 'new' },
        update: { name: 'again' },
      })
      expect(brief(rt.events)).toEqual([`CREATED User:${user.id}`, `UPDATED User:${user.id} name`])
    })

    it('should return exactly what the caller selected, even without the id', async () => {
      const user = await rt.prisma.user.create({ data: { email: email(), name: 'Sel' }, select: { name: true } })
      expect(user).toEqual({ name: 'Sel' })
      expect(rt.events[0]!.node).toMatchObject({ name: 'Sel' })
      expect(rt.events[0]!.recordId).toMatch(/^\d+$/)
    })

    it('should publish nothing for a failed write', async () => {
      const address = email()
      await rt.prisma.user.create({ data: { email: address, name: 'first' } })
      rt.clear()
      await expect(rt.prisma.user.create({ data: { email: address, name: 'dup' } })).rejects.toThrow()
      await expect(rt.prisma.user.update({ where: { id: 999999 }, data: { name: 'x' } })).rejects.toThrow()
      expect(rt.events).toEqual([])
    })
  })

  describe('associations', () => {
    it('should publish ADDED_TO on the author when a post is created with authorId', async () => {
      const user = await rt.prisma.user.create({ data: { email: email(), name: 'A' } })
      rt.clear()
      const post = await rt.prisma.post.create({ data: { title: 'T', authorId: user.id } })
      expect(brief(rt.events)).toEqual([`CREATED Post:${post.id}`, `ADDED_TO User:${user.id} posts ${post.id}`])
      expect(rt.events[1]!.node).toMatchObject({ id: user.id, name: 'A' })
    })

    it('should publish REMOVED_FROM and ADDED_TO when a post moves to another author', async () => {
      const one = await rt.prisma.user.create({ data: { email: email(), name: 'one' } })
      const two = await rt.prisma.user.create({ data: { email: email(), name: 'two' } })
      const post = await rt.prisma.post.create({ data: { title: 'moving', authorId: one.id } })
      rt.clear()
      await rt.prisma.post.update({ where: { id: post.id }, data: { authorId: two.id } })
      expect(brief(rt.events)).toEqual([
        `UPDATED Post:${post.id} authorId`,
        `REMOVED_FROM User:${one.id} posts  ${post.id}`.replace('  ', ' '),
        `ADDED_TO User:${two.id} posts ${post.id}`,
      ])
    })

    it('should see connect on the parent side as a move too', async () => {
      const one = await rt.prisma.user.create({ data: { email: email(), name: 'one' } })
      const two = await rt.prisma.user.create({ data: { email: email(), name: 'two' } })
      const post = await rt.prisma.post.create({ data: { title: 'p', authorId: one.id } })
      rt.clear()
      await rt.prisma.user.update({ where: { id: two.id }, data: { posts: { connect: [{ id: post.id }] } } })
      expect(brief(rt.events)).toEqual([
        `UPDATED Post:${post.id} authorId`,
        `REMOVED_FROM User:${one.id} posts ${post.id}`,
        `ADDED_TO User:${two.id} posts ${post.id}`,
      ])
    })

    it('should publish on both sides of a many-to-many connect and disconnect', async () => {
      const user = await rt.prisma.user.create({ data: { email: email(), name: 'tagger' } })
      const post = await rt.prisma.post.create({ data: { title: 'tagged', authorId: user.id } })
      const tag = await rt.prisma.tag.create({ data: { name: `t${n++}` } })
      rt.clear()
      await rt.prisma.post.update({ where: { id: post.id }, data: { tags: { connect: [{ id: tag.id }] } } })
      expect(brief(rt.events)).toEqual([
        `ADDED_TO Post:${post.id} tags ${tag.id}`,
        `ADDED_TO Tag:${tag.id} posts ${post.id}`,
      ])
      rt.clear()
      await rt.prisma.tag.update({ where: { id: tag.id }, data: { posts: { disconnect: [{ id: post.id }] } } })
      expect(brief(rt.events)).toEqual([
        `REMOVED_FROM Tag:${tag.id} posts ${post.id}`,
        `REMOVED_FROM Post:${post.id} tags ${tag.id}`,
      ])
    })

    it('should publish for every record of a nested write', async () => {
      const user = await rt.prisma.user.create({
        data: {
          email: email(),
          name: 'nested',
          posts: { create: [{ title: 'n1', tags: { create: [{ name: `nt${n++}` }] } }, { title: 'n2' }] },
        },
        include: { posts: { include: { tags: true } } },
      })
      const [p1, p2] = user.posts
      const tag = p1!.tags[0]!
      expect(brief(rt.events)).toEqual([
        `CREATED User:${user.id}`,
        `CREATED Post:${p1!.id}`,
        `CREATED Tag:${tag.id}`,
        `CREATED Post:${p2!.id}`,
        `ADDED_TO User:${user.id} posts ${p1!.id},${p2!.id}`,
        `ADDED_TO Post:${p1!.id} tags ${tag.id}`,
        `ADDED_TO Tag:${tag.id} posts ${p1!.id}`,
      ])
    })

    it('should publish DELETED for records a nested write deletes, and REMOVED_FROM on their many-to-many partners', async () => {
      const user = await rt.prisma.user.create({
        data: {
          email: email(),
          name: 'del',
          posts: { create: [{ title: 'gone', tags: { create: [{ name: `dt${n++}` }] } }] },
        },
        include: { posts: { include: { tags: true } } },
      })
      const post = user.posts[0]!
      const tag = post.tags[0]!
      rt.clear()
      await rt.prisma.user.update({ where: { id: user.id }, data: { posts: { delete: [{ id: post.id }] } } })
      expect(brief(rt.events)).toEqual([`DELETED Post:${post.id}`, `REMOVED_FROM User:${user.id} posts ${post.id}`])
      rt.clear()
      const second = await rt.prisma.post.create({
        data: { title: 'tagged', authorId: user.id, tags: { connect: [{ id: tag.id }] } },
      })
      rt.clear()
      await rt.prisma.post.delete({ where: { id: second.id } })
      expect(brief(rt.events)).toEqual([
        `DELETED Post:${second.id}`,
        `REMOVED_FROM User:${user.id} posts ${second.id}`,
        `REMOVED_FROM Post:${second.id} tags ${tag.id}`,
        `REMOVED_FROM Tag:${tag.id} posts ${second.id}`,
      ])
    })
  })

  describe('transactions', () => {
    it('should publish nothing when an interactive transaction throws', async () => {
      await expect(
        rt.prisma.$transaction(async (tx) => {
          await tx.user.create({ data: { email: email(), name: 'rolled back' } })
          throw new Error('abort')
        }),
      ).rejects.toThrow('abort')
      expect(rt.events).toEqual([])
      expect(await rt.prisma.user.count({ where: { name: 'rolled back' } })).toBe(0)
    })

    it('should publish an interactive transaction’s events in order, only after it commits', async () => {
      let seenInside = -1
      const [a, b] = await rt.prisma.$transaction(async (tx) => {
        const first = await tx.user.create({ data: { email: email(), name: 'tx1' } })
        const second = await tx.user.create({ data: { email: email(), name: 'tx2' } })
        await tx.user.update({ where: { id: first.id }, data: { name: 'tx1b' } })
        seenInside = rt.events.length
        return [first, second]
      })
      expect(seenInside).toBe(0)
      expect(brief(rt.events)).toEqual([`CREATED User:${a!.id}`, `CREATED User:${b!.id}`, `UPDATED User:${a!.id} name`])
      expect(rt.events[2]!.previous).toMatchObject({ name: 'tx1' })
    })

    it('should run a batch transaction atomically and publish after it commits', async () => {
      const address = email()
      const [user, count] = await rt.prisma.$transaction([
        rt.prisma.user.create({ data: { email: address, name: 'batch' } }),
        rt.prisma.user.count({ where: { email: address } }),
      ])
      expect(count).toBe(1)
      expect(brief(rt.events)).toEqual([`CREATED User:${user.id}`])
      rt.clear()
      await expect(
        rt.prisma.$transaction([
          rt.prisma.user.create({ data: { email: `b2-${address}`, name: 'batch2' } }),
          rt.prisma.user.create({ data: { email: address, name: 'duplicate email' } }),
        ]),
      ).rejects.toThrow()
      expect(rt.events).toEqual([])
      expect(await rt.prisma.user.count({ where: { email: `b2-${address}` } })).toBe(0)
    })
  })

  describe('when the bus fails', () => {
    it('should keep the write, log and count the failure', async () => {
      const failing = await openRealtime(env.database, createMemoryBus())
      await failing.bus.close()
      const user = await failing.prisma.user.create({ data: { email: email(), name: 'kept' } })
      expect(await rt.prisma.user.findUnique({ where: { id: user.id } })).toMatchObject({ name: 'kept' })
      expect(failing.prisma.$realtimeStats()).toEqual({ published: 0, queued: 0, dropped: 0, failed: 1 })
      await failing.database.close()
    })
  })
})
