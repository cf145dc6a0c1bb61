/** Startup errors: a bad setting stops the gateway with a message that names it. */

/** A startup failure that a setting is the cause of: its message starts with the setting's name. */
abstract class SettingError extends Error {
  constructor(
    readonly setting: string,
    message: string,
  ) {
    super(`${setting}: ${message}`)
  }
}

/** A bad setting: startup stops with this message, which names the setting. */
export class ConfigError extends SettingError {
  override readonly name = 'ConfigError'
}

/** A service a setting names cannot be used: the message names the setting, where it looked and why. */
export class StartupError extends SettingError {
  override readonly name = 'StartupError'
}

/** `value` if it is a positive safe integer, else a ConfigError naming `setting` (and the value's `unit`, if any). */
export function positiveSetting(setting: string, value: number, unit?: string): number {
  if (!Number.isSafeInteger(value) || value <= 0)
    throw new ConfigError(setting, `expected a positive integer${unit ? ` (${unit})` : ''}, got ${value}`)
  return value
}
