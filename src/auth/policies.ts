/**
 * Who may do what. One typed object, passed to `createGateway({ policies })`:
 *
 * - `models`: per model, who may read it (queries and `mEvents`), a row filter applied to every
 *   record they read and every event delivered to them, and who may write it. A model that is not
 *   listed is for services only: adding a model to the schema exposes nothing until it is listed.
 * - `rooms`: per room name pattern, who may join by subscribing, who may read its members and
 *   presence, and who may broadcast.
 *
 * Rules name the least role (`'anonymous'` < `'user'` < `'service'`) or are functions of the
 * viewer. A `service` viewer is never filtered.
 */
import { ConfigError } from '../errors.ts'
import type { Where } from '../models/where.ts'
import { roleRank, type Role, type Viewer } from './viewer.ts'

export type Rule = Role | ((viewer: Viewer) => boolean)
/** A room rule may also look at the room's name (e.g. `user:<id>` rooms for that user only). */
export type RoomRule = Role | ((viewer: Viewer, room: string) => boolean)

export interface ModelPolicy {
  /** Who may query the model and subscribe to its events. @default 'service' (a model left out is closed) */
  read?: Rule
  /**
   * The records a viewer may see, as a Prisma-style where built from the viewer (ids may be
   * given as strings), `true` for all, `false` for none. Applied to queries and, in memory, to
   * every event: to `node` and to `previous`. @default all records
   */
  filter?: (viewer: Viewer) => Where | boolean
  /** Who may create, update, delete and publish. @default 'service' */
  write?: Rule
}

export interface RoomPolicy {
  /** Room names this policy covers: exact name, or a RegExp. The first match applies. */
  match: string | RegExp
  /** Who may join these rooms by subscribing to `room(name)`. @default 'anonymous' */
  join?: RoomRule
  /**
   * Who may read their members and presence (`roomMembers`, `presence`): `'member'` for the
   * room's own members (a connection of theirs, or of the same user, is in it) and services, or a
   * rule that decides alone (a role: `'anonymous'` opens it to everyone, `'service'` closes it
   * to members; a function of the viewer and the room). @default 'member'
   */
  members?: MembersRule
  /** Who may broadcast to them, and join or remove connections by id. @default 'service' */
  broadcast?: RoomRule
}

/** Who may read a room's members: its members (and services), or a room rule. */
export type MembersRule = 'member' | RoomRule

export interface Policies {
  /** By model name; models not listed get the defaults. */
  models?: Record<string, ModelPolicy>
  /** Checked in order. Rooms no pattern matches get the defaults. */
  rooms?: RoomPolicy[]
  /** Who may blast, `leaveAll`, and join or leave connections by id. @default 'service' */
  manageConnections?: Rule
  /** Who may list every room of the gateway (`rooms`). @default 'service' */
  listRooms?: Rule
}

export function allows(rule: Rule | RoomRule, viewer: Viewer, room = ''): boolean {
  return typeof rule === 'function' ? rule(viewer, room) : roleRank(viewer.role) >= roleRank(rule)
}

/**
 * Policies name models by name: one that names no model of the data model is a mistake (a typo,
 * another project's policies) that would otherwise leave the real model on the defaults.
 */
export function checkPolicyModels(policies: Policies, modelNames: readonly string[]): void {
  const unknown = Object.keys(policies.models ?? {}).filter((name) => !modelNames.includes(name))
  if (unknown.length) {
    throw new ConfigError(
      'policies.models',
      `${unknown.map((name) => `"${name}"`).join(', ')} ${unknown.length === 1 ? 'is not a model' : 'are not models'} of the data model (its models: ${modelNames.join(', ') || 'none'})`,
    )
  }
}

export const modelPolicy = (policies: Policies, model: string): ModelPolicy => policies.models?.[model] ?? {}

export function roomPolicy(policies: Policies, room: string): RoomPolicy | undefined {
  return policies.rooms?.find((policy) =>
    typeof policy.match === 'string' ? policy.match === room : policy.match.test(room),
  )
}
