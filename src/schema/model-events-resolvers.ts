/** Resolvers of `mEvents` subscriptions and `publishM` mutations. */
import type { GatewayContext } from '../context.ts'
import { badInput, notFound } from '../errors.ts'
import { modelTopic, type DeliveredModelEvent, type ModelEvent, type ModelVerb } from '../events.ts'
import { modelEventSelection, watchedIds } from '../delivery/model-events.ts'
import { ResumedSelection, resumeSubscription } from '../delivery/resume.ts'
import type { DataModel, Model } from '../models/data-model.ts'
import { idKey, parseId } from '../models/ids.ts'
import { modelNames } from '../models/naming.ts'
import { toPrismaWhere, type Where } from '../models/where.ts'
import { Snapshot } from '../prisma/snapshot.ts'
import { checkData } from '../rooms/validation.ts'
import { delegateOf } from './model-resolvers.ts'

type Args = Record<string, unknown>

/** The largest `data` a `publishM` call may send, serialized. */
export const MAX_PUBLISH_BYTES = 64 * 1024

function parseIds(model: Model, ids: unknown[]): unknown[] {
  return ids.map((id) => parseId(model.idType, id, `${model.name} id`))
}

function subscribeToEvents(model: Model) {
  return async (_parent: unknown, args: Args, context: GatewayContext) => {
    context.access.assertRead(model.name)
    const ids = args.ids as unknown[] | null | undefined
    if (ids && ids.length === 0)
      throw badInput(
        `${modelNames(model.name).events}: ids must name at least one ${model.name} (omit ids for every event)`,
      )
    const selection = modelEventSelection(model.name, {
      ids: ids ? watchedIds(parseIds(model, ids).map(idKey)) : undefined,
      where: toPrismaWhere(model, args.where as Where | null),
      // A copy of its own size: graphql-js builds a list argument by pushing, which leaves room
      // for 16, and the subscription keeps it for its life.
      verbs: args.verbs ? [...(args.verbs as ModelVerb[])] : undefined,
      visible: context.access.rowFilter(model),
    })
    const topic = modelTopic(model.name)
    const after = args.after as string | null | undefined
    if (after == null) return context.hub.subscribe(topic, selection)
    // Attached before the replay is read, so that what is published meanwhile comes live.
    const resumed = new ResumedSelection(selection, modelEventHooks)
    const subscription = context.hub.subscribe(topic, resumed)
    await resumeSubscription(
      subscription,
      resumed,
      () => context.bus.resume(topic, after),
      ({ payload, mark }) => ({ ...payload, cursor: mark.cursor(), mark }),
    )
    return subscription
  }
}

/** A model event carries its mark and cursor as fields. */
const modelEventHooks = {
  markOf: (event: DeliveredModelEvent) => event.mark,
  withCursor: (event: DeliveredModelEvent, cursor: string): DeliveredModelEvent => ({ ...event, cursor }),
}

function publish(model: Model) {
  return async (_parent: unknown, args: Args, context: GatewayContext) => {
    context.access.assertWrite(model.name, 'publish to')
    const ids = parseIds(model, args.ids as unknown[])
    const data = checkData(args.data, MAX_PUBLISH_BYTES)
    const rows = await delegateOf(context, model.name).findMany({ where: { [model.idField]: { in: ids } } })
    const found = new Map(rows.map((row) => [idKey(row[model.idField]), row]))
    const requested = [...new Set(ids.map(idKey))]
    const missing = requested.filter((id) => !found.has(id))
    if (missing.length) throw notFound(`${model.name} ${missing.join(', ')} not found`, { ids: missing })
    const at = new Date().toISOString()
    for (const id of requested) {
      const event: ModelEvent = {
        model: model.name,
        verb: 'MESSAGE',
        recordId: id,
        node: Snapshot.scalars(model, found.get(id)!),
        data,
        at,
      }
      await context.bus.publish(modelTopic(model.name), event)
    }
    return requested
  }
}

export function modelEventResolvers(dataModel: DataModel) {
  const Subscription: Record<
    string,
    { subscribe: ReturnType<typeof subscribeToEvents>; resolve: (event: DeliveredModelEvent) => DeliveredModelEvent }
  > = {}
  const Mutation: Record<string, ReturnType<typeof publish>> = {}
  for (const model of dataModel.models) {
    const names = modelNames(model.name)
    Subscription[names.events] = { subscribe: subscribeToEvents(model), resolve: (event) => event }
    Mutation[names.publish] = publish(model)
  }
  return { Subscription, Mutation }
}
