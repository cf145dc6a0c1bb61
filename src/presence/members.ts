/**
 * From connections to presence members (docs/architecture.md §13): every connection of one user
 * (JWT subject) in a room is one member, keyed by the user id; an anonymous or service
 * connection is a member of its own, keyed by its connection id. A member's meta is the most
 * recently set among its connections'.
 */
import type { Role } from '../auth/viewer.ts'
import type { PresenceEntry } from '../rooms/registry.ts'

export interface PresenceMember {
  readonly key: string
  readonly userId: string | null
  readonly role: Role
  /** Its connections in the room (0 in a `LEAVE`). */
  readonly connections: number
  readonly meta: unknown
}

export type PresenceKind = 'SYNC' | 'JOIN' | 'LEAVE' | 'UPDATE'

/** What a `presence(room)` subscription receives. */
export interface PresenceEvent {
  readonly kind: PresenceKind
  readonly room: string
  /** Every member (SYNC), or the members that changed. */
  readonly members: readonly PresenceMember[]
  /** Members after the event. */
  readonly count: number
  readonly at: Date
  /** Its number in its room's stream on this gateway (SYNC: the last event it includes). */
  readonly seq: number
}

const byKey = (a: PresenceMember, b: PresenceMember) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)

/** The members `entries` make, by key. */
export function membersOf(entries: readonly PresenceEntry[]): Map<string, PresenceMember> {
  const grouped = new Map<string, { member: PresenceMember; metaAt: number }>()
  for (const entry of entries) {
    const key = entry.role === 'user' && entry.userId !== null ? entry.userId : entry.connectionId
    const known = grouped.get(key)
    if (!known) {
      grouped.set(key, {
        member: { key, userId: entry.userId, role: entry.role, connections: 1, meta: entry.meta },
        metaAt: entry.metaAt,
      })
      continue
    }
    const newer = entry.metaAt > known.metaAt
    known.member = {
      ...known.member,
      connections: known.member.connections + 1,
      meta: newer ? entry.meta : known.member.meta,
    }
    if (newer) known.metaAt = entry.metaAt
  }
  return new Map([...grouped].map(([key, { member }]) => [key, member]))
}

/** Members sorted by key. */
export const sortedMembers = (members: Iterable<PresenceMember>): PresenceMember[] => [...members].sort(byKey)

/** Whether a watcher would see a difference (an UPDATE). */
export const sameMember = (a: PresenceMember, b: PresenceMember): boolean =>
  a.connections === b.connections && a.role === b.role && JSON.stringify(a.meta) === JSON.stringify(b.meta)
