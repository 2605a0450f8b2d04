import { ReplyError } from 'ioredis';
import { DependencyUnavailableError } from '../../domain/errors.js';

/**
 * Runs a Redis call; connection failures and timeouts become
 * DependencyUnavailableError (answered with 503), while errors Redis itself
 * replies with (a script bug, a wrong type) stay what they are.
 */
export async function redisCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (
      err instanceof ReplyError &&
      !/^(LOADING|BUSY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)/.test((err as Error).message)
    ) {
      throw err;
    }
    throw new DependencyUnavailableError('redis', err);
  }
}
