/**
 * The context a group's executions get (docs/architecture.md §6). A
 * group executes each event once for all its members, so its context is built from the group
 * key's viewer part alone: the server's parts (the same for every viewer), a viewer holding only
 * the key's role, and a `GroupAccess` answering from what the policies made of the members.
 * Anything else (the viewer's id or claims, the connection, the request) is not there, and
 * reading it throws `IsolationError` instead of answering with one member's value for all.
 * Built once per group, at its first event.
 */
import type { PolicyView } from '../auth/access.ts'
import { GroupAccess } from '../auth/group-access.ts'
import type { GatewayContext, ServerContext } from '../context.ts'
import { IsolationError } from '../errors.ts'

/** The server's parts of a context, the same for every viewer: listed, so that adding one is a decision. */
const serverParts: { readonly [K in keyof ServerContext]-?: true } = {
  prisma: true,
  dataModel: true,
  bus: true,
  hub: true,
  rooms: true,
  logger: true,
}
const serverKeys = Object.keys(serverParts) as (keyof ServerContext)[]

const shared = (path: string, property: string | symbol) =>
  new IsolationError(
    `${path}.${String(property)}`,
    "a group's context is shared by its members and its events, and cannot be written",
  )

/** `target`, frozen, whose reads of anything it does not hold throw (`path` names it in the error). */
function keyOnly<T extends object>(path: string, target: T): T {
  return new Proxy(Object.freeze(target), {
    get(held, property, receiver) {
      if (typeof property === 'symbol' || property in held) return Reflect.get(held, property, receiver)
      // Probes of generic code (is it a promise? does it serialise itself?), not reads of a member.
      if (property === 'then' || property === 'toJSON') return undefined
      throw new IsolationError(`${path}.${property}`)
    },
    set(_held, property) {
      throw shared(path, property)
    },
    defineProperty(_held, property) {
      throw shared(path, property)
    },
    deleteProperty(_held, property) {
      throw shared(path, property)
    },
  })
}

/** The context of a group's executions: `server`'s shared parts and what `view` holds, nothing else. */
export function groupContext(server: ServerContext, view: PolicyView): GatewayContext {
  const context: Record<string, unknown> = {}
  for (const key of serverKeys) context[key] = server[key]
  context.viewer = keyOnly('context.viewer', view.role ? { role: view.role } : {})
  context.access = new GroupAccess(view)
  return keyOnly('context', context) as unknown as GatewayContext
}
