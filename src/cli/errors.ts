/** An error the `mizzen` command reports as a plain message (no stack), then exits non-zero. */
export class CliError extends Error {
  override readonly name = 'CliError'
  constructor(
    message: string,
    /** 2 for a usage error (bad command or option), 1 for anything else. */
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message)
  }
}
