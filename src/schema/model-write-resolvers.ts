/** Resolvers of `createM`, `updateM`, `deleteM`: writes through the realtime-extended client. */
import type { GatewayContext } from '../context.ts'
import { writeClientError } from '../errors.ts'
import type { DataModel, Model } from '../models/data-model.ts'
import { parseId } from '../models/ids.ts'
import { modelNames } from '../models/naming.ts'
import { toPrismaData } from '../models/write-data.ts'
import { delegateOf } from './model-resolvers.ts'
import { hasWritableFields } from './model-write-sdl.ts'

type Args = Record<string, unknown>
type WriteDelegate = Record<'create' | 'update' | 'delete', (args: Args) => Promise<unknown>>

/** Checks the write policy, then builds the Prisma arguments (so input errors come after FORBIDDEN) and writes. */
async function write(
  context: GatewayContext,
  model: Model,
  operation: 'create' | 'update' | 'delete',
  buildArgs: () => Args,
  id?: unknown,
) {
  context.access.assertWrite(model.name, operation)
  const args = buildArgs()
  const delegate = delegateOf(context, model.name) as unknown as WriteDelegate
  try {
    return await delegate[operation](args)
  } catch (error) {
    throw writeClientError(error, model.name, operation, id)
  }
}

export function modelWriteResolvers(dataModel: DataModel) {
  const Mutation: Record<string, (parent: unknown, args: Args, context: GatewayContext) => Promise<unknown>> = {}
  for (const model of dataModel.models) {
    const names = modelNames(model.name)
    const whereId = (id: unknown) => ({ [model.idField]: parseId(model.idType, id, `${model.name} id`) })
    Mutation[names.create] = (_parent, args, context) =>
      write(context, model, 'create', () => ({
        data: toPrismaData(model, (args.data as Args | undefined) ?? {}, 'create'),
      }))
    if (hasWritableFields(model)) {
      Mutation[names.update] = (_parent, args, context) =>
        write(
          context,
          model,
          'update',
          () => ({ where: whereId(args.id), data: toPrismaData(model, args.data as Args, 'update') }),
          args.id,
        )
    }
    Mutation[names.delete] = (_parent, args, context) =>
      write(context, model, 'delete', () => ({ where: whereId(args.id) }), args.id)
  }
  return { Mutation }
}
