/**
 * Who is asking. `anonymous`: no credentials. `user`: a verified JWT, `id` is its `sub`.
 * `service`: an API key (backends), or anyone while the gateway runs open (no credentials
 * configured, development only).
 */
export const roles = ['anonymous', 'user', 'service'] as const
export type Role = (typeof roles)[number]

export interface Viewer {
  readonly role: Role
  /** The user id (`sub`) of a `user`. */
  readonly id?: string
  /** The verified JWT claims of a `user`. */
  readonly claims?: Readonly<Record<string, unknown>>
  /** When the credentials stop being valid, in ms since the epoch. */
  readonly expiresAt?: number
}

export const anonymous: Viewer = Object.freeze({ role: 'anonymous' })
/** An API key's viewer, and everyone's while the gateway runs open: one object for all of them. */
export const service: Viewer = Object.freeze({ role: 'service' })

/**
 * A verified JWT's viewer: three fields, `expiresAt` read from the claims' `exp` when asked for (a
 * WebSocket connection keeps its viewer for its life, and a number past 2^31 kept in a field is
 * an object of its own: docs/performance.md, What an idle connection holds).
 */
export class UserViewer implements Viewer {
  readonly role = 'user' as const

  constructor(
    readonly id: string,
    readonly claims: Readonly<Record<string, unknown>>,
  ) {}

  get expiresAt(): number | undefined {
    const exp = this.claims.exp
    return typeof exp === 'number' ? exp * 1000 : undefined
  }
}

/** Roles are ordered: a `service` may do what a `user` may, and a `user` what `anonymous` may. */
export const roleRank = (role: Role) => roles.indexOf(role)
