// The one exit-status policy of every `stowage` command:
//
//   0  done (fsck: clean)
//   1  the command ran and found or was refused something: damage (fsck), an archive the
//      registry refused (import)
//   2  the command could not run: a configuration mistake, a storage that is not there or is
//      in use, a Distribution root that is not one, a registry that refused the request
//
// A command throws CommandFailed (or one of the errors its caller lists as expected) to get
// 1 or 2 with a one-line message on stderr; anything else is a bug and propagates with its
// stack.

import { ConfigError } from '../config/schema.js';
import { StorageError } from '../store/storage-errors.js';

export const ExitStatus = { ok: 0, findings: 1, cannotRun: 2 } as const;
export type ExitStatus = (typeof ExitStatus)[keyof typeof ExitStatus];

export class CommandFailed extends Error {
  constructor(
    message: string,
    readonly status: ExitStatus = ExitStatus.cannotRun,
  ) {
    super(message);
  }
}

type ErrorClass = abstract new (...args: never[]) => Error;

/** Errors of the layers below that mean "could not run" wherever they come from. */
const CANNOT_RUN: readonly ErrorClass[] = [ConfigError, StorageError];

/**
 * Runs a command's action and sets the process's exit status by the policy above. `expected`
 * names further error classes that mean "could not run" for this command.
 */
export async function runCommand(name: string, action: () => Promise<ExitStatus | void>, expected: readonly ErrorClass[] = []): Promise<void> {
  try {
    process.exitCode = (await action()) ?? ExitStatus.ok;
  } catch (error) {
    const status = statusOf(error, expected);
    if (status === undefined) throw error;
    process.stderr.write(`${name}: ${(error as Error).message}\n`);
    process.exitCode = status;
  }
}

function statusOf(error: unknown, expected: readonly ErrorClass[]): ExitStatus | undefined {
  if (error instanceof CommandFailed) return error.status;
  return [...CANNOT_RUN, ...expected].some((kind) => error instanceof kind) ? ExitStatus.cannotRun : undefined;
}
