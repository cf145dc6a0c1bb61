/**
 * The tables change capture reads, from the data model: each model's table (`@@map` or its
 * name) with its columns (`@map` or the field's name), and each implicit many-to-many relation's
 * join table (`_<relation name>`, columns `A` and `B`: the ids of the two models, `A` the one
 * whose name sorts first, as Prisma lays them out).
 */
import type { DataModel, Model, RelationField, ScalarField } from '../models/data-model.ts'

export interface ModelTable {
  readonly kind: 'model'
  readonly table: string
  readonly model: Model
  /** Column name → field. */
  readonly columns: ReadonlyMap<string, ScalarField>
}

export interface JoinTable {
  readonly kind: 'join'
  readonly table: string
  /** The relation field of the model whose id is in column `A`, and of the one in `B`. */
  readonly a: RelationField
  readonly b: RelationField
}

export type CapturedTable = ModelTable | JoinTable

export const columnOf = (field: { name: string; dbName?: string }) => field.dbName ?? field.name
export const tableOf = (model: Model) => model.dbName ?? model.name

export function capturedTables(dataModel: DataModel): Map<string, CapturedTable> {
  const tables = new Map<string, CapturedTable>()
  for (const model of dataModel.models) {
    const table = tableOf(model)
    tables.set(table, { kind: 'model', table, model, columns: new Map(model.scalars.map((f) => [columnOf(f), f])) })
  }
  for (const model of dataModel.models) {
    for (const relation of model.relations) {
      if (!relation.isManyToMany || !relation.back || !relation.relationName) continue
      const table = `_${relation.relationName}`
      if (tables.has(table)) continue
      // Column A holds the id of the model whose name sorts first (for a relation of a model
      // with itself, the field whose name sorts first).
      const [a, b] = [relation, relation.back].sort((x, y) =>
        x.model.name === y.model.name ? x.name.localeCompare(y.name) : x.model.name < y.model.name ? -1 : 1,
      ) as [RelationField, RelationField]
      tables.set(table, { kind: 'join', table, a, b })
    }
  }
  return tables
}

/** `"name"`, quoted for SQL. */
export const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`
