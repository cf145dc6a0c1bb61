/** What mizzen needs of a Prisma Client: any client `prisma generate` makes satisfies it. */

export interface PrismaClientLike {
  // Prisma's own signature is a web of generics; any generated client's `$extends` fits this one.
  $extends(...extensions: never[]): unknown
  $queryRawUnsafe(query: string, ...values: unknown[]): Promise<unknown>
  $disconnect(): Promise<void>
}

/**
 * The database provider a client was generated for (`sqlite`, `postgresql`, …). Prisma exposes
 * it only internally, so this may be undefined on a future version; callers must cope.
 */
export function activeProvider(client: unknown): string | undefined {
  const internals = client as { _engineConfig?: { activeProvider?: string }; _activeProvider?: string }
  return internals._engineConfig?.activeProvider ?? internals._activeProvider
}
