/**
 * The policies applied to one viewer: every permission check and row filter of a request or a
 * subscription goes through here, so HTTP, SSE and WebSocket apply the same rules.
 */
import { forbidden } from '../errors.ts'
import type { Model } from '../models/data-model.ts'
import { toPrismaWhere, type Where } from '../models/where.ts'
import { allows, modelPolicy, roomPolicy, type Policies, type RoomRule, type Rule } from './policies.ts'
import type { Role, Viewer } from './viewer.ts'

/** What the policies make of a viewer for one model. */
export interface ModelView {
  /** Whether the viewer may read the model. */
  readonly read: boolean
  /** The records it may see (a Prisma where); undefined for all of them, or when it may not read the model. */
  readonly filter: Where | undefined
}

/**
 * The policy-relevant part of a viewer for some models: its role and what the policies of those
 * models make of it. Nothing else about who the viewer is (no id, no claims).
 */
export interface PolicyView {
  /** Undefined for a view of no model: then nothing about the viewer matters. */
  readonly role: Role | undefined
  readonly models: ReadonlyMap<string, ModelView>
}

/** The checks resolvers make, whoever the viewer: `ViewerAccess` for a request or one subscriber, `GroupAccess` for a group. */
/** What let a viewer read a room's members: its policy (or being a service), or being a member. */
export type ReadMembersGrant = 'policy' | 'membership'

export interface Access {
  /** Throws FORBIDDEN unless the viewer may read `model`. */
  assertRead(model: string): void
  /** Throws FORBIDDEN unless the viewer may write `model` (`what`: the kind of write, for the message). */
  assertWrite(model: string, what?: string): void
  /** The records of `model` this viewer may see, as a Prisma where; undefined when it may see all of them. */
  rowFilter(model: Model): Where | undefined
  /** What the policies of `models` make of this viewer: the viewer part of a group key (docs/architecture.md §6). */
  policyView(models: Iterable<Model>): PolicyView
  assertJoin(room: string): void
  /**
   * Throws FORBIDDEN unless the viewer may read `room`'s members and presence (`isMember`: asked
   * only when the rule needs it). Resolves with what granted it: `'membership'` when only being a
   * member did (a watch must end once the viewer is no longer one), `'policy'` otherwise.
   */
  assertReadMembers(room: string, isMember: () => Promise<boolean>): Promise<ReadMembersGrant>
  /** Throws FORBIDDEN unless the viewer may list every room. */
  assertListRooms(): void
  assertBroadcast(room: string): void
  assertManageConnections(what: string): void
}

/** The policies applied to a viewer known in full: a request's, or a subscription's when it subscribes. */
export class ViewerAccess implements Access {
  readonly #filters = new Map<Model, Where | undefined>()

  constructor(
    private readonly viewer: Viewer,
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

  policyView(models: Iterable<Model>): PolicyView {
    const views = new Map<string, ModelView>()
    for (const model of models) {
      let read = true
      try {
        this.assertRead(model.name)
      } catch {
        read = false
      }
      views.set(model.name, { read, filter: read ? this.rowFilter(model) : undefined })
    }
    return { role: views.size ? this.viewer.role : undefined, models: views }
  }

  assertJoin(room: string): void {
    this.#check(roomPolicy(this.policies, room)?.join ?? 'anonymous', `join room "${room}"`, room)
  }

  /**
   * Whether this viewer may read `room`'s members and presence. Under the default rule (`'member'`)
   * a service may, and anyone else only when `isMember` (asked only then, as it may read the
   * cluster) says a connection of theirs is in the room. Throws FORBIDDEN otherwise.
   */
  async assertReadMembers(room: string, isMember: () => Promise<boolean>): Promise<ReadMembersGrant> {
    const rule = roomPolicy(this.policies, room)?.members ?? 'member'
    const what = `read the members of room "${room}"`
    if (rule !== 'member') {
      this.#check(rule, what, room)
      return 'policy'
    }
    if (this.viewer.role === 'service') return 'policy'
    if (await isMember()) return 'membership'
    this.#check(() => false, `${what} (only its members and services may)`)
    return 'policy'
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
