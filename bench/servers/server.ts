/** What the benchmark needs of each server it compares. */
import type { Stamp } from '../common.ts'

export interface BenchServer {
  readonly port: number
  /** Subscribers (or sockets, for raw ws) that will receive what is published. */
  subscribers(): number
  /** Publishes one message, the way this server's users would. */
  publish(stamp: Stamp): void | Promise<void>
}
