import { beforeAll, describe, expect, it } from 'vitest'
import { connectWs, executeWs, postGraphQL } from './helpers/clients.ts'
import { eachDatabase, useFixture } from './helpers/fixture.ts'
import type { TestGateway } from './helpers/gateway.ts'

eachDatabase('model queries on $provider', (database) => {
  const env = useFixture({ database })
  let gateway: TestGateway
  let ada: { id: number }

  beforeAll(async () => {
    gateway = env.gateway
    const { prisma } = gateway
    ada = await prisma.user.create({ data: { email: 'ada@example.com', name: 'Ada' } })
    const bob = await prisma.user.create({ data: { email: 'bob@example.com', name: 'Bob' } })
    await prisma.post.create({
      data: {
        title: 'Engines',
        published: true,
        authorId: ada.id,
        tags: { create: [{ name: 'math' }, { name: 'history' }] },
      },
    })
    await prisma.post.create({ data: { title: 'Notes', body: 'draft', authorId: ada.id } })
    await prisma.post.create({
      data: { title: 'Sailing', published: true, authorId: bob.id, tags: { connect: [{ name: 'history' }] } },
    })
  })

  it('should find one record by id, with ids as strings', async () => {
    const result = await postGraphQL(gateway.url, 'query ($id: ID!) { user(id: $id) { id name email createdAt } }', {
      id: String(ada.id),
    })
    expect(result.data?.user).toMatchObject({ id: String(ada.id), name: 'Ada', email: 'ada@example.com' })
    expect(new Date(result.data?.user.createdAt).getTime()).not.toBeNaN()
  })

  it('should answer null for a missing id', async () => {
    expect(await postGraphQL(gateway.url, '{ user(id: "999999") { id } }')).toEqual({ data: { user: null } })
  })

  it('should filter, sort and page lists', async () => {
    const result = await postGraphQL(
      gateway.url,
      `{
      posts(where: { published: { equals: true }, title: { contains: "i" } }, orderBy: [{ title: desc }]) { title }
      firstTwo: posts(orderBy: [{ id: asc }], take: 2, skip: 1) { title }
      either: posts(where: { OR: [{ title: { startsWith: "Eng" } }, { body: { equals: "draft" } }] }, orderBy: [{ id: asc }]) { title }
      notDrafts: posts(where: { NOT: [{ title: { startsWith: "N" } }] }, orderBy: [{ id: asc }]) { title }
      byAuthor: posts(where: { authorId: { in: ["${ada.id}"] } }, orderBy: [{ id: asc }]) { title }
    }`,
    )
    expect(result.errors).toBeUndefined()
    expect(result.data).toEqual({
      posts: [{ title: 'Sailing' }, { title: 'Engines' }],
      firstTwo: [{ title: 'Notes' }, { title: 'Sailing' }],
      either: [{ title: 'Engines' }, { title: 'Notes' }],
      notDrafts: [{ title: 'Engines' }, { title: 'Sailing' }],
      byAuthor: [{ title: 'Engines' }, { title: 'Notes' }],
    })
  })

  it('should resolve relations both ways, to-one, to-many and many-to-many', async () => {
    const result = await postGraphQL(
      gateway.url,
      `{
      users(orderBy: [{ id: asc }]) { name posts(orderBy: [{ id: asc }], where: { published: { equals: true } }) { title author { name } tags(orderBy: [{ name: asc }]) { name posts(orderBy: [{ id: asc }]) { title } } } }
    }`,
    )
    expect(result.errors).toBeUndefined()
    expect(result.data?.users).toEqual([
      {
        name: 'Ada',
        posts: [
          {
            title: 'Engines',
            author: { name: 'Ada' },
            tags: [
              { name: 'history', posts: [{ title: 'Engines' }, { title: 'Sailing' }] },
              { name: 'math', posts: [{ title: 'Engines' }] },
            ],
          },
        ],
      },
      {
        name: 'Bob',
        posts: [
          {
            title: 'Sailing',
            author: { name: 'Bob' },
            tags: [{ name: 'history', posts: [{ title: 'Engines' }, { title: 'Sailing' }] }],
          },
        ],
      },
    ])
  })

  it('should answer the same over WebSocket', async () => {
    const { client } = connectWs(gateway.wsUrl)
    const result = await executeWs(client, '{ tags(orderBy: [{ name: asc }]) { name } }')
    expect(result).toEqual({ data: { tags: [{ name: 'history' }, { name: 'math' }] } })
    await client.dispose()
  })

  describe('bad input', () => {
    it.each([
      ['a malformed id', '{ user(id: "abc") { id } }', 'BAD_USER_INPUT', /"abc" is not a valid id/],
      [
        'a malformed id in a filter',
        '{ posts(where: { authorId: { equals: "x1" } }) { id } }',
        'BAD_USER_INPUT',
        /Post.authorId: "x1" is not a valid id/,
      ],
      ['a negative skip', '{ users(skip: -1) { id } }', 'BAD_USER_INPUT', /skip must be 0 or more/],
      ['a take over the limit', '{ users(take: 100000) { id } }', 'BAD_USER_INPUT', /take must be between 0 and 1000/],
      [
        'an orderBy naming two fields',
        '{ users(orderBy: [{ id: asc, name: desc }]) { id } }',
        'BAD_USER_INPUT',
        /exactly one field/,
      ],
    ])('should refuse %s with a clear error', async (_what, query, code, message) => {
      const result = await postGraphQL(gateway.url, query)
      expect(result.errors?.[0]?.extensions?.code).toBe(code)
      expect(result.errors?.[0]?.message).toMatch(message)
    })

    it('should refuse a filter on an unknown field at validation, naming it', async () => {
      const result = await postGraphQL(gateway.url, '{ users(where: { nickname: { equals: "x" } }) { id } }')
      expect(result.errors?.[0]?.message).toMatch(/"nickname" is not defined by type "UserWhereInput"/)
    })
  })
})
