/**
 * A logical replication stream over `pg`'s own connection: a `replication=database` session that
 * runs `START_REPLICATION SLOT … LOGICAL` with `pgoutput`, hands every CopyData frame to its
 * caller, and sends Standby Status Updates with the position the caller confirmed (on request of
 * the server, and every 10 s so that it does not time the stream out).
 */
import pg from 'pg'
import { formatLsn, type Lsn } from './lsn.ts'
import { decodeFrame, standbyStatus, type ReplicationFrame } from './pgoutput.ts'

const STATUS_INTERVAL_MS = 10_000

export interface ReplicationStreamOptions {
  readonly url: string
  readonly slot: string
  readonly publication: string
  /** Called for every frame, in order. */
  readonly onFrame: (frame: ReplicationFrame) => void
  /** The position to confirm to the server now. */
  readonly confirmed: () => Lsn
}

export class ReplicationStream {
  readonly #client: pg.Client
  readonly #options: ReplicationStreamOptions
  #timer: NodeJS.Timeout | undefined
  #ended = false
  /** Resolves (or rejects with the reason) when the stream ends. */
  readonly done: Promise<void>
  #end!: (error?: unknown) => void

  private constructor(options: ReplicationStreamOptions) {
    this.#options = options
    this.#client = new pg.Client({ connectionString: options.url, replication: 'database' } as pg.ClientConfig)
    this.done = new Promise<void>((resolve, reject) => {
      this.#end = (error) => (error ? reject(error) : resolve())
    })
    this.done.catch(() => {})
  }

  /** Connects and starts streaming from the slot's confirmed position; rejects when the server refuses. */
  static async start(options: ReplicationStreamOptions): Promise<ReplicationStream> {
    const stream = new ReplicationStream(options)
    await stream.#start()
    return stream
  }

  async #start(): Promise<void> {
    const client = this.#client
    client.on('error', (error) => this.#finish(error))
    client.on('end', () => this.#finish(new Error('the replication connection closed')))
    await client.connect()
    const connection = (client as unknown as { connection: NodeJS.EventEmitter }).connection
    connection.on('copyData', ({ chunk }: { chunk: Buffer }) => {
      if (this.#ended) return
      let frame: ReplicationFrame | undefined
      try {
        frame = decodeFrame(chunk)
        if (!frame) return
        if (frame.tag === 'keepalive' && frame.replyNow) this.sendStatus()
        this.#options.onFrame(frame)
      } catch (error) {
        this.#finish(error)
      }
    })
    const started = new Promise<void>((resolve) => connection.once('replicationStart', () => resolve()))
    const { slot, publication } = this.#options
    // The query runs as long as the stream does; its end (or error) is the stream's.
    client
      .query(
        `START_REPLICATION SLOT "${slot}" LOGICAL ${formatLsn(0n)} (proto_version '1', publication_names '${publication.replaceAll("'", "''")}')`,
      )
      .then(
        () => this.#finish(),
        (error: unknown) => this.#finish(error),
      )
    await Promise.race([started, this.done])
    this.#timer = setInterval(() => this.sendStatus(), STATUS_INTERVAL_MS)
    this.#timer.unref()
  }

  /** Tells the server the position confirmed now (it may recycle the log before it). */
  sendStatus(): void {
    if (this.#ended) return
    const connection = (this.#client as unknown as { connection: { sendCopyFromChunk(chunk: Buffer): void } })
      .connection
    connection.sendCopyFromChunk(standbyStatus(this.#options.confirmed()))
  }

  #finish(error?: unknown): void {
    if (this.#ended) return
    this.#ended = true
    clearInterval(this.#timer)
    this.#end(error)
    // The connection is in copy mode: end it at the socket.
    this.#client.end().catch(() => {})
  }

  /** Ends the stream (after one last status update). */
  async stop(): Promise<void> {
    this.sendStatus()
    this.#finish()
    await this.done.catch(() => {})
  }
}
