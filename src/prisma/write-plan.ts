/**
 * What a write may touch besides its target records, read from its arguments: which relations
 * to load before and after it (an `include` tree following the nested writes), and which other
 * records it connects (so records that already existed are not mistaken for created ones).
 */
import type { Model } from '../models/data-model.ts'

/** A Prisma `include` tree: relation name → true or a nested include. */
export interface IncludeTree {
  [relation: string]: { include: IncludeTree }
}

/** Unique `where`s of records a write connects, by model. */
export type ConnectedRecords = Map<Model, Record<string, unknown>[]>

const asArray = (value: unknown): unknown[] =>
  value === undefined || value === null ? [] : Array.isArray(value) ? value : [value]
const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !(value instanceof Date)

export class WritePlan {
  readonly include: IncludeTree = {}
  readonly connected: ConnectedRecords = new Map()

  /** Adds what `data` (a create or update payload for `model`) touches. */
  addData(model: Model, data: unknown, include: IncludeTree = this.include): void {
    for (const item of asArray(data)) {
      if (!isObject(item)) continue
      for (const relation of model.relations) {
        const ops = item[relation.name]
        if (!isObject(ops)) continue
        const nested = (include[relation.name] ??= { include: {} }).include
        this.addNestedOps(relation.target, ops, nested)
      }
    }
  }

  /** Loads every many-to-many relation too: deleting a record removes its links. */
  addManyToMany(model: Model): void {
    for (const relation of model.relations) {
      if (relation.isManyToMany) this.include[relation.name] ??= { include: {} }
    }
  }

  private addNestedOps(target: Model, ops: Record<string, unknown>, include: IncludeTree): void {
    for (const [op, value] of Object.entries(ops)) {
      switch (op) {
        case 'create':
          this.addData(target, value, include)
          break
        case 'createMany':
          this.addData(target, isObject(value) ? value.data : undefined, include)
          break
        case 'connect':
        case 'set':
          for (const where of asArray(value)) if (isObject(where)) this.connect(target, where)
          break
        case 'connectOrCreate':
          for (const entry of asArray(value)) {
            if (!isObject(entry)) continue
            if (isObject(entry.where)) this.connect(target, entry.where)
            this.addData(target, entry.create, include)
          }
          break
        case 'update':
        case 'updateMany':
          // To-many: [{ where, data }]; to-one: data, or { where, data }.
          for (const entry of asArray(value)) {
            if (isObject(entry))
              this.addData(target, 'data' in entry && isObject(entry.data) ? entry.data : entry, include)
          }
          break
        case 'upsert':
          for (const entry of asArray(value)) {
            if (!isObject(entry)) continue
            this.addData(target, entry.create, include)
            this.addData(target, entry.update, include)
          }
          break
        default:
          // disconnect, delete, deleteMany: the records are in the relation before the write.
          break
      }
    }
  }

  private connect(model: Model, where: Record<string, unknown>): void {
    const list = this.connected.get(model) ?? []
    list.push(where)
    this.connected.set(model, list)
  }
}
