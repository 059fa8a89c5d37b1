/** The command registry drives dispatch and help: every registered command has usable help (in-process). */
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/run.js';
import { COMMANDS } from '../../src/cli/registry.js';
import { escapeControl, formatCounts, formatValue } from '../../src/cli/format.js';
import { toJson } from '../../src/cli/output.js';
import { cli, database } from './run-cli.js';

function sink(): { write(text: string): void; text: string } {
  return { text: '', write(text: string) { this.text += text; } };
}

async function run(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = sink();
  const stderr = sink();
  const code = await main(argv, { stdout, stderr, env: {} });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

describe('COMMANDS', () => {
  it('ok: names are unique words; summaries are one line', () => {
    const names = COMMANDS.map((c) => c.name);
    expect(new Set(names).size).toBe(names.length);
    for (const command of COMMANDS) {
      expect(command.name).toMatch(/^[a-z][a-z-]*$/);
      expect(command.summary).not.toContain('\n');
    }
  });

  it('ok: --help lists every command; each command answers --help with its usage and options', async () => {
    const overview = await run(['--help']);
    expect(overview.code).toBe(0);
    for (const command of COMMANDS) {
      expect(overview.stdout).toContain(`  ${command.name} `);
      const help = await run([command.name, '--help']);
      expect(help.code, command.name).toBe(0);
      expect(help.stdout).toContain(`usage: changetrail ${command.name}`);
      expect(help.stdout).toContain('--json');
      for (const option of Object.keys(command.options)) expect(help.stdout, `${command.name} --${option}`).toContain(`--${option}`);
    }
  });

  it('err: missing arguments are CLI_USAGE (exit 2) naming the command', async () => {
    for (const command of COMMANDS.filter((c) => c.args.some((a) => !a.endsWith('?')))) {
      const result = await run([command.name, '--json']);
      expect(result.code, command.name).toBe(2);
      expect(JSON.parse(result.stderr).error).toMatchObject({ code: 'CLI_USAGE', details: { command: command.name } });
    }
  });
});

describe('format', () => {
  it('ok: escapes C0, DEL, C1 and bidi controls; keeps other text', () => {
    expect(escapeControl('a\r\nb\u001b[2J\u0007\u007f\u009b\u202eé')).toBe('a\\r\\nb\\e[2J\\x07\\x7f\\x9b\\u202eé');
    expect(formatValue(new Uint8Array(20).fill(255))).toBe(`x'${'ff'.repeat(16)}…' (20 bytes)`);
    expect(formatValue(1.0)).toBe('1.0');
    expect(formatValue(2n)).toBe('2');
    expect(formatValue("it's")).toBe("'it''s'");
    expect(formatCounts([{ table: 't', inserts: 2, updates: 0, deletes: 1 }])).toBe('t +2 -1');
    expect(toJson({ b: new Uint8Array([1, 2]), n: 2n ** 70n })).toBe(`{"b":{"$blob":"0102"},"n":"${2n ** 70n}"}`);
  });
});

describe('--meta', () => {
  it('ok: exec --meta stores a JSON object, shown by log; err: anything else is CLI_USAGE', () => {
    const path = database();
    cli(['init', path]);
    const exec = cli(['exec', path, `INSERT INTO t VALUES (1, 'a')`, '--meta', '{"ticket":"OPS-7"}', '--json']);
    expect(exec.code, exec.stderr).toBe(0);
    expect(JSON.parse(exec.stdout).meta).toEqual({ ticket: 'OPS-7' });
    for (const bad of ['[1]', 'nope', '42']) expect(cli(['exec', path, `INSERT INTO t VALUES (2, 'b')`, '--meta', bad]).code).toBe(2);
    expect(JSON.parse(cli(['status', path, '--json']).stdout).headSeq).toBe(1);
  });
});
