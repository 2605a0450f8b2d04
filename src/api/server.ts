import type { Server } from 'node:http';
import type { Express } from 'express';

/** Listens, and rejects (instead of leaving a process that never serves) when the port cannot be bound. */
export function listen(app: Express, port: number, host?: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => (err ? reject(err) : resolve(server));
    const server: Server = host ? app.listen(port, host, done) : app.listen(port, done);
    // Keep-alive longer than common load balancers' idle timeout, so they close first.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
  });
}
