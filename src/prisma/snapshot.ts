/**
 * A snapshot of the records a write may touch, flattened from Prisma results with an include
 * tree: each record's scalar state, and the id sets of its many-to-many relations.
 */
import { findModel, relationFields, scalarFields } from '../models/fields.ts'
import { idKey } from '../models/ids.ts'
import type { DataModelMeta, ModelMeta } from '../models/meta.ts'
import type { RecordState } from '../events.ts'
import { isManyToMany, type IncludeTree } from './write-plan.ts'

export interface RecordRef {
  readonly model: string
  readonly id: string
}

export interface LinkSet extends RecordRef {
  readonly field: string
  readonly ids: ReadonlySet<string>
}

export const recordKey = (model: string, id: string) => `${model}:${id}`

export class Snapshot {
  readonly states = new Map<string, RecordRef & { state: RecordState }>()
  readonly links = new Map<string, LinkSet>()

  constructor(private readonly dataModel: DataModelMeta) {}

  /** The scalar fields of a record as Prisma returned it (relations dropped). */
  static scalars(model: ModelMeta, row: Record<string, unknown>): RecordState {
    return Object.fromEntries(scalarFields(model).filter((f) => f.name in row).map((f) => [f.name, row[f.name]]))
  }

  /** Adds Prisma rows of `model` loaded with `include`, and every related row they carry. */
  add(model: ModelMeta, rows: readonly Record<string, unknown>[], include: IncludeTree = {}): this {
    for (const row of rows) {
      const id = idKey(row[model.idField])
      const key = recordKey(model.name, id)
      if (!this.states.has(key)) this.states.set(key, { model: model.name, id, state: Snapshot.scalars(model, row) })
      for (const relation of relationFields(model)) {
        const nested = include[relation.name]
        if (!nested || !(relation.name in row)) continue
        const target = findModel(this.dataModel, relation.type)
        const related = row[relation.name] == null ? [] : Array.isArray(row[relation.name]) ? (row[relation.name] as Record<string, unknown>[]) : [row[relation.name] as Record<string, unknown>]
        if (isManyToMany(this.dataModel, relation)) {
          const ids = new Set(related.map((r) => idKey(r[target.idField])))
          this.links.set(`${key}:${relation.name}`, { model: model.name, id, field: relation.name, ids })
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
