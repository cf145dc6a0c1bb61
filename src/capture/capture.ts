/**
 * Change capture (`MIZZEN_CAPTURE=database`, docs/capture.md; the path of a captured change is
 * docs/architecture.md §11): every committed change to the data
 * model's tables, whoever made it, becomes the events the realtime extension publishes, read
 * from PostgreSQL's logical replication stream.
 *
 * - One consumer per deployment: every gateway runs a `ChangeCapture`; the one holding a
 *   PostgreSQL advisory lock (on a session of its own) reads the slot, the others try for the
 *   lock every 2 s, so one takes over within seconds of the holder's death (its session ends,
 *   and the lock with it).
 * - Transactions arrive whole, after their commit, in commit order (pgoutput sends nothing of a
 *   rolled-back one); their events are handed to the bus in statement order.
 * - Exactly once: each event carries its log position (the commit's position and its index in
 *   the transaction). The position confirmed to PostgreSQL advances only once the bus has taken
 *   every event before it; after a restart the stream resumes there, and events at or before the
 *   last position already on the bus (the newest entry of each model's log, and every captured
 *   event this process saw) are not published again.
 * - A slot PostgreSQL invalidated (`wal_status = lost`: it kept more WAL than
 *   `max_slot_wal_keep_size`) is reported on /ready, replaced by a new one, and every gateway ends
 *   its model subscriptions with RESYNC_REQUIRED: what was lost cannot be delivered.
 */
import pg from 'pg'
import type { Bus, PublishOutcome } from '../bus/bus.ts'
import { modelTopic, type RecordState } from '../events.ts'
import type { Logger } from '../logger.ts'
import type { DataModel, Model } from '../models/data-model.ts'
import { idKey } from '../models/ids.ts'
import { planEvents, recordKey, type EventPlan, type LoadedNodes, type RowChange } from './changes.ts'
import { comparePositions, formatPosition, parsePosition, type LogPosition, type Lsn } from './lsn.ts'
import { decodePgOutput, type RelationMessage, type ReplicationFrame } from './pgoutput.ts'
import { ReplicationStream } from './replication.ts'
import { captureName, checkCaptureSupport, dropSlot, ensurePublication, ensureSlot, slotState } from './setup.ts'
import { capturedTables, columnOf, quoteIdent, tableOf, type CapturedTable } from './tables.ts'
import { fieldValue } from './values.ts'

export { CaptureRefusedError } from './setup.ts'

/** How often a gateway that does not hold the lock tries for it, in ms. */
const LEADER_POLL_MS = 2000
/** How often every gateway looks at the slot (lag, invalidation), in ms. */
const MONITOR_MS = 5000

export interface CaptureOptions {
  /** The PostgreSQL to read (`DATABASE_URL`); its role needs REPLICATION. */
  readonly url: string
  /** Name of the publication and the slot (`MIZZEN_CAPTURE_NAME`). @default from the deployment prefix: `mizzen_capture` */
  readonly name?: string
  /**
   * Set REPLICA IDENTITY FULL on the data model's tables when the publication is created, so
   * that `previous` and `updatedFields` are exact (`MIZZEN_CAPTURE_REPLICA_IDENTITY_FULL`). Off:
   * `previous` holds only the key, and `updatedFields` every field. @default true
   */
  readonly replicaIdentityFull?: boolean
}

export interface CaptureDependencies {
  readonly bus: Bus
  readonly dataModel: DataModel
  readonly logger: Logger
  /** Told when captured changes were lost (an invalidated slot): end the model subscriptions with RESYNC_REQUIRED. */
  readonly onGap: (reason: string) => void
}

interface CommittedTransaction {
  readonly commitLsn: Lsn
  readonly endLsn: Lsn
  readonly commitTime: Date
  readonly changes: RowChange[]
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms).unref())

/** What `generation` the publication's comment says: bumped each time a lost slot is replaced. */
const GENERATION = /^mizzen capture generation (\d+)$/

export class ChangeCapture {
  readonly name: string
  /** Events this gateway published from the log. */
  events = 0
  readonly #options: CaptureOptions
  readonly #deps: CaptureDependencies
  readonly #tables: Map<string, CapturedTable>
  readonly #lockKey: string
  #control: pg.Client | undefined
  #closed = false
  #leading = false
  #stream: ReplicationStream | undefined
  /** Why capture does not work now (setup, connection), for /ready. */
  #problem: string | undefined
  /** Set while the slot is invalidated. */
  #slotProblem: string | undefined
  #lagBytes: number | undefined
  #generation: number | undefined
  #loop: Promise<void> | undefined
  #monitor: NodeJS.Timeout | undefined
  #unsubscribes: (() => void)[] = []
  /** The newest position known published on the bus (by this process, or seen from another). */
  #published: LogPosition | undefined
  /** The same, as written in events (fixed-width: compares as text). */
  #publishedText: string | undefined
  /** The position confirmed to PostgreSQL. */
  #confirmed: Lsn = 0n
  readonly #relations = new Map<number, RelationMessage>()
  #open: CommittedTransaction | undefined
  #queue: CommittedTransaction[] = []
  #working = false
  #acks: Promise<void> = Promise.resolve()
  #pendingAcks = 0
  /** Publishes of this turn, and the end of its last transaction, not yet in the chain of confirmations. */
  #unconfirmed: Promise<PublishOutcome>[] = []
  #unconfirmedEnd: Lsn | undefined
  /** A publish answered `queued` (Redis away) and nothing confirmed it taken since. */
  #queuedSince = false
  /** Events read again after a takeover or a reconnection that the bus had already: not published twice. */
  #skipped = 0

  constructor(deps: CaptureDependencies, options: CaptureOptions) {
    this.#deps = deps
    this.#options = options
    this.name = options.name ?? captureName('mizzen:')
    this.#tables = capturedTables(deps.dataModel)
    this.#lockKey = `mizzen capture ${this.name}`
  }

  /** Whether this gateway reads the slot now. */
  get leading(): boolean {
    return this.#leading
  }

  /**
   * Checks PostgreSQL (CaptureRefusedError when capture cannot run there), then starts: watches
   * the bus for captured events, and competes for the slot.
   */
  async start(): Promise<void> {
    const control = await this.#connectControl()
    await checkCaptureSupport(control)
    for (const model of this.#deps.dataModel.models)
      this.#unsubscribes.push(this.#deps.bus.subscribe(modelTopic(model.name), (event) => this.#saw(event.logPosition)))
    await this.#readGeneration(control).catch(() => {})
    this.#loop = this.#run()
    this.#monitor = setInterval(() => void this.#watch(), MONITOR_MS)
    this.#monitor.unref()
    void this.#watch()
  }

  /** For /ready: rejects with the reason capture is not working. */
  async check(): Promise<void> {
    if (this.#closed) throw new Error('change capture is stopped')
    if (this.#slotProblem) throw new Error(this.#slotProblem)
    if (this.#problem) throw new Error(this.#problem)
    if (!this.#control) throw new Error('change capture: not connected to PostgreSQL')
  }

  /** The slot's unconfirmed WAL, in bytes (as of the last look). */
  get lagBytes(): number | undefined {
    return this.#lagBytes
  }

  /** Looks at the slot now: lag, invalidation, a replaced slot. */
  async refresh(): Promise<void> {
    await this.#watch()
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    clearInterval(this.#monitor)
    for (const unsubscribe of this.#unsubscribes) unsubscribe()
    await this.#stream?.stop()
    await this.#loop?.catch(() => {})
    await this.#acks.catch(() => {})
    await this.#control?.end().catch(() => {})
  }

  /** A captured event on the bus (this process's own, mostly: those are not newer, and a comparison of text tells). */
  #saw(text: string | undefined): void {
    if (typeof text !== 'string' || (this.#publishedText !== undefined && text <= this.#publishedText)) return
    const position = parsePosition(text)
    if (position && (!this.#published || comparePositions(position, this.#published) > 0))
      this.#advance(position, formatPosition(position))
  }

  #advance(position: LogPosition, text: string): void {
    this.#published = position
    this.#publishedText = text
  }

  async #connectControl(): Promise<pg.Client> {
    if (this.#control) return this.#control
    const client = new pg.Client({ connectionString: this.#options.url })
    const lost = () => {
      if (this.#control !== client) return
      this.#control = undefined
      // The lock went with the session: another gateway may take the slot now.
      if (this.#leading) void this.#stream?.stop()
    }
    client.on('error', (error) => {
      this.#deps.logger.warn({ err: error }, 'change capture: PostgreSQL session lost')
      lost()
    })
    client.on('end', lost)
    await client.connect()
    this.#control = client
    return client
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      try {
        const control = await this.#connectControl()
        const { rows } = await control.query<{ locked: boolean }>(
          'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS locked',
          [this.#lockKey],
        )
        if (rows[0]?.locked) {
          try {
            await this.#lead(control)
          } finally {
            this.#leading = false
            if (this.#control === control)
              await control.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [this.#lockKey]).catch(() => {})
          }
        } else {
          // Standing by, with a working session: nothing wrong here.
          this.#problem = undefined
          await sleep(LEADER_POLL_MS)
        }
      } catch (error) {
        if (this.#closed) return
        this.#problem = `change capture: ${(error as Error).message}`
        this.#deps.logger.warn({ err: error }, 'change capture failed; trying again')
        await this.#control?.end().catch(() => {})
        this.#control = undefined
        await sleep(1000)
      }
    }
  }

  async #lead(control: pg.Client): Promise<void> {
    const { logger } = this.#deps
    await ensurePublication(control, {
      name: this.name,
      tables: this.#tables,
      replicaIdentityFull: this.#options.replicaIdentityFull ?? true,
    })
    const generation = await this.#readGeneration(control)
    const state = await slotState(control, this.name)
    if (state.walStatus === 'lost' || (!state.exists && generation > 0)) {
      // What the slot held is gone: a new slot starts from now, and subscribers must reload.
      logger.error(
        { slot: this.name, walStatus: state.walStatus ?? 'missing' },
        'change capture: the replication slot was invalidated (or dropped): changes were lost; starting a new slot and ending model subscriptions with RESYNC_REQUIRED',
      )
      await dropSlot(control, this.name)
      await this.#setGeneration(control, generation + 1)
    } else if (!state.exists) {
      await this.#setGeneration(control, 1)
    }
    if (await ensureSlot(control, this.name))
      logger.info({ slot: this.name }, 'change capture: replication slot created')
    await this.#learnPublished()
    this.#relations.clear()
    this.#open = undefined
    this.#queue = []
    this.#queuedSince = false
    // The slot may still be held by the walsender of a consumer that just died: try for a while.
    let stream: ReplicationStream | undefined
    for (let attempt = 0; !stream && !this.#closed; attempt++) {
      try {
        stream = await ReplicationStream.start({
          url: this.#options.url,
          slot: this.name,
          publication: this.name,
          onFrame: (frame) => this.#onFrame(frame),
          confirmed: () => this.#confirmed,
        })
      } catch (error) {
        if ((error as { code?: string }).code !== '55006' || attempt >= 20) throw error
        await sleep(500)
      }
    }
    if (!stream) return
    this.#stream = stream
    this.#leading = true
    this.#problem = undefined
    logger.info({ slot: this.name }, 'change capture: reading the replication slot')
    try {
      await stream.done
    } finally {
      this.#stream = undefined
      this.#leading = false
      // What was received and not yet handed to the bus is not confirmed: the next reader gets it again.
      this.#queue = []
    }
    if (!this.#closed) throw new Error('the replication stream ended')
  }

  /** The newest captured position on the bus: the last entry of each model's log (another gateway's, before it died). */
  async #learnPublished(): Promise<void> {
    const latest = this.#deps.bus.latest
    if (!latest) return
    for (const model of this.#deps.dataModel.models) {
      const event = await latest.call(this.#deps.bus, modelTopic(model.name))
      this.#saw((event as { logPosition?: string } | undefined)?.logPosition)
    }
  }

  async #readGeneration(control: pg.Client): Promise<number> {
    const { rows } = await control.query<{ comment: string | null }>(
      `SELECT obj_description(oid, 'pg_publication') AS comment FROM pg_publication WHERE pubname = $1`,
      [this.name],
    )
    const generation = Number(GENERATION.exec(rows[0]?.comment ?? '')?.[1] ?? 0)
    this.#noteGeneration(generation)
    return generation
  }

  async #setGeneration(control: pg.Client, generation: number): Promise<void> {
    await control.query(`COMMENT ON PUBLICATION ${quoteIdent(this.name)} IS 'mizzen capture generation ${generation}'`)
    this.#noteGeneration(generation)
  }

  /** A generation newer than the one this gateway knew: changes were lost in between. */
  #noteGeneration(generation: number): void {
    const known = this.#generation
    this.#generation = generation
    if (known !== undefined && known > 0 && generation > known)
      this.#deps.onGap('the replication slot was invalidated: changes were lost')
  }

  async #watch(): Promise<void> {
    const control = this.#control
    if (!control || this.#closed) return
    try {
      const state = await slotState(control, this.name)
      this.#lagBytes = state.lagBytes
      await this.#readGeneration(control)
      if (state.walStatus === 'lost') {
        if (!this.#slotProblem) this.#deps.onGap('the replication slot was invalidated: changes were lost')
        this.#slotProblem = `change capture: the replication slot "${this.name}" was invalidated (wal_status lost): changes were lost; raise max_slot_wal_keep_size`
      } else {
        this.#slotProblem = undefined
      }
    } catch {
      // The session's own error handler reports it.
    }
  }

  #onFrame(frame: ReplicationFrame): void {
    if (frame.tag === 'keepalive') {
      // Nothing received is waiting: everything up to here is confirmed.
      if (this.#idle() && frame.end > this.#confirmed) this.#confirmed = frame.end
      return
    }
    const message = decodePgOutput(frame.data)
    switch (message.tag) {
      case 'begin':
        this.#open = { commitLsn: message.finalLsn, endLsn: 0n, commitTime: message.commitTime, changes: [] }
        return
      case 'relation':
        this.#relations.set(message.id, message)
        return
      case 'insert':
      case 'update':
      case 'delete': {
        const relation = this.#relations.get(message.relation)
        const table = relation && this.#tables.get(relation.table)
        if (!relation || !table || !this.#open) return
        this.#open.changes.push({
          table,
          relation,
          kind: message.tag,
          ...('row' in message ? { row: message.row } : {}),
          ...(message.tag !== 'insert' && message.old ? { old: message.old } : {}),
        })
        return
      }
      case 'truncate':
        this.#deps.logger.warn(
          { tables: message.relations.map((id) => this.#relations.get(id)?.table) },
          'change capture: TRUNCATE is not turned into events',
        )
        return
      case 'commit': {
        const open = this.#open
        this.#open = undefined
        if (!open) return
        this.#queue.push({ ...open, commitLsn: message.commitLsn, endLsn: message.endLsn })
        this.#work()
        return
      }
      default:
        return
    }
  }

  #idle(): boolean {
    return (
      !this.#open &&
      !this.#queue.length &&
      !this.#working &&
      this.#unconfirmedEnd === undefined &&
      this.#pendingAcks === 0 &&
      !this.#queuedSince
    )
  }

  /**
   * Publishes the queued transactions in commit order (docs/architecture.md §11, step 4). When
   * none needs records read from the database (the usual case) at once, without yielding: the
   * transactions of one read from the stream reach the bus, and the subscribers' sockets, in one
   * turn of the event loop. Otherwise every queued transaction waits for one read per model of
   * what they all need, and those that arrive meanwhile queue behind them.
   */
  #work(): void {
    if (this.#working) return
    this.#working = true
    let waiting = false
    try {
      while (this.#queue.length && !this.#closed) {
        const batch = this.#queue.splice(0, this.#queue.length)
        const plans = batch.map((transaction) =>
          this.#before(transaction) ? undefined : planEvents(transaction.changes),
        )
        const toLoad = new Map<Model, Set<string>>()
        for (const plan of plans)
          for (const [model, ids] of plan?.toLoad ?? []) {
            const all = toLoad.get(model) ?? new Set<string>()
            for (const id of ids) all.add(id)
            toLoad.set(model, all)
          }
        if (!toLoad.size) {
          this.#publishBatch(batch, plans, new Map())
          continue
        }
        waiting = true
        this.#loadAll(toLoad)
          .then((loaded) => {
            if (this.#closed) return void (this.#working = false)
            this.#publishBatch(batch, plans, loaded)
            this.#working = false
            this.#work()
          })
          .catch((error: unknown) => this.#failed(error))
        return
      }
    } catch (error) {
      this.#failed(error)
    } finally {
      if (!waiting) this.#working = false
    }
  }

  #failed(error: unknown): void {
    this.#working = false
    this.#deps.logger.error({ err: error }, 'change capture: could not publish a transaction; reading again')
    void this.#stream?.stop()
  }

  /** Whether `transaction` lies wholly before the last published position: published already. */
  #before(transaction: CommittedTransaction): boolean {
    const published = this.#published
    return published !== undefined && transaction.commitLsn < published.commit
  }

  #publishBatch(batch: CommittedTransaction[], plans: (EventPlan | undefined)[], loaded: LoadedNodes): void {
    const outcomes: Promise<PublishOutcome>[] = []
    let published = false
    batch.forEach((transaction, i) => {
      const plan = plans[i]
      if (!plan || this.#before(transaction)) {
        this.#skipped += transaction.changes.length
        return
      }
      const at = transaction.commitTime.toISOString()
      plan.events(loaded).forEach((event, index) => {
        const position: LogPosition = { commit: transaction.commitLsn, index }
        if (this.#published && comparePositions(position, this.#published) <= 0) {
          this.#skipped++
          return
        }
        const logPosition = formatPosition(position)
        this.#advance(position, logPosition)
        this.events++
        published = true
        outcomes.push(this.#deps.bus.publish(modelTopic(event.model), { ...event, at, logPosition }))
      })
    })
    if (published && this.#skipped) {
      this.#deps.logger.info(
        { skipped: this.#skipped },
        'change capture: changes read again that the bus already had were not published twice',
      )
      this.#skipped = 0
    }
    this.#confirmAfter(outcomes, batch.at(-1)!.endLsn)
  }

  /**
   * Confirms `endLsn` to PostgreSQL once `outcomes`, and every publish before them, came back
   * `sent` (or `dropped`). What is published in one turn is confirmed together: one entry in the
   * chain of confirmations per turn, not per transaction.
   */
  #confirmAfter(outcomes: Promise<PublishOutcome>[], endLsn: Lsn): void {
    for (const outcome of outcomes) this.#unconfirmed.push(outcome)
    if (this.#unconfirmedEnd === undefined) queueMicrotask(() => this.#chainConfirmation())
    this.#unconfirmedEnd = endLsn
  }

  #chainConfirmation(): void {
    const outcomes = this.#unconfirmed
    const endLsn = this.#unconfirmedEnd
    this.#unconfirmed = []
    this.#unconfirmedEnd = undefined
    if (endLsn === undefined) return
    this.#pendingAcks++
    this.#acks = this.#acks.then(async () => {
      try {
        const results = await Promise.all(outcomes)
        if (results.includes('queued')) this.#queuedSince = true
        else if (results.length) this.#queuedSince = false
        if (!this.#queuedSince && endLsn > this.#confirmed) this.#confirmed = endLsn
      } catch (error) {
        this.#deps.logger.error({ err: error }, 'change capture: the bus refused an event')
      } finally {
        this.#pendingAcks--
      }
    })
  }

  /** Reads the records association events need, one query per model. */
  async #loadAll(toLoad: ReadonlyMap<Model, ReadonlySet<string>>): Promise<LoadedNodes> {
    const loaded = new Map<string, RecordState>()
    for (const [model, ids] of toLoad)
      for (const [id, state] of await this.#loadNodes(model, [...ids])) loaded.set(recordKey(model, id), state)
    return loaded
  }

  /** The current state of records, for the `node` of association events, read as text and converted as the stream's values are. */
  async #loadNodes(model: Model, ids: readonly string[]): Promise<Map<string, RecordState>> {
    const control = this.#control
    const found = new Map<string, RecordState>()
    if (!control || !ids.length) return found
    const columns = model.scalars.map((field) => `${quoteIdent(columnOf(field))}::text`).join(', ')
    const result = await control.query<(string | null)[]>({
      text: `SELECT ${columns} FROM ${quoteIdent(tableOf(model))} WHERE ${quoteIdent(columnOf(model.id))} = ANY($1)`,
      values: [ids],
      rowMode: 'array',
    })
    for (const row of result.rows) {
      const state: Record<string, unknown> = {}
      model.scalars.forEach((field, i) => (state[field.name] = fieldValue(field, row[i] ?? null)))
      found.set(idKey(state[model.idField]), state)
    }
    return found
  }
}

/** Starts change capture; a database it cannot run on is refused with CaptureRefusedError. */
export async function startCapture(deps: CaptureDependencies, options: CaptureOptions): Promise<ChangeCapture> {
  const capture = new ChangeCapture(deps, options)
  try {
    await capture.start()
  } catch (error) {
    await capture.close()
    throw error
  }
  return capture
}
