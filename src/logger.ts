import { pino, type Logger } from 'pino'

export type { Logger }

/** Structured JSON logs on stdout. */
export const createLogger = (level: string): Logger => pino({ name: 'mizzen', level })
