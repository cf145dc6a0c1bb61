/**
 * The checks of a group's executions (docs/architecture.md §6): answered
 * from the group key's viewer part alone, what the policies of the models its selection set
 * reaches make of its viewers. No policy runs here, and nothing about any one member is known.
 */
import { forbidden, IsolationError } from '../errors.ts'
import type { Model } from '../models/data-model.ts'
import type { Where } from '../models/where.ts'
import type { Access, ModelView, PolicyView, ReadMembersGrant } from './access.ts'
import type { Role } from './viewer.ts'

/** Who a refusal names: a group, never one member. */
const members: Record<Role, string> = { anonymous: 'anonymous clients', user: 'users', service: 'services' }

/** A model the selection set does not reach: the key holds no policy for it. */
const unreached = (check: string, model: string) =>
  new IsolationError(
    `context.access.${check}(${model})`,
    `the subscription's selection set does not reach ${model}, so its group key holds no policy for it`,
  )

/** Writes and rooms: an event's execution only reads, and its key holds no policy for them. */
const notReading = (check: string) =>
  new IsolationError(
    `context.access.${check}`,
    "a subscription event's execution only reads models: its group key holds no write or room policy",
  )

export class GroupAccess implements Access {
  constructor(readonly view: PolicyView) {}

  #model(name: string, check: string): ModelView {
    const model = this.view.models.get(name)
    if (!model) throw unreached(check, name)
    return model
  }

  assertRead(model: string): void {
    if (!this.#model(model, 'assertRead').read) throw forbidden(`${members[this.view.role!]} may not read ${model}`)
  }

  rowFilter(model: Model): Where | undefined {
    const view = this.#model(model.name, 'rowFilter')
    // A model the group may not read: no records at all (its resolvers refuse it first).
    return view.read ? view.filter : { [model.idField]: { in: [] } }
  }

  policyView(models: Iterable<Model>): PolicyView {
    const views = new Map<string, ModelView>()
    for (const model of models) views.set(model.name, this.#model(model.name, 'policyView'))
    return { role: views.size ? this.view.role : undefined, models: views }
  }

  assertWrite(model: string): void {
    throw notReading(`assertWrite(${model})`)
  }

  assertJoin(room: string): void {
    throw notReading(`assertJoin(${room})`)
  }

  assertReadMembers(room: string): Promise<ReadMembersGrant> {
    return Promise.reject(notReading(`assertReadMembers(${room})`))
  }

  assertListRooms(): void {
    throw notReading('assertListRooms')
  }

  assertBroadcast(room: string): void {
    throw notReading(`assertBroadcast(${room})`)
  }

  assertManageConnections(): void {
    throw notReading('assertManageConnections')
  }
}
