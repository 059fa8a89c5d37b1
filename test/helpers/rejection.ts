import { ChangetrailError } from '../../src/index.js';

/** The ChangetrailError `promise` rejects with; another error, or none, fails the test. */
export async function rejection(promise: Promise<unknown>): Promise<ChangetrailError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ChangetrailError) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}
