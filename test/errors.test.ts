import { describe, expect, it } from 'vitest';
import { ChangetrailError, isErrorCode } from '../src/errors.js';

describe('ChangetrailError', () => {
  it('ok: carries a stable code and typed details', () => {
    const err = new ChangetrailError('JOURNAL_GAP', 'read journal: gap', { file: 'x', expectedSeq: 2, foundSeq: 4 });
    expect(err).toBeInstanceOf(Error);
    expect(ChangetrailError.is(err, 'JOURNAL_GAP')).toBe(true);
    expect(ChangetrailError.is(err, 'LOCK_TIMEOUT')).toBe(false);
    expect(err.details.foundSeq).toBe(4);
    expect(JSON.parse(JSON.stringify(err))).toMatchObject({ code: 'JOURNAL_GAP', details: { expectedSeq: 2 } });
  });

  it('ok: keeps the cause', () => {
    const cause = new Error('ENOSPC');
    const err = new ChangetrailError('IO_ERROR', 'append: no space', { operation: 'append', path: '/x' }, { cause });
    expect(err.cause).toBe(cause);
  });

  it('err: unknown codes are not codes', () => {
    expect(isErrorCode('JOURNAL_GAP')).toBe(true);
    expect(isErrorCode('NOPE')).toBe(false);
    expect(isErrorCode(42)).toBe(false);
  });
});
