/**
 * A snapshot of the records a write may touch, flattened from Prisma results with an include
 * tree: each record's scalar state, and the id sets of its many-to-many relations.
 */
import type { Model, RelationField } from '../models/data-model.ts'
import { idKey } from '../models/ids.ts'
import type { RecordState } from '../events.ts'
import type { IncludeTree } from './write-plan.ts'

export interface RecordRef {
  readonly model: Model
  readonly id: string
}

export interface LinkSet extends RecordRef {
  /** A many-to-many relation of `model`. */
  readonly relation: RelationField
  readonly ids: ReadonlySet<string>
}

export const recordKey = (model: Model, id: string) => `${model.name}:${id}`

export class Snapshot {
  readonly states = new Map<string, RecordRef & { state: RecordState }>()
  readonly links = new Map<string, LinkSet>()

  /** The scalar fields of a record as Prisma returned it (relations dropped). */
  static scalars(model: Model, row: Record<string, unknown>): RecordState {
    return Object.fromEntries(model.scalars.filter((f) => f.name in row).map((f) => [f.name, row[f.name]]))
  }

  /** Adds Prisma rows of `model` loaded with `include`, and every related row they carry. */
  add(model: Model, rows: readonly Record<string, unknown>[], include: IncludeTree = {}): this {
    for (const row of rows) {
      const id = idKey(row[model.idField])
      const key = recordKey(model, id)
      if (!this.states.has(key)) this.states.set(key, { model, id, state: Snapshot.scalars(model, row) })
      for (const relation of model.relations) {
        const nested = include[relation.name]
        if (!nested || !(relation.name in row)) continue
        const target = relation.target
        const related =
          row[relation.name] == null
            ? []
            : Array.isArray(row[relation.name])
              ? (row[relation.name] as Record<string, unknown>[])
              : [row[relation.name] as Record<string, unknown>]
        if (relation.isManyToMany) {
          const ids = new Set(related.map((r) => idKey(r[target.idField])))
          this.links.set(`${key}:${relation.name}`, { model, id, relation, ids })
        }
        this.add(target, related, nested.include)
      }
    }
    return this
  }

  has(ref: RecordRef): boolean {
    return this.states.has(recordKey(ref.model, ref.id))
  }
}
