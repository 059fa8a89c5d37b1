/**
 * Internal invariant checks. A failed assertion means a bug in changetrail, never bad input: it throws
 * `AssertionError`, which is not a `ChangetrailError` and is never caught and mapped to a code.
 */
export class AssertionError extends Error {
  constructor(message: string) {
    super(`changetrail internal assertion failed: ${message}`);
    this.name = 'AssertionError';
  }
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new AssertionError(message);
}
