/**
 * The client's address behind reverse proxies (`MIZZEN_TRUST_PROXY`), with the semantics of
 * Express's and Fastify's `trust proxy` (proxy-addr): the addresses a request went through are
 * the socket's peer, then the `X-Forwarded-For` entries from right to left; the client is the
 * first of them that is not a trusted proxy.
 *
 * - `false` (default): the socket's peer, and `X-Forwarded-For` is ignored (a client could write
 *   anything there);
 * - a hop count `n`: the first `n` addresses are proxies (`1`: one load balancer in front);
 * - a list of addresses and CIDR ranges (`10.0.0.0/8, 192.168.1.2`, and the names `loopback`,
 *   `linklocal`, `uniquelocal`): those are proxies, wherever they are in the chain;
 * - `true`: every hop is a proxy, the client is the left-most `X-Forwarded-For` entry. Only
 *   behind a proxy that overwrites the header: otherwise any client picks its own address (and
 *   escapes the per-IP limit).
 */
import type { IncomingMessage } from 'node:http'
import { BlockList, isIP } from 'node:net'
import { ConfigError } from '../errors.ts'

export type TrustProxy = boolean | number | readonly string[]

/** What each name in a trust list stands for (as proxy-addr). */
const namedRanges: Record<string, readonly string[]> = {
  loopback: ['127.0.0.1/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
}

/** `::ffff:10.0.0.1` (how Node shows IPv4 peers on a dual-stack socket) as `10.0.0.1`. */
function plain(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address
}

/** A BlockList of the trusted ranges; throws ConfigError naming the bad entry. */
function trustedRanges(entries: readonly string[], setting: string): BlockList {
  const list = new BlockList()
  for (const entry of entries.flatMap((item) => namedRanges[item] ?? [item])) {
    const [address, bits, extra] = entry.split('/')
    const family = isIP(address ?? '')
    const prefix = bits === undefined ? (family === 6 ? 128 : 32) : Number(bits)
    if (
      !family ||
      extra !== undefined ||
      !Number.isInteger(prefix) ||
      prefix < 0 ||
      prefix > (family === 6 ? 128 : 32)
    ) {
      throw new ConfigError(
        setting,
        `"${entry}" is not an IP address, a CIDR range or one of loopback, linklocal, uniquelocal`,
      )
    }
    list.addSubnet(plain(address!), prefix, family === 6 ? 'ipv6' : 'ipv4')
  }
  return list
}

/** `MIZZEN_TRUST_PROXY` as a value: `true`/`false`, a hop count, or a comma-separated list. */
export function parseTrustProxy(value: string, setting = 'MIZZEN_TRUST_PROXY'): TrustProxy {
  const text = value.trim()
  if (text === 'true') return true
  if (text === 'false' || text === '') return false
  if (/^\d+$/.test(text)) return Number(text)
  const entries = text
    .split(',')
    .map((item) => item.trim())
    .filter(Boolean)
  trustedRanges(entries, setting) // validates
  return entries
}

/** Whether the hop at `index` (0: the socket's peer) with `address` is a proxy to look behind. */
type Trust = (address: string, index: number) => boolean

function trustFunction(trust: TrustProxy): Trust {
  if (trust === true) return () => true
  if (trust === false) return () => false
  if (typeof trust === 'number') return (_address, index) => index < trust
  const ranges = trustedRanges(trust, 'trustProxy')
  return (address) => {
    const family = isIP(address)
    return family !== 0 && ranges.check(address, family === 6 ? 'ipv6' : 'ipv4')
  }
}

/** Returns the function that tells a request's client address under `trust`. */
export function clientAddressResolver(trust: TrustProxy = false): (request: IncomingMessage) => string {
  if (trust === false || trust === 0) return (request) => plain(request.socket.remoteAddress ?? 'unknown')
  const trusted = trustFunction(trust)
  return (request) => {
    let address = plain(request.socket.remoteAddress ?? 'unknown')
    const header = request.headers['x-forwarded-for']
    if (!header) return address
    const forwarded = (Array.isArray(header) ? header.join(',') : header).split(',').map((item) => item.trim())
    // From the socket's peer leftwards, while the hop we stand on is a proxy we trust.
    for (let index = 0; index < forwarded.length && trusted(address, index); index++) {
      const next = plain(forwarded[forwarded.length - 1 - index]!)
      // A malformed entry is where the chain stops being believable: the last good hop is the client.
      if (!isIP(next)) break
      address = next
    }
    return address
  }
}
