/**
 * GraphQL names derived from a Prisma model name. Model `User` gives the field `user`, the list
 * `users`, the mutations `createUser`/`updateUser`/`deleteUser`/`publishUser`, the subscription
 * `userEvents` and the types `UserEvent`, `UserPrevious`, `UserWhereInput`, `UserCreateInput`, `UserUpdateInput`
 * and `UserOrderByInput`.
 */

export const lowerFirst = (name: string) => name.charAt(0).toLowerCase() + name.slice(1)

/** A regular English plural (`category` → `categories`, `box` → `boxes`, `post` → `posts`). */
export function plural(name: string): string {
  if (/[^aeiou]y$/i.test(name)) return `${name.slice(0, -1)}ies`
  if (/(s|x|z|ch|sh)$/i.test(name)) return `${name}es`
  return `${name}s`
}

export interface ModelNames {
  readonly type: string
  readonly one: string
  readonly many: string
  readonly event: string
  /** The type of an event's `previous`: the model's scalar and enum fields only. */
  readonly previous: string
  readonly events: string
  readonly where: string
  readonly orderBy: string
  readonly create: string
  readonly update: string
  readonly createInput: string
  readonly updateInput: string
  readonly delete: string
  readonly publish: string
}

export function modelNames(model: string): ModelNames {
  const one = lowerFirst(model)
  return {
    type: model,
    one,
    many: plural(one),
    event: `${model}Event`,
    previous: `${model}Previous`,
    events: `${one}Events`,
    where: `${model}WhereInput`,
    orderBy: `${model}OrderByInput`,
    create: `create${model}`,
    update: `update${model}`,
    createInput: `${model}CreateInput`,
    updateInput: `${model}UpdateInput`,
    delete: `delete${model}`,
    publish: `publish${model}`,
  }
}
