/**
 * Turns the before and after snapshots of a write into Sails-style events: CREATED / UPDATED /
 * DELETED for every record whose state changed, and ADDED_TO / REMOVED_FROM for every record
 * whose associations changed — through a foreign key set, changed or cleared (one-to-many and
 * one-to-one), or through links added or removed (many-to-many, on both sides).
 */
import type { ModelEvent, ModelVerb, RecordState } from '../events.ts'
import type { Model, RelationField } from '../models/data-model.ts'
import { idKey } from '../models/ids.ts'
import { sameValue } from '../models/values.ts'
import { recordKey, type RecordRef, type Snapshot } from './snapshot.ts'

/** An event before it is stamped with its publication time. */
export type PendingEvent = Omit<ModelEvent, 'at'>

/** An association change, whose record's current state the caller adds as `node`. */
export interface AssociationChange extends RecordRef {
  readonly verb: Extract<ModelVerb, 'ADDED_TO' | 'REMOVED_FROM'>
  readonly attribute: string
  readonly ids: string[]
}

export interface WriteDiff {
  readonly records: PendingEvent[]
  readonly associations: AssociationChange[]
}

class Associations {
  readonly #changes = new Map<string, AssociationChange>()

  add(ref: RecordRef, verb: AssociationChange['verb'], attribute: string, id: string): void {
    const key = `${recordKey(ref.model, ref.id)}:${verb}:${attribute}`
    let change = this.#changes.get(key)
    if (!change) this.#changes.set(key, (change = { model: ref.model, id: ref.id, verb, attribute, ids: [] }))
    if (!change.ids.includes(id)) change.ids.push(id)
  }

  list(): AssociationChange[] {
    return [...this.#changes.values()]
  }
}

function changedFields(model: Model, before: RecordState, after: RecordState): string[] {
  return model.scalars
    .filter((f) => f.name in before && f.name in after && !sameValue(before[f.name], after[f.name]))
    .map((f) => f.name)
}

/** The parent a foreign-key relation points at in `state`, if it holds the parent's id. */
function parentOf(relation: RelationField, state: RecordState | undefined): RecordRef | undefined {
  const [from] = relation.relationFromFields ?? []
  const [to] = relation.relationToFields ?? []
  const parent = relation.target
  if (!state || !from || to !== parent.idField || state[from] == null) return undefined
  return { model: parent, id: idKey(state[from]) }
}

export function diffSnapshots(before: Snapshot, after: Snapshot): WriteDiff {
  const records: PendingEvent[] = []
  const associations = new Associations()
  const keys = new Set([...before.states.keys(), ...after.states.keys()])

  for (const key of keys) {
    const was = before.states.get(key)
    const now = after.states.get(key)
    const { model, id } = (now ?? was)!
    if (now && !was) records.push({ model: model.name, verb: 'CREATED', recordId: id, node: now.state })
    else if (was && !now) records.push({ model: model.name, verb: 'DELETED', recordId: id, previous: was.state })
    else if (was && now) {
      const updatedFields = changedFields(model, was.state, now.state)
      if (updatedFields.length)
        records.push({
          model: model.name,
          verb: 'UPDATED',
          recordId: id,
          node: now.state,
          previous: was.state,
          updatedFields,
        })
    }
    // A foreign key set, changed or cleared moves the record between parents' collections.
    for (const relation of model.relations) {
      if (!relation.relationFromFields?.length) continue
      const back = relation.back
      if (!back) continue
      const from = parentOf(relation, was?.state)
      const to = parentOf(relation, now?.state)
      if (from?.id === to?.id) continue
      if (from) associations.add(from, 'REMOVED_FROM', back.name, id)
      if (to) associations.add(to, 'ADDED_TO', back.name, id)
    }
  }

  // Many-to-many links: compare the id sets loaded before and after, on both sides.
  const linkKeys = new Set([...before.links.keys(), ...after.links.keys()])
  for (const key of linkKeys) {
    const was = before.links.get(key)
    const now = after.links.get(key)
    const ref = (now ?? was)!
    // A link set loaded on one side only is known empty on the other when the record was created or deleted.
    const known = was && now ? true : was ? !after.has(ref) : !before.has(ref)
    if (!known) continue
    const wasIds = was?.ids ?? new Set<string>()
    const nowIds = now?.ids ?? new Set<string>()
    const { relation } = ref
    const back = relation.back!
    for (const added of nowIds) {
      if (wasIds.has(added)) continue
      associations.add(ref, 'ADDED_TO', relation.name, added)
      associations.add({ model: relation.target, id: added }, 'ADDED_TO', back.name, ref.id)
    }
    for (const removed of wasIds) {
      if (nowIds.has(removed)) continue
      associations.add(ref, 'REMOVED_FROM', relation.name, removed)
      associations.add({ model: relation.target, id: removed }, 'REMOVED_FROM', back.name, ref.id)
    }
  }
  return { records, associations: associations.list() }
}
