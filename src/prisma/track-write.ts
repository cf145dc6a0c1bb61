/**
 * Runs one write inside a transaction and works out its events: reads the records it may touch
 * before it (in the same transaction, so no concurrent writer can slip in between), performs it,
 * reads them again, and diffs the two snapshots.
 */
import type { Model } from '../models/data-model.ts'
import { parseId } from '../models/ids.ts'
import { lowerFirst } from '../models/naming.ts'
import type { RecordState } from '../events.ts'
import { diffSnapshots, type PendingEvent } from './diff.ts'
import type { RowLocker } from './row-locks.ts'
import { recordKey, Snapshot, type RecordRef } from './snapshot.ts'
import { WritePlan, type IncludeTree } from './write-plan.ts'

type Row = Record<string, unknown>
type Args = Record<string, unknown>

/** The part of a Prisma model delegate used here. */
interface Delegate {
  findMany(args: Args): Promise<Row[]>
}

/** A Prisma client (or transaction client) addressed by model name. */
export type AnyClient = Record<string, unknown>

export const delegate = (client: AnyClient, model: string) => client[lowerFirst(model)] as Delegate

/** The writes the realtime extension tracks. */
export const trackedWrites = [
  'create',
  'createMany',
  'createManyAndReturn',
  'update',
  'updateMany',
  'updateManyAndReturn',
  'upsert',
  'delete',
  'deleteMany',
] as const
export type TrackedWrite = (typeof trackedWrites)[number]

const withInclude = (args: Args, include: IncludeTree) => (Object.keys(include).length ? { ...args, include } : args)

/**
 * Makes sure a write returns the id of its records, whatever the caller selected, and returns
 * how to give the caller exactly what they asked for.
 */
function withIdReturned(model: Model, args: Args): { args: Args; strip: (result: unknown) => unknown } {
  const select = args.select as Row | undefined
  const omit = args.omit as Row | undefined
  if (select && !select[model.idField]) {
    args = { ...args, select: { ...select, [model.idField]: true } }
  } else if (omit?.[model.idField]) {
    args = { ...args, omit: { ...omit, [model.idField]: false } }
  } else {
    return { args, strip: (result) => result }
  }
  const stripOne = (row: unknown) => {
    if (typeof row !== 'object' || row === null) return row
    const { [model.idField]: _id, ...rest } = row as Row
    return rest
  }
  return { args, strip: (result) => (Array.isArray(result) ? result.map(stripOne) : stripOne(result)) }
}

function targetWhere(operation: TrackedWrite, args: Args): Row | undefined {
  if (operation === 'create' || operation === 'createMany' || operation === 'createManyAndReturn') return undefined
  return (args.where as Row | undefined) ?? {}
}

function planFor(model: Model, operation: TrackedWrite, args: Args): WritePlan {
  const plan = new WritePlan()
  if (operation === 'upsert') {
    plan.addData(model, args.create)
    plan.addData(model, args.update)
  } else if (operation === 'delete' || operation === 'deleteMany') {
    plan.addManyToMany(model)
  } else {
    plan.addData(model, args.data)
  }
  return plan
}

/** A record's current state, as `loadStates` read it. */
interface LoadedState extends RecordRef {
  readonly state: RecordState
}

/** Loads the current state of records by id string, grouped by model, keyed by `recordKey`. */
async function loadStates(client: AnyClient, refs: readonly RecordRef[]): Promise<Map<string, LoadedState>> {
  const byModel = new Map<Model, Set<string>>()
  for (const ref of refs) byModel.set(ref.model, (byModel.get(ref.model) ?? new Set()).add(ref.id))
  const states = new Map<string, LoadedState>()
  for (const [model, ids] of byModel) {
    const rows = await delegate(client, model.name).findMany({
      where: { [model.idField]: { in: [...ids].map((id) => parseId(model.idType, id, model.name)) } },
    })
    for (const row of rows) {
      const id = String(row[model.idField])
      states.set(recordKey(model, id), { model, id, state: Snapshot.scalars(model, row) })
    }
  }
  return states
}

export interface TrackedResult {
  readonly result: unknown
  readonly events: PendingEvent[]
}

/**
 * Performs `write(args)` — the write itself, on the transaction `tx` — and returns its result
 * and the events it caused. `tx` must be the transaction the write runs in.
 */
export async function trackWrite(
  model: Model,
  tx: AnyClient,
  operation: TrackedWrite,
  args: Args,
  write: (args: Args) => Promise<unknown>,
  lockRows?: RowLocker,
): Promise<TrackedResult> {
  const plan = planFor(model, operation, args)
  const where = targetWhere(operation, args)

  const before = new Snapshot()
  if (where) {
    if (lockRows) {
      const targets = await delegate(tx, model.name).findMany({ where, select: { [model.idField]: true } })
      await lockRows(
        tx,
        model,
        targets.map((row) => row[model.idField]),
      )
    }
    before.add(model, await delegate(tx, model.name).findMany(withInclude({ where }, plan.include)), plan.include)
  }
  for (const [connected, wheres] of plan.connected) {
    before.add(connected, await delegate(tx, connected.name).findMany({ where: { OR: wheres } }))
  }

  const returning = withIdReturned(model, args)
  const result = await write(returning.args)

  const rootIds = new Set<unknown>()
  for (const row of Array.isArray(result) ? result : [result]) {
    if (typeof row === 'object' && row !== null && model.idField in row) rootIds.add((row as Row)[model.idField])
  }
  for (const record of before.states.values()) if (record.model === model) rootIds.add(record.state[model.idField])
  const after = new Snapshot()
  if (rootIds.size) {
    after.add(
      model,
      await delegate(tx, model.name).findMany(
        withInclude({ where: { [model.idField]: { in: [...rootIds] } } }, plan.include),
      ),
      plan.include,
    )
  }
  // Records seen before but not reached after (disconnected, or deleted): read what is left of them.
  const unseen = [...before.states.values()].filter((record) => !after.has(record))
  for (const left of (await loadStates(tx, unseen)).values()) after.add(left.model, [left.state])

  const diff = diffSnapshots(before, after)
  const missing = diff.associations.filter((a) => !after.states.has(recordKey(a.model, a.id)))
  const loaded = await loadStates(tx, missing)
  const associationEvents: PendingEvent[] = diff.associations.map((change) => {
    const key = recordKey(change.model, change.id)
    const node = after.states.get(key)?.state ?? loaded.get(key)?.state
    const ids = change.verb === 'ADDED_TO' ? { addedIds: change.ids } : { removedIds: change.ids }
    return {
      model: change.model.name,
      verb: change.verb,
      recordId: change.id,
      attribute: change.attribute,
      ...ids,
      ...(node ? { node } : {}),
    }
  })
  return { result: returning.strip(result), events: [...diff.records, ...associationEvents] }
}
