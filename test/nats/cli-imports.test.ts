/**
 * The CLI loads the NATS client (@nats-io/*, ~40 ms of module loading) only for commands given a
 * nats:// address: every other command, a local replica and its status included, starts without it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/db.js';
import { cli, database, jsonError } from '../cli/run-cli.js';
import { freePort } from './nats-server.js';

const HOOK = new URL('./fixtures/trace-nats-imports.mjs', import.meta.url).pathname;

/** Runs the CLI; returns its result and the @nats-io modules it resolved. */
function traced(args: string[]): { code: number | null; stderr: string; natsModules: string[] } {
  const trace = join(tempDir('ct-cli-imports-'), 'trace.txt');
  const result = cli(args, { env: { NODE_OPTIONS: `--import ${HOOK}`, CT_TRACE_NATS_IMPORTS: trace } });
  const natsModules = existsSync(trace) ? readFileSync(trace, 'utf8').split('\n').filter((line) => line.length > 0) : [];
  return { code: result.code, stderr: result.stderr, natsModules };
}

describe('the CLI and the NATS client', () => {
  it('ok: commands without a nats:// address never load it', () => {
    const db = database();
    const replica = join(tempDir('ct-cli-imports-'), 'r.db');
    for (const args of [['--help'], ['init', db], ['log', db], ['status', db], ['replicate', db, replica], ['status', replica]]) {
      const run = traced(args);
      expect(run.code, `${args.join(' ')}: ${run.stderr}`).toBe(0);
      expect(run.natsModules, args.join(' ')).toEqual([]);
    }
  });

  it('ok: ship and replicate load it for a nats:// address (NATS_UNAVAILABLE with no server there)', async () => {
    const db = database();
    cli(['init', db]);
    const address = `nats://127.0.0.1:${await freePort()}/app`;
    for (const args of [['ship', db, address, '--json'], ['replicate', address, join(tempDir('ct-cli-imports-'), 'r.db'), '--json']]) {
      const run = traced(args);
      expect(run.code, run.stderr).toBe(1);
      expect(jsonError({ ...run, stdout: '' }).code).toBe('NATS_UNAVAILABLE');
      expect(run.natsModules).toContain('@nats-io/transport-node');
    }
  });
});
