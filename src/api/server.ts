import { createServer, type Server } from 'node:http';
import type { Express } from 'express';

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
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}
