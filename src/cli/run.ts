/**
 * `main(argv)`: dispatch over the registry. Exit codes: 0 success, 1 a ChangetrailError (its code is
 * printed), 2 wrong usage, 70 an unexpected internal error. Only main.ts (the executable) exits.
 */
import { readFileSync } from 'node:fs';
import { ChangetrailError } from '../errors.js';
import { formatCommandHelp, formatOverview, parseCommandArgs, type CommandSpec } from './command.js';
import { Output, OutputClosed, type Sink } from './output.js';
import { COMMANDS, findCommand } from './registry.js';
import { reportError } from './report.js';
import { escapeControl } from './format.js';

/** The version of the installed package (package.json beside dist/ or src/). */
export function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return String((JSON.parse(text) as { version: unknown }).version);
}

export interface MainOptions {
  stdout?: Sink;
  stderr?: Sink;
  env?: NodeJS.ProcessEnv;
}

export async function main(argv: string[], options: MainOptions = {}): Promise<number> {
  const [name, ...rest] = argv;
  const json = argv.includes('--json');
  const out = new Output({ json, ...options });
  try {
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      const topic = name === 'help' && rest[0] !== undefined && !rest[0].startsWith('-') ? findCommand(rest[0]) : undefined;
      if (name === 'help' && rest[0] !== undefined && !rest[0].startsWith('-') && topic === undefined) {
        throw new ChangetrailError('CLI_USAGE', `unknown command: ${escapeControl(rest[0])}; run changetrail --help`, { command: rest[0], hint: 'run changetrail --help' });
      }
      out.line(topic === undefined ? formatOverview(COMMANDS, packageVersion()) : formatCommandHelp(topic));
      return name === undefined ? 2 : 0;
    }
    if (name === '--version' || name === '-V' || name === 'version') {
      out.emit({ version: packageVersion() }, () => `changetrail ${packageVersion()}`);
      return 0;
    }
    const command = findCommand(name);
    if (command === undefined) {
      throw new ChangetrailError('CLI_USAGE', `unknown command: ${escapeControl(name)}; run changetrail --help`, { command: name, hint: 'run changetrail --help' });
    }
    return await runCommand(command, rest, out);
  } catch (error) {
    if (error instanceof OutputClosed) return 0;
    return reportError(error, out, undefined);
  }
}

async function runCommand(command: CommandSpec, argv: string[], out: Output): Promise<number> {
  const parsed = parseCommandArgs(command, argv);
  if (parsed.options.help === true) {
    out.line(formatCommandHelp(command));
    return 0;
  }
  try {
    return await command.run({ args: parsed.args, options: parsed.options as never, out });
  } catch (error) {
    if (error instanceof OutputClosed) return 0;
    return reportError(error, out, command.args[0] === 'db' ? parsed.args[0] : undefined);
  }
}
