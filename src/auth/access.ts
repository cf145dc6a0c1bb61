/**
 * The policies applied to one viewer: every permission check and row filter of a request or a
 * subscription goes through here, so HTTP, SSE and WebSocket apply the same rules.
 */
import { forbidden } from '../errors.ts'
import type { Model } from '../models/data-model.ts'
import { toPrismaWhere, type Where } from '../models/where.ts'
import { allows, modelPolicy, roomPolicy, type Policies, type RoomRule, type Rule } from './policies.ts'
import type { Viewer } from './viewer.ts'

export class Access {
  readonly #filters = new Map<Model, Where | undefined>()

  constructor(
    readonly viewer: Viewer,
    private readonly policies: Policies,
  ) {}

  #check(rule: Rule | RoomRule, what: string, room?: string): void {
    if (allows(rule, this.viewer, room)) return
    const who = this.viewer.role === 'anonymous' ? 'anonymous clients' : this.viewer.role === 'user' ? `user ${this.viewer.id}` : 'this service'
    throw forbidden(`${who} may not ${what}`)
  }

  assertRead(model: string): void {
    // Fail closed: a model no policy names (say, one just added to the schema) is for services.
    this.#check(modelPolicy(this.policies, model).read ?? 'service', `read ${model}`)
  }

  assertWrite(model: string, what = 'write'): void {
    this.#check(modelPolicy(this.policies, model).write ?? 'service', `${what} ${model}`)
  }

  /**
   * The records of `model` this viewer may see, as a Prisma where; undefined when they may see
   * all of them.
   */
  rowFilter(model: Model): Where | undefined {
    if (this.#filters.has(model)) return this.#filters.get(model)
    const filter = this.viewer.role === 'service' ? true : (modelPolicy(this.policies, model.name).filter?.(this.viewer) ?? true)
    const where = filter === true ? undefined : filter === false ? { [model.idField]: { in: [] } } : toPrismaWhere(model, filter)
    this.#filters.set(model, where)
    return where
  }

  assertJoin(room: string): void {
    this.#check(roomPolicy(this.policies, room)?.join ?? 'anonymous', `join room "${room}"`, room)
  }

  assertBroadcast(room: string): void {
    this.#check(roomPolicy(this.policies, room)?.broadcast ?? 'service', `broadcast to room "${room}"`, room)
  }

  assertManageConnections(what: string): void {
    this.#check(this.policies.manageConnections ?? 'service', what)
  }
}
