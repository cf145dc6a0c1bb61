/** Startup errors: a bad setting stops the gateway with a message that names it. */

/** A bad setting: startup stops with this message, which names the setting. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`)
  }
}

/** `value` if it is a positive safe integer, else a ConfigError naming `setting` (and the value's `unit`, if any). */
export function positiveSetting(setting: string, value: number, unit?: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new ConfigError(setting, `expected a positive integer${unit ? ` (${unit})` : ''}, got ${value}`)
  return value
}
