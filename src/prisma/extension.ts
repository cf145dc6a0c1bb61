/**
 * `realtime({ bus, dataModel })`: the Prisma Client extension that publishes an event for every record a
 * write creates, updates or deletes, and for every association it changes, once the write has
 * committed. Install it in the gateway and in any backend service that writes the same database:
 *
 *     const prisma = new PrismaClient({ adapter }).$extends(realtime({ bus, dataModel }))
 *
 * Install it last (outermost): inside transactions it hands your callback a client with its own
 * query hooks, and extensions added after it would not be on that client.
 *
 * How it stays commit-aware: every tracked write runs inside an interactive transaction (the
 * caller's, or one of its own), where it reads the touched records before and after the write
 * (on PostgreSQL after locking them, so no concurrent writer slips in between).
 * Events wait in the transaction's buffer and are published in order after the commit, and
 * dropped when it rolls back. A batch `$transaction([...])` is run as an interactive transaction
 * that replays each queued operation on the transaction client, so it gets the same guarantees.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import { Prisma } from '@prisma/client/extension'
import type { Bus } from '../bus/bus.ts'
import { linkDataModel, type DataModel } from '../models/data-model.ts'
import type { DataModelMeta } from '../models/meta.ts'
import { lowerFirst } from '../models/naming.ts'
import type { PendingEvent } from './diff.ts'
import { Publisher, type ErrorLogger, type PublisherStats } from './publisher.ts'
import { rowLockerFor } from './row-locks.ts'
import { trackedWrites, trackWrite, type AnyClient, type TrackedWrite } from './track-write.ts'

export interface RealtimeOptions {
  /** Where events go. */
  bus: Bus
  /** The data model of the client being extended: what the `mizzen` Prisma generator wrote (or a model linked already). */
  dataModel: DataModelMeta | DataModel
  /** Told when an event can't be published (the write stands). @default console.error */
  logger?: ErrorLogger
  /**
   * Where the deployment's model events come from. `database` (change capture, docs/capture.md):
   * PostgreSQL's log publishes every write, so the extension publishes nothing and adds no work
   * to writes (`publishM` messages go through the bus as always). @default "extension"
   */
  capture?: 'extension' | 'database'
}

/** The transaction a write belongs to, and the events it has produced so far. */
interface TransactionScope {
  readonly tx: AnyClient
  readonly events: PendingEvent[]
  /** Set while a batch transaction replays its queued operations on `tx`. */
  readonly replaying: boolean
}

interface QueryParams {
  model?: string
  operation: string
  args: unknown
  query: (args: unknown) => Promise<unknown>
  /** Prisma's own request parameters; `transaction` tells whether the query runs in one. */
  __internalParams?: { transaction?: { kind: string } }
}

/** What a transaction callback receives: the client without the methods Prisma leaves off it. */
type TransactionClient<Client> = Omit<Client, '$connect' | '$disconnect' | '$on' | '$transaction' | '$extends' | '$use'>

interface TransactionOptions {
  maxWait?: number
  timeout?: number
  isolationLevel?: string
}

/** `$transaction` keeps Prisma's signatures: a callback (interactive) or an array of queries (batch). */
interface TransactionMethod {
  <Client, R>(
    this: Client,
    callback: (tx: TransactionClient<Client>) => Promise<R>,
    options?: TransactionOptions,
  ): Promise<R>
  <Client, const P extends readonly unknown[]>(
    this: Client,
    queries: P,
    options?: { isolationLevel?: string },
  ): Promise<{ -readonly [K in keyof P]: Awaited<P[K]> }>
}

const isTrackedWrite = (operation: string): operation is TrackedWrite =>
  (trackedWrites as readonly string[]).includes(operation)

const consoleLogger: ErrorLogger = { error: (details, message) => console.error(message, details) }

export function realtime(options: RealtimeOptions) {
  if (options.capture === 'database') {
    const stats: PublisherStats = { published: 0, queued: 0, dropped: 0, failed: 0 }
    return Prisma.defineExtension({
      name: 'mizzen-realtime',
      client: {
        /** Counters of the realtime extension: nothing in capture mode (the log publishes). */
        $realtimeStats: (): PublisherStats => ({ ...stats }),
      },
    })
  }
  const dataModel = linkDataModel(options.dataModel)
  const publisher = new Publisher(options.bus, options.logger ?? consoleLogger)
  const scopes = new AsyncLocalStorage<TransactionScope>()

  return Prisma.defineExtension((base) => {
    const lockRows = rowLockerFor(base)
    /** Runs `work` in an interactive transaction of `tracked`, then publishes what it produced. */
    async function inTransaction<T>(
      work: (tx: AnyClient) => Promise<T>,
      replaying: boolean,
      transactionOptions?: unknown,
    ): Promise<T> {
      const events: PendingEvent[] = []
      const result = await (
        tracked as unknown as { $transaction: (fn: (tx: AnyClient) => Promise<T>, options?: unknown) => Promise<T> }
      ).$transaction(
        // Await inside the scope: Prisma's queries are lazy and start when awaited, and
        // they must start where the scope is visible.
        (tx) => scopes.run({ tx, events, replaying }, async () => await work(tx)),
        transactionOptions,
      )
      await publisher.publish(events)
      return result
    }

    async function onQuery({ model, operation, args, query, __internalParams }: QueryParams): Promise<unknown> {
      const scope = scopes.getStore()
      const inTransactionNow = __internalParams?.transaction?.kind === 'itx'
      if (scope?.replaying && !inTransactionNow) {
        // An operation queued for a batch transaction: run it in the transaction instead.
        return replay(scope.tx, model, operation, args)
      }
      if (!model || !isTrackedWrite(operation)) return query(args)
      if (!inTransactionNow || !scope) {
        // A write of its own: give it a transaction, so its before/after reads are consistent.
        return inTransaction((tx) => replay(tx, model, operation, args), false)
      }
      if (operation === 'createMany') {
        // createMany returns only a count: create the rows with their ids, tracked, and count them.
        const rows = await (
          scope.tx[lowerFirst(model)] as { createManyAndReturn: (a: unknown) => Promise<unknown[]> }
        ).createManyAndReturn(args)
        return { count: rows.length }
      }
      const { result, events } = await trackWrite(
        dataModel.model(model),
        scope.tx,
        operation,
        args as Record<string, unknown>,
        (a) => query(a),
        lockRows,
      )
      scope.events.push(...events)
      return result
    }

    const tracked = base.$extends({
      name: 'mizzen-realtime-queries',
      query: { $allOperations: (params) => onQuery(params as unknown as QueryParams) },
    })

    return tracked.$extends({
      name: 'mizzen-realtime',
      client: {
        /** Prisma's `$transaction`, publishing the transaction's events after it commits. */
        $transaction: ((input: unknown, transactionOptions?: unknown): Promise<unknown> => {
          if (Array.isArray(input)) {
            return inTransaction(
              async () => {
                const results: unknown[] = []
                for (const operation of input) results.push(await operation)
                return results
              },
              true,
              transactionOptions,
            )
          }
          if (typeof input !== 'function') throw new TypeError('$transaction expects an array of queries or a function')
          return inTransaction((tx) => (input as (tx: AnyClient) => Promise<unknown>)(tx), false, transactionOptions)
        }) as TransactionMethod,
        /** Counters of the realtime extension: events published, events the bus refused. */
        $realtimeStats(): PublisherStats {
          return { ...publisher.stats }
        },
      },
    })
  })
}

/** Runs an operation on a transaction client, as the caller issued it on the main client. */
function replay(tx: AnyClient, model: string | undefined, operation: string, args: unknown): Promise<unknown> {
  const target = (model ? tx[lowerFirst(model)] : tx) as Record<string, (...a: unknown[]) => Promise<unknown>>
  const method = target[operation]
  if (typeof method !== 'function')
    throw new Error(`realtime: cannot run ${model ?? 'client'}.${operation} in a transaction`)
  return Array.isArray(args) ? method.apply(target, args) : method.call(target, args)
}
