/** Linking the generated metadata: relations point at their models, fields know what they hold. */
import { describe, expect, it } from 'vitest'
import { dataModel as generated } from '../examples/app/generated/mizzen/index.js'
import { linkDataModel } from '../src/models/data-model.ts'
import { buildSchema } from '../src/schema/index.ts'
import type { DataModelMeta } from '../src/models/meta.ts'

describe('linkDataModel', () => {
  const dataModel = linkDataModel(generated)
  const user = dataModel.model('User')
  const post = dataModel.model('Post')
  const tag = dataModel.model('Tag')

  it('should point each relation at its target model and at the field on the other side', () => {
    const author = post.relations.find((r) => r.name === 'author')!
    expect(author.target).toBe(user)
    expect(author.back).toBe(user.field('posts'))
    expect(author.isManyToMany).toBe(false)
    const tags = post.field('tags')
    expect(tags?.kind === 'object' && tags.target).toBe(tag)
    expect(tags?.kind === 'object' && tags.isManyToMany).toBe(true)
    expect(tag.pointedAtBy.map((r) => `${r.model.name}.${r.name}`)).toEqual(['Post.tags'])
  })

  it('should know which scalars hold ids, and of which type', () => {
    expect(post.id.name).toBe('id')
    expect(post.idType).toBe('Int')
    const authorId = post.field('authorId')
    expect(authorId?.kind === 'scalar' && [authorId.holdsId, authorId.heldIdType]).toEqual([true, 'Int'])
    const title = post.field('title')
    expect(title?.kind === 'scalar' && [title.holdsId, title.heldIdType]).toEqual([false, undefined])
    expect(post.scalars.map((f) => f.name)).toEqual(['id', 'title', 'body', 'published', 'authorId'])
  })

  it('should return a linked model as it is, and refuse unknown names', () => {
    expect(linkDataModel(dataModel)).toBe(dataModel)
    expect(() => dataModel.model('Nope')).toThrow(/Nope/)
  })

  it('should refuse metadata whose relation names a model it does not have', () => {
    const broken: DataModelMeta = { ...generated, models: generated.models.filter((m) => m.name !== 'Tag') }
    expect(() => linkDataModel(broken)).toThrow(/Post\.tags refers to model Tag/)
  })
})

describe('names a data model may not take', () => {
  /** The example's metadata with its model Tag renamed. */
  const renamed = (name: string) =>
    JSON.parse(JSON.stringify(generated).replaceAll('"Tag"', `"${name}"`)) as DataModelMeta

  it('should build the example data model', () => {
    expect(() => buildSchema(generated)).not.toThrow()
  })

  it('should refuse a model whose type or root fields are the gateway’s own, naming the model and the way out', () => {
    expect(() => buildSchema(renamed('Room'))).toThrow(
      /model Room generates Room, the gateway's own type \(Room\).*@@map/,
    )
    expect(() => buildSchema(renamed('Connection'))).toThrow(
      /model Connection generates Connection, the gateway's own type/,
    )
    // `presence` and `presences`: the gateway's Query.presence.
    expect(() => buildSchema(renamed('Presence'))).toThrow(
      /model Presence generates Query\.presence, the gateway's own field/,
    )
  })

  it('should refuse two models that generate one name', () => {
    // UserEvent is both a model's type and model User's event type; SortOrder, every model's.
    expect(() => buildSchema(renamed('UserEvent'))).toThrow(
      /model User(Event)? generates UserEvent, which the generated schema has already/,
    )
    expect(() => buildSchema(renamed('SortOrder'))).toThrow(/model SortOrder generates SortOrder, which the generated/)
  })
})
