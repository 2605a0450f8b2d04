import { createServer, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import { rawProblem } from './problem.js';

/**
 * Room for a crowd arriving in the same instant: Node's default backlog (511)
 * overflows when thousands connect at once, and each overflow costs the client
 * a SYN retry of a second or more. The kernel caps it at net.core.somaxconn.
 */
const LISTEN_BACKLOG = 8_192;

/**
 * How long a stopping server leaves an idle keep-alive connection open: a
 * client that is sending gets its next answer (with `Connection: close`)
 * instead of a reset for a request already on its way.
 */
const IDLE_GRACE_MS = 1_000;

/** What a stopping server needs to know about the requests it holds. */
interface Traffic {
  stopping: boolean;
  readonly inFlight: Set<ServerResponse>;
}

const traffic = new WeakMap<Server, Traffic>();

/** Listens, and rejects (instead of leaving a process that never serves) when the port cannot be bound. */
export function listen(app: Express, port: number, host?: string): Promise<Server> {
  const server = createServer(app);
  const state: Traffic = { stopping: false, inFlight: new Set() };
  traffic.set(server, state);
  // Ahead of the app: a request that arrives while the server stops is answered, then its
  // connection closed (so a keep-alive client opens a new one, elsewhere).
  server.prependListener('request', (_req, res: ServerResponse) => {
    if (state.stopping) {
      res.setHeader('Connection', 'close');
      return;
    }
    state.inFlight.add(res);
    res.once('close', () => state.inFlight.delete(res));
  });
  // Keep-alive longer than common load balancers' idle timeout, so they close first.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  server.on('clientError', answerClientError);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

/**
 * Stops taking connections and lets the requests already here finish with their
 * real answers: every answer from now on carries `Connection: close`, and idle
 * keep-alive connections are closed after a short grace. Resolves once the last
 * connection is gone; the caller bounds the wait (and may closeAllConnections()).
 */
export function stopServing(server: Server): Promise<void> {
  const state = traffic.get(server);
  if (state && !state.stopping) {
    state.stopping = true;
    for (const res of state.inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
    state.inFlight.clear();
  }
  return new Promise((resolve) => {
    if (!server.listening) {
      resolve();
      return;
    }
    // http.Server#close() also closes idle keep-alive connections at once, and a request
    // already sent on one of them is lost (the client sees a reset). Closing only the
    // listener, then the idle connections after the grace, avoids that.
    NetServer.prototype.close.call(server, () => resolve());
    setTimeout(() => server.closeIdleConnections(), IDLE_GRACE_MS).unref();
  });
}

/** Node's own answer to a request it cannot parse is a bare status line; answer problem+json instead. */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  socket.end(
    err.code === 'HPE_HEADER_OVERFLOW'
      ? rawProblem('HEADERS_TOO_LARGE', 'the URL and headers must fit in 16 kB')
      : rawProblem('BAD_REQUEST', 'the request is not valid HTTP'),
  );
}
