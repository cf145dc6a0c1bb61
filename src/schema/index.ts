/**
 * The gateway's executable schema: the static part (scalars, the server's own fields) and the
 * part generated from Prisma metadata.
 */
import { lexicographicSortSchema, type GraphQLSchema } from 'graphql'
import { createSchema } from 'graphql-yoga'
import type { GatewayContext } from '../context.ts'
import { linkDataModel, type DataModel } from '../models/data-model.ts'
import type { DataModelMeta } from '../models/meta.ts'
import { liveDirectiveTypeDefs } from '../live/directive.ts'
import { modelEventResolvers } from './model-events-resolvers.ts'
import { modelEventTypeDefs } from './model-events-sdl.ts'
import { modelResolvers } from './model-resolvers.ts'
import { modelTypeDefs, usedFieldTypes } from './model-sdl.ts'
import { modelWriteResolvers } from './model-write-resolvers.ts'
import { modelWriteTypeDefs } from './model-write-sdl.ts'
import { presenceResolvers } from './presence/resolvers.ts'
import { presenceTypeDefs } from './presence/sdl.ts'
import { roomResolvers, roomTypeDefs } from './rooms/index.ts'
import { assertNoClashes } from './clashes.ts'
import { customScalarsFor } from './scalars.ts'
import { version } from '../version.ts'

const baseTypeDefs = /* GraphQL */ `
  type Query {
    """The version of the mizzen gateway serving this schema."""
    mizzenVersion: String!
  }
`

const baseResolvers = { Query: { mizzenVersion: () => version } }

/** The schema for `model` (generated metadata, linked here, or a model linked already). */
export function buildSchema(model: DataModelMeta | DataModel): GraphQLSchema {
  const dataModel = linkDataModel(model)
  const scalars = customScalarsFor(usedFieldTypes(dataModel))
  const gatewayTypeDefs = [baseTypeDefs, scalars.typeDefs, roomTypeDefs, liveDirectiveTypeDefs, presenceTypeDefs]
  const generatedTypeDefs = [modelTypeDefs(dataModel), modelWriteTypeDefs(dataModel), modelEventTypeDefs(dataModel)]
  assertNoClashes(dataModel, gatewayTypeDefs, generatedTypeDefs)
  return createSchema<GatewayContext>({
    typeDefs: [...gatewayTypeDefs, ...generatedTypeDefs],
    resolvers: [
      scalars.resolvers,
      baseResolvers,
      modelResolvers(dataModel),
      modelWriteResolvers(dataModel),
      modelEventResolvers(dataModel),
      roomResolvers,
      presenceResolvers,
    ],
  })
}

/** The schema as `schema.graphql` holds it: sorted, so that diffs show what changed. */
export function printableSchema(dataModel: DataModelMeta | DataModel): GraphQLSchema {
  return lexicographicSortSchema(buildSchema(dataModel))
}
