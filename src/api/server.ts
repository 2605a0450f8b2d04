import { createServer, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import { rawProblem } from './problem.js';

/**
 * Room for a crowd arriving in the same instant: Node's default backlog (511)
 * overflows when thousands connect at once, and each overflow costs the client
 * a SYN retry of a second or more. The kernel caps it at net.core.somaxconn.
 */
const LISTEN_BACKLOG = 8_192;

/** Listens, and rejects (instead of leaving a process that never serves) when the port cannot be bound. */
export function listen(app: Express, port: number, host?: string): Promise<Server> {
  const server = createServer(app);
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
