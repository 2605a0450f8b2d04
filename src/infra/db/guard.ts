import { DependencyUnavailableError } from '../../domain/errors.js';

/**
 * SQLSTATEs that mean "the database cannot be used right now", not "the query
 * is wrong": connection failures (08), insufficient resources (53), shutdown
 * and restart (57P01-57P04), and the refusals a connection attempt meets (no
 * such database, authentication failed, connections not allowed).
 */
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-4]|3D000|28)/;
const REFUSING_CONNECTIONS = /not currently accepting connections/i;

/**
 * Runs a PostgreSQL call; connection failures become DependencyUnavailableError
 * (answered with 503), while errors in the query itself stay what they are.
 */
export async function postgresCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isUnavailable(err)) throw new DependencyUnavailableError('postgres', err);
    throw err;
  }
}

export function isUnavailable(err: unknown): boolean {
  const e = (err ?? {}) as { code?: unknown; message?: unknown; cause?: unknown };
  if (typeof e.code === 'string') {
    if (UNAVAILABLE_SQLSTATE.test(e.code)) return true;
    if (
      e.code === '55000' &&
      typeof e.message === 'string' &&
      REFUSING_CONNECTIONS.test(e.message)
    ) {
      return true;
    }
    if (
      ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH'].includes(
        e.code,
      )
    )
      return true;
  }
  if (
    typeof e.message === 'string' &&
    /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(
      e.message,
    )
  ) {
    return true;
  }
  // drizzle wraps driver errors in a DrizzleQueryError with the original as the cause.
  return e.cause !== undefined && e.cause !== err ? isUnavailable(e.cause) : false;
}
