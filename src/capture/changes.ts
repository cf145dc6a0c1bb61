/**
 * A committed transaction's row changes, as the replication stream gave them, turned into the
 * events the realtime extension publishes for the same writes (docs/capture.md): CREATED,
 * UPDATED (with `previous` and `updatedFields`) and DELETED for a model's rows; ADDED_TO and
 * REMOVED_FROM on the parent when a foreign key is set, changed or cleared, and on both sides
 * when a row of an implicit many-to-many table is inserted or deleted. Events follow the
 * statements' order; a row's own event comes before the association events it causes.
 */
import type { RecordState } from '../events.ts'
import type { Model, RelationField } from '../models/data-model.ts'
import { idKey } from '../models/ids.ts'
import { sameValue } from '../models/values.ts'
import type { PendingEvent } from '../prisma/diff.ts'
import type { ColumnValue, RelationMessage } from './pgoutput.ts'
import type { CapturedTable, JoinTable, ModelTable } from './tables.ts'
import { fieldValue } from './values.ts'

export interface RowChange {
  readonly table: CapturedTable
  readonly relation: RelationMessage
  readonly kind: 'insert' | 'update' | 'delete'
  readonly row?: readonly ColumnValue[]
  readonly old?: { readonly kind: 'key' | 'full'; readonly row: readonly ColumnValue[] }
}

/** A row's columns as the model's fields; unchanged TOASTed columns taken from `fallback` (or left out). */
function rowState(table: ModelTable, relation: RelationMessage, row: readonly ColumnValue[], fallback?: RecordState) {
  const state: Record<string, unknown> = {}
  relation.columns.forEach((column, i) => {
    const field = table.columns.get(column.name)
    if (!field) return
    const value = row[i]
    if (value !== undefined && value !== null && typeof value === 'object') {
      if (fallback && field.name in fallback) state[field.name] = fallback[field.name]
      return
    }
    state[field.name] = fieldValue(field, value ?? null)
  })
  // Fields in model order, as Prisma returns them.
  return Object.fromEntries(table.model.scalars.filter((f) => f.name in state).map((f) => [f.name, state[f.name]]))
}

/** The parent a foreign-key relation points at in `state`, if it holds the parent's id (as `diff.ts`'s). */
function parentId(relation: RelationField, state: RecordState | undefined): string | undefined {
  const [from] = relation.relationFromFields ?? []
  const [to] = relation.relationToFields ?? []
  if (!state || !from || to !== relation.target.idField || state[from] == null) return undefined
  return idKey(state[from])
}

interface Association {
  readonly model: Model
  readonly id: string
  readonly verb: 'ADDED_TO' | 'REMOVED_FROM'
  readonly attribute: string
  readonly ids: string[]
}

/** A slot in the event list: a record's own event, or an association whose `node` is filled in at the end. */
type Slot = PendingEvent | Association

const isAssociation = (slot: Slot): slot is Association => 'ids' in slot

/** Records (by `recordKey`) in the state a transaction's association events show as `node`. */
export type LoadedNodes = ReadonlyMap<string, RecordState>

export const recordKey = (model: Model, id: string) => `${model.name}:${id}`

/** A transaction's events, but for the `node` of association events whose record it did not write. */
export interface EventPlan {
  /** The records to read first (by model: ids); empty for most transactions. */
  readonly toLoad: ReadonlyMap<Model, ReadonlySet<string>>
  /** The events, with `loaded` holding (at least) the records of `toLoad` that exist. */
  events(loaded: LoadedNodes): PendingEvent[]
}

/**
 * Plans a transaction's events. Change capture reads what several plans need in one query per
 * model and completes them together, and publishes the transactions of one read from the stream
 * without yielding between them when none needs anything (docs/architecture.md §11).
 */
export function planEvents(changes: readonly RowChange[]): EventPlan {
  const slots: Slot[] = []
  /** The last state of every record this transaction wrote (undefined: deleted). */
  const written = new Map<string, RecordState | undefined>()
  const associate = (model: Model, id: string, verb: Association['verb'], attribute: string, other: string) =>
    slots.push({ model, id, verb, attribute, ids: [other] })

  for (const change of changes) {
    if (change.table.kind === 'join') {
      joinChange(change.table, change, associate)
      continue
    }
    const table = change.table
    const model = table.model
    const previous = change.old ? rowState(table, change.relation, change.old.row) : undefined
    const fullPrevious = change.old?.kind === 'full' ? previous : undefined
    const node = change.row ? rowState(table, change.relation, change.row, fullPrevious) : undefined
    const id = idKey((node ?? previous)![model.idField])
    if (change.kind === 'insert') {
      slots.push({ model: model.name, verb: 'CREATED', recordId: id, node: node! })
    } else if (change.kind === 'update') {
      // Without the old row (REPLICA IDENTITY not FULL) the change is unknown: every field counts as updated.
      const updatedFields = fullPrevious
        ? model.scalars
            .filter((f) => f.name in fullPrevious && f.name in node! && !sameValue(fullPrevious[f.name], node![f.name]))
            .map((f) => f.name)
        : model.scalars.filter((f) => !f.isId).map((f) => f.name)
      if (updatedFields.length)
        slots.push({
          model: model.name,
          verb: 'UPDATED',
          recordId: id,
          node: node!,
          previous: previous ?? { [model.idField]: node![model.idField] },
          updatedFields,
        })
    } else {
      slots.push({ model: model.name, verb: 'DELETED', recordId: id, previous: previous! })
    }
    written.set(recordKey(model, id), node)
    // A foreign key set, changed or cleared moves the record between parents' collections. An
    // update without the old row cannot tell where it came from: nothing is said.
    if (change.kind === 'update' && !fullPrevious) continue
    for (const relation of model.relations) {
      if (!relation.relationFromFields?.length || !relation.back) continue
      const from = parentId(relation, change.kind === 'insert' ? undefined : previous)
      const to = parentId(relation, node)
      if (from === to) continue
      if (from) associate(relation.target, from, 'REMOVED_FROM', relation.back.name, id)
      if (to) associate(relation.target, to, 'ADDED_TO', relation.back.name, id)
    }
  }

  // The node of an association event: the record's state after this transaction.
  const toLoad = new Map<Model, Set<string>>()
  for (const slot of slots) {
    if (isAssociation(slot) && !written.has(recordKey(slot.model, slot.id)))
      toLoad.set(slot.model, (toLoad.get(slot.model) ?? new Set()).add(slot.id))
  }
  return {
    toLoad,
    events: (loaded) =>
      slots.map((slot) => {
        if (!isAssociation(slot)) return slot
        const k = recordKey(slot.model, slot.id)
        const node = written.has(k) ? written.get(k) : loaded.get(k)
        return {
          model: slot.model.name,
          verb: slot.verb,
          recordId: slot.id,
          attribute: slot.attribute,
          ...(slot.verb === 'ADDED_TO' ? { addedIds: slot.ids } : { removedIds: slot.ids }),
          ...(node ? { node } : {}),
        }
      }),
  }
}

function joinChange(
  table: JoinTable,
  change: RowChange,
  associate: (model: Model, id: string, verb: Association['verb'], attribute: string, other: string) => void,
): void {
  const ids = (row: readonly ColumnValue[] | undefined) => {
    if (!row) return undefined
    const a = row[change.relation.columns.findIndex((c) => c.name === 'A')]
    const b = row[change.relation.columns.findIndex((c) => c.name === 'B')]
    return typeof a === 'string' && typeof b === 'string' ? { a, b } : undefined
  }
  const link = (verb: Association['verb'], pair: { a: string; b: string } | undefined) => {
    if (!pair) return
    associate(table.a.model, pair.a, verb, table.a.name, pair.b)
    associate(table.b.model, pair.b, verb, table.b.name, pair.a)
  }
  const before = ids(change.old?.row)
  const after = ids(change.row)
  if (change.kind === 'delete' || (change.kind === 'update' && before))
    if (!after || !before || before.a !== after.a || before.b !== after.b) link('REMOVED_FROM', before)
  if (
    change.kind === 'insert' ||
    (change.kind === 'update' && (!before || before.a !== after?.a || before.b !== after?.b))
  )
    link('ADDED_TO', after)
}
