import { connect, type Socket } from 'node:net';

const DEFAULT_WAIT_MS = 15_000;

/**
 * One TCP connection to the service, driven byte by byte: for what a fetch
 * cannot do (stop halfway through the headers, wait for `100 Continue`,
 * hold a connection open).
 */
export class RawConnection {
  received = '';
  closed = false;
  private readonly waiters = new Set<() => void>();

  private constructor(private readonly socket: Socket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.received += chunk;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    // A reset by the server is a close like any other here.
    socket.on('error', () => undefined);
  }

  static open(baseUrl: string): Promise<RawConnection> {
    const { port } = new URL(baseUrl);
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1');
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new RawConnection(socket));
      });
      socket.once('error', reject);
    });
  }

  write(bytes: string): void {
    this.socket.write(bytes, 'latin1');
  }

  /** Waits until what was received satisfies the predicate; rejects if the connection closes first. */
  until(
    predicate: (received: string) => boolean,
    what: string,
    timeoutMs = DEFAULT_WAIT_MS,
  ): Promise<string> {
    return this.waitFor(() => predicate(this.received), what, timeoutMs, true);
  }

  /** Waits until the server closes the connection; rejects if it is still open after the timeout. */
  untilClosed(timeoutMs = DEFAULT_WAIT_MS): Promise<string> {
    return this.waitFor(() => this.closed, 'close by the server', timeoutMs, false);
  }

  private waitFor(
    condition: () => boolean,
    what: string,
    timeoutMs: number,
    failOnClose: boolean,
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      const settle = (error?: string) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        if (error === undefined) resolve(this.received);
        else reject(new Error(`${error}; received: ${JSON.stringify(this.received)}`));
      };
      const check = () => {
        if (condition()) settle();
        else if (failOnClose && this.closed) settle(`the connection closed before ${what}`);
      };
      const timer = setTimeout(() => settle(`no ${what} within ${timeoutMs} ms`), timeoutMs);
      this.waiters.add(check);
      check();
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}

/** A complete response's parts from raw bytes (one response, no chunked body). */
export function parseResponse(raw: string): {
  status: number;
  headers: Record<string, string>;
  body: string;
} {
  const end = raw.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return {
    status: Number(statusLine?.split(' ')[1]),
    headers,
    body: raw.slice(end + 4),
  };
}

/** True once `raw` holds a whole response with a Content-Length body. */
export function hasWholeResponse(raw: string): boolean {
  const end = raw.indexOf('\r\n\r\n');
  if (end < 0) return false;
  const length = /\r\ncontent-length: *(\d+)/i.exec(raw.slice(0, end + 2));
  return length !== null && raw.length >= end + 4 + Number(length[1]);
}
