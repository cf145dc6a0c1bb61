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
    const who =
      this.viewer.role === 'anonymous'
        ? 'anonymous clients'
        : this.viewer.role === 'user'
          ? `user ${this.viewer.id}`
          : 'this service'
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
    const filter =
      this.viewer.role === 'service' ? true : (modelPolicy(this.policies, model.name).filter?.(this.viewer) ?? true)
    const where =
      filter === true ? undefined : filter === false ? { [model.idField]: { in: [] } } : toPrismaWhere(model, filter)
    this.#filters.set(model, where)
    return where
  }

  /**
   * What the policies of `models` make of this viewer, as a string: per model, whether it may
   * read it and the records it may see. Two viewers with the same key read the same things
   * through those models, so subscriptions of theirs that reach no other model may share results
   * (design §7); the key holds nothing else about who they are.
   */
  policyKey(models: Iterable<Model>): string {
    const policies = [...models]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((model) => {
        try {
          this.assertRead(model.name)
        } catch {
          return [model.name, false]
        }
        return [model.name, true, this.rowFilter(model) ?? null]
      })
    return JSON.stringify(policies, (_key, value: unknown) => (typeof value === 'bigint' ? `${value}n` : value))
  }

  assertJoin(room: string): void {
    this.#check(roomPolicy(this.policies, room)?.join ?? 'anonymous', `join room "${room}"`, room)
  }

  /**
   * Whether this viewer may read `room`'s members and presence. Under the default rule (`'member'`)
   * a service may, and anyone else only when `isMember` (asked only then, as it may read the
   * cluster) says a connection of theirs is in the room. Throws FORBIDDEN otherwise.
   */
  async assertReadMembers(room: string, isMember: () => Promise<boolean>): Promise<void> {
    const rule = roomPolicy(this.policies, room)?.members ?? 'member'
    const what = `read the members of room "${room}"`
    if (rule !== 'member') return this.#check(rule, what, room)
    if (this.viewer.role === 'service' || (await isMember())) return
    this.#check(() => false, `${what} (only its members and services may)`)
  }

  assertListRooms(): void {
    this.#check(this.policies.listRooms ?? 'service', 'list the rooms')
  }

  assertBroadcast(room: string): void {
    this.#check(roomPolicy(this.policies, room)?.broadcast ?? 'service', `broadcast to room "${room}"`, room)
  }

  assertManageConnections(what: string): void {
    this.#check(this.policies.manageConnections ?? 'service', what)
  }
}
