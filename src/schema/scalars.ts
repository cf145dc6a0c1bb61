/** GraphQL scalars for Prisma's types, from graphql-scalars (the-guild). */
import { BigIntResolver, ByteResolver, DateTimeResolver, JSONResolver } from 'graphql-scalars'

const customScalars = {
  DateTime: DateTimeResolver,
  JSON: JSONResolver,
  BigInt: BigIntResolver,
  Byte: ByteResolver,
}
type CustomScalar = keyof typeof customScalars

/** `DateTime` and `JSON` appear in every schema (event times, message data); others when used. */
const alwaysUsed: CustomScalar[] = ['DateTime', 'JSON']

const isCustom = (name: string): name is CustomScalar => name in customScalars

/** The scalar declarations and their resolvers, for the custom scalars among `used`. */
export function customScalarsFor(used: Iterable<string>) {
  const names = [...new Set([...alwaysUsed, ...[...used].filter(isCustom)])].sort()
  return {
    typeDefs: names.map((name) => `scalar ${name}`).join('\n'),
    resolvers: Object.fromEntries(names.map((name) => [name, customScalars[name]])),
  }
}

/** The GraphQL type of a Prisma scalar; `Decimal` travels as a string to keep its precision. */
const graphqlScalarOf: Record<string, string> = {
  Int: 'Int',
  Float: 'Float',
  String: 'String',
  Boolean: 'Boolean',
  DateTime: 'DateTime',
  Json: 'JSON',
  BigInt: 'BigInt',
  Decimal: 'String',
  Bytes: 'Byte',
}

export function graphqlScalar(prismaType: string): string {
  const type = graphqlScalarOf[prismaType]
  if (!type) throw new Error(`mizzen: Prisma type ${prismaType} has no GraphQL mapping`)
  return type
}

/** Types whose fields can be filtered with comparisons (`<Type>Filter` inputs). */
export const filterableScalars = ['ID', 'Int', 'Float', 'String', 'Boolean', 'DateTime', 'BigInt'] as const
