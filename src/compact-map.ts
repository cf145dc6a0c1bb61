/**
 * A string-keyed map for what a gateway keeps per connection and usually holds one entry: a
 * connection's operations, the rooms a connection is in. An empty `Map` is some 180 bytes of
 * heap (its hash table is allocated with room for several entries); this is one small object
 * while it holds at most one entry, and a `Map` from the second on (it stays one after that).
 * Entries keep their insertion order, as in a `Map`. (docs/performance.md, What an idle
 * connection holds.)
 */
export class CompactMap<V> {
  /** The one entry while there is no map: its key (undefined when empty) and value. */
  #key: string | undefined
  #value: V | undefined
  #map: Map<string, V> | undefined

  get size(): number {
    return this.#map ? this.#map.size : this.#key === undefined ? 0 : 1
  }

  get(key: string): V | undefined {
    if (this.#map) return this.#map.get(key)
    return key === this.#key ? this.#value : undefined
  }

  has(key: string): boolean {
    return this.#map ? this.#map.has(key) : key === this.#key
  }

  set(key: string, value: V): this {
    if (this.#map) this.#map.set(key, value)
    else if (this.#key === undefined || this.#key === key) {
      this.#key = key
      this.#value = value
    } else {
      this.#map = new Map([
        [this.#key, this.#value as V],
        [key, value],
      ])
      this.#key = this.#value = undefined
    }
    return this
  }

  delete(key: string): boolean {
    if (this.#map) return this.#map.delete(key)
    if (key !== this.#key) return false
    this.#key = this.#value = undefined
    return true
  }

  keys(): IterableIterator<string> {
    if (this.#map) return this.#map.keys()
    return (this.#key === undefined ? [] : [this.#key]).values()
  }

  values(): IterableIterator<V> {
    if (this.#map) return this.#map.values()
    return (this.#key === undefined ? [] : [this.#value as V]).values()
  }
}
