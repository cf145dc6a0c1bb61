/**
 * Positions in this gateway's order of delivery: what the `cursor` of a model event or a room
 * message says until history gives cursors that the whole cluster shares. One counter serves
 * every topic (it is ordered within each of them, and costs nothing per topic). Opaque to
 * clients, and only meaningful on the gateway that gave it.
 */
export class DeliveryPositions {
  #last = 0

  /** The position of the next payload delivered. */
  next(): string {
    return (++this.#last).toString(36)
  }
}
