import { createServer, type Server, type ServerResponse } from 'node:http';
import { Server as NetServer } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Express } from 'express';
import { BODY_LIMIT_BYTES } from './json-body.js';
import { rawProblem, writeProblem } from './problem.js';

/**
 * Room for a crowd arriving in the same instant: Node's default backlog (511)
 * overflows when thousands connect at once, and each overflow costs the client
 * a SYN retry of a second or more. The kernel caps it at net.core.somaxconn.
 */
const LISTEN_BACKLOG = 8_192;

/**
 * Keep-alive longer than common load balancers' idle timeout (60 s), so they
 * close first. Node 20 applies headersTimeout and requestTimeout from a
 * message's first byte until it is complete, and not while a kept-alive
 * connection waits between requests (the old advice to keep headersTimeout
 * above keepAliveTimeout dates from Node versions that started the headers
 * clock at the previous response); an idle connection is bounded by this
 * timeout alone, and test/integration/http-edge.test.ts proves the two apart.
 */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** How long a client that was answered with an error may keep its socket half open. */
const CLOSE_GRACE_MS = 5_000;

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

/** What one client may hold of this process. */
export interface HttpLimits {
  /** Time to send the request line and headers. */
  readonly headersTimeoutMs: number;
  /** Time to send the whole request, body included; at least headersTimeoutMs. */
  readonly requestTimeoutMs: number;
  /**
   * Open connections this process accepts. Past it Node closes each new
   * connection as soon as it is accepted, without an answer: nothing is read
   * from it, and the client sees the connection reset and may retry, which is
   * the cheapest refusal there is.
   */
  readonly maxConnections: number;
}

/** Listens, and rejects (instead of leaving a process that never serves) when the port cannot be bound. */
export function listen(
  app: Express,
  port: number,
  host: string | undefined,
  limits: HttpLimits,
): Promise<Server> {
  const server = createServer(
    {
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
      // Node looks for expired requests on this interval (30 s by default, which
      // would let a 10 s timeout run to 40 s); the check walks only connections
      // with a request under way.
      connectionsCheckingInterval: Math.max(
        10,
        Math.min(1_000, Math.floor(limits.headersTimeoutMs / 4)),
      ),
    },
    app,
  );
  server.maxConnections = limits.maxConnections;
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
  server.on('clientError', answerClientError);
  server.on('checkContinue', (req, res) => {
    // No route reads more than this: refuse before the client sends the body, not after.
    if (Number(req.headers['content-length']) > BODY_LIMIT_BYTES) {
      writeProblem(
        res,
        'PAYLOAD_TOO_LARGE',
        `the body must not exceed ${BODY_LIMIT_BYTES} bytes; it was not sent`,
      );
      return;
    }
    res.writeContinue();
    app(req, res);
  });
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

/**
 * Node's own answer to a request it cannot parse, or one that took too long,
 * is a bare status line; answer problem+json instead, and close.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  // Nothing can be said to a client that is gone, or that already has part of another answer.
  if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
    socket.destroy();
    return;
  }
  socket.end(clientErrorAnswer(err.code));
  // A client that never closes its side must not keep the connection.
  const timer = setTimeout(() => socket.destroy(), CLOSE_GRACE_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function clientErrorAnswer(code: string | undefined): string {
  switch (code) {
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return rawProblem(
        'REQUEST_TIMEOUT',
        'the request was not received in time (see HTTP_HEADERS_TIMEOUT_MS and HTTP_REQUEST_TIMEOUT_MS)',
      );
    case 'HPE_HEADER_OVERFLOW':
      return rawProblem('HEADERS_TOO_LARGE', 'the URL and headers must fit in 16 kB');
    default:
      return rawProblem('BAD_REQUEST', 'the request is not valid HTTP');
  }
}
