/** The zod-free fast path for write options gives what the schema gives, and defers everything else to it. */
import { describe, expect, it } from 'vitest';
import { AUDIT_TEXT_MAX, parseOptions, parseWriteOptions, writeOptionsSchema } from '../../src/write/options.js';

function outcome(fn: () => unknown): unknown {
  try {
    return { ok: JSON.parse(JSON.stringify(fn())) };
  } catch (error) {
    return { error: (error as Error).constructor.name, message: (error as Error).message };
  }
}

describe('parseWriteOptions', () => {
  const inputs: unknown[] = [
    undefined, null, {}, { message: 'm' }, { actor: 'a', message: 'm' }, { message: undefined }, { message: 'x'.repeat(AUDIT_TEXT_MAX) },
    { message: 'x'.repeat(AUDIT_TEXT_MAX + 1) }, { message: 3 }, { extra: 1 }, { meta: { a: [1, 'b', null] } }, { meta: { a: Number.NaN } },
    'text', 5, [], Object.create(null),
  ];
  for (const input of inputs) {
    it(`ok: ${JSON.stringify(input)?.slice(0, 40) ?? String(input)} as zod`, () => {
      expect(outcome(() => parseWriteOptions(input, 'write'))).toEqual(outcome(() => parseOptions(writeOptionsSchema, input, 'write')));
    });
  }
});
