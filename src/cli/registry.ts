/**
 * The commands of `changetrail`, in the order `changetrail --help` lists them. Dispatch, the overview
 * help and `changetrail <command> --help` are all driven by this list.
 *
 * Adding a command is one file and one line:
 *   1. src/cli/commands/<name>.ts exports `defineCommand({ name, summary, args, options, run })`
 *      (see command.ts; print with `out.emit(value, () => human)` / `out.record` for NDJSON lists,
 *      escape untrusted text with `escapeControl` from format.ts, throw ChangetrailError for failures:
 *      main prints the code and a hint from report.ts);
 *   2. import it below and add it to COMMANDS.
 */
import type { CommandSpec } from './command.js';
import { exec } from './commands/exec.js';
import { init } from './commands/init.js';
import { log } from './commands/log.js';
import { migrate } from './commands/migrate.js';
import { replicate } from './commands/replicate.js';
import { ship } from './commands/ship.js';
import { resync } from './commands/resync.js';
import { show } from './commands/show.js';
import { status } from './commands/status.js';
import { undo } from './commands/undo.js';
import { unlock } from './commands/unlock.js';
import { verify } from './commands/verify.js';
import { history } from './commands/history.js';
import { blame } from './commands/blame.js';
import { exportCommand } from './commands/export.js';
import { restore } from './commands/restore.js';
import { backup } from './commands/backup.js';
import { recover } from './commands/recover.js';
import { sign } from './commands/sign.js';
import { diff } from './commands/diff.js';
import { checkpoint } from './commands/checkpoint.js';
import { prune } from './commands/prune.js';
import { retention } from './commands/retention.js';

export const COMMANDS: readonly CommandSpec[] = [
  init,
  exec,
  migrate,
  undo,
  resync,
  log,
  show,
  status,
  verify,
  replicate,
  ship,
  unlock,
  history,
  blame,
  exportCommand,
  restore,
  backup,
  recover,
  diff,
  sign,
  checkpoint,
  prune,
  retention,
] as CommandSpec[];

export function findCommand(name: string): CommandSpec | undefined {
  return COMMANDS.find((command) => command.name === name);
}
