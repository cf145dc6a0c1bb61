/**
 * How every benchmark runs a mizzen gateway (bench/servers/mizzen.ts, bench/capture-process.ts,
 * bench/live.ts): the example app's data model on a port of 127.0.0.1 the kernel picks, logging
 * nothing, without GraphiQL, and with room for every connection the load generators open.
 */
import { pino } from 'pino'
import { dataModel } from '../../examples/app/database.ts'

export const benchGatewayOptions = {
  dataModel,
  port: 0,
  host: '127.0.0.1',
  logger: pino({ level: 'silent' }),
  graphiql: false,
  limits: { maxConnections: 100_000, maxConnectionsPerIp: 100_000 },
}
