/**
 * What a command is: its name, one-line summary, usage, options and `run`. The registry (registry.ts)
 * lists them; dispatch, `changetrail --help` and `changetrail <command> --help` are all driven by it.
 * Every command also accepts `--json` and `--help` (added here, not declared per command).
 */
import { parseArgs } from 'node:util';
import { ChangetrailError } from '../errors.js';
import type { Output } from './output.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  /** Placeholder shown in help for string options (`--from <seq>`). */
  value?: string;
  description: string;
}

export type OptionSpecs = Record<string, OptionSpec>;

/** The parsed value type of each declared option. */
export type OptionValues<O extends OptionSpecs> = {
  [K in keyof O]?: O[K]['type'] extends 'string' ? (O[K]['multiple'] extends true ? string[] : string) : boolean;
} & { json?: boolean };

export interface CommandContext<O extends OptionSpecs> {
  /** Positional arguments, in the order `args` declares them (optional ones may be undefined). */
  args: (string | undefined)[];
  options: OptionValues<O>;
  out: Output;
}

export interface CommandSpec<O extends OptionSpecs = OptionSpecs> {
  /** The word after `changetrail`. */
  name: string;
  /** One line for `changetrail --help`. */
  summary: string;
  /** Positional arguments: `db`, `seq`; `sql?` is optional; a last `key...` takes one or more values. */
  args: readonly string[];
  options: O;
  /** Paragraphs for `changetrail <command> --help`. */
  description?: string;
  examples?: readonly string[];
  /** Runs the command; returns the exit code (only main exits). Throw ChangetrailError for failures. */
  run(context: CommandContext<O>): Promise<number>;
}

/** Declares a command with its option types inferred (`const` keeps the literal `type` fields). */
export function defineCommand<const O extends OptionSpecs>(spec: CommandSpec<O>): CommandSpec<O> {
  return spec;
}

/** The usage error of a command. */
export function usage(command: string, hint: string): ChangetrailError<'CLI_USAGE'> {
  return new ChangetrailError('CLI_USAGE', `${command}: ${hint}`, { command, hint });
}

const GLOBAL_OPTIONS: OptionSpecs = {
  json: { type: 'boolean', description: 'machine-readable output: one JSON value per line (NDJSON for lists)' },
  help: { type: 'boolean', short: 'h', description: 'show this help' },
};

export interface ParsedArgs {
  args: (string | undefined)[];
  options: Record<string, string | boolean | (string | boolean)[] | undefined>;
}

/** Parses `argv` against a command's spec; every problem is CLI_USAGE naming the command. */
export function parseCommandArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options = { ...spec.options, ...GLOBAL_OPTIONS };
  let parsed;
  try {
    parsed = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: Object.fromEntries(Object.entries(options).map(([name, o]) => [name, { type: o.type, ...(o.short === undefined ? {} : { short: o.short }), ...(o.multiple === undefined ? {} : { multiple: o.multiple }) }])),
    });
  } catch (error) {
    throw usage(spec.name, `${(error as Error).message.replace(/\. To specify a positional argument.*$/s, '')}; see changetrail ${spec.name} --help`);
  }
  if (parsed.values.help === true) return { args: [], options: parsed.values };
  const required = spec.args.filter((a) => !a.endsWith('?')).length;
  // A last argument named `name...` takes one or more values (history's key columns).
  const variadic = spec.args.at(-1)?.endsWith('...') === true;
  if (parsed.positionals.length < required || (!variadic && parsed.positionals.length > spec.args.length)) {
    throw usage(spec.name, `expected ${formatArgs(spec)}; see changetrail ${spec.name} --help`);
  }
  if (variadic) return { args: parsed.positionals, options: parsed.values };
  return { args: spec.args.map((_, i) => parsed.positionals[i]), options: parsed.values };
}

function formatArgs(spec: CommandSpec): string {
  return spec.args.map((a) => (a.endsWith('?') ? `[${a.slice(0, -1)}]` : `<${a}>`)).join(' ');
}

/** `changetrail <command> --help`. */
export function formatCommandHelp(spec: CommandSpec): string {
  const lines = [`usage: changetrail ${spec.name} ${formatArgs(spec)} [options]`, '', spec.summary];
  if (spec.description !== undefined) lines.push('', ...spec.description.split('\n'));
  lines.push('', 'options:');
  const all = { ...spec.options, ...GLOBAL_OPTIONS };
  const rows = Object.entries(all).map(([name, o]) => [`${o.short === undefined ? '    ' : `-${o.short}, `}--${name}${o.type === 'string' ? ` <${o.value ?? 'value'}>` : ''}`, o.description] as const);
  const width = Math.max(...rows.map(([flag]) => flag.length));
  for (const [flag, description] of rows) lines.push(`  ${flag.padEnd(width)}  ${description}`);
  if (spec.examples !== undefined && spec.examples.length > 0) lines.push('', 'examples:', ...spec.examples.map((e) => `  ${e}`));
  return lines.join('\n');
}

/** `changetrail --help`: every registered command with its summary. */
export function formatOverview(commands: readonly CommandSpec[], version: string): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `changetrail ${version}: every write to a SQLite file recorded, replayable and reversible`,
    '',
    'usage: changetrail <command> <db> [options]',
    '',
    'commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Every command takes --json (NDJSON for lists) and --help. Exit codes: 0 ok, 1 refused or failed',
    '(the error code and a hint are printed), 2 wrong usage, 70 internal error, 78 Node too old.',
    'See `changetrail <command> --help` for its options.',
  ].join('\n');
}
