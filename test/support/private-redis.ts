import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reaper } from './reaper.js';

const BINARY = 'redis-server';
const READY_TIMEOUT_MS = 10_000;
const START_ATTEMPTS = 3;

export interface PrivateRedisOptions {
  /** AOF with an fsync per write (`--appendonly yes --appendfsync always`): data survives a kill. */
  readonly appendOnly?: boolean;
}

/**
 * A redis-server child process that belongs to one test: its own port, its
 * own temporary directory, never daemonized, so the test can freeze, kill and
 * restart it without touching the shared Redis.
 */
export interface PrivateRedis {
  readonly url: string;
  readonly port: number;
  readonly dir: string;
  /** Process id of the current redis-server, undefined while it is not running. */
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly frozen: boolean;
  readonly appendOnly: boolean;
  /** SIGSTOP: the process stays, its socket accepts bytes, nothing answers. */
  freeze(): void;
  /** SIGCONT: answers again, in order, whatever was sent while frozen. */
  thaw(): void;
  /** SIGKILL and wait for the exit: a crash. The directory stays, so `restart()` can follow. */
  kill(): Promise<void>;
  /** Starts again on the same port and directory (killing first if still running). */
  restart(options?: PrivateRedisOptions): Promise<void>;
  /** Final teardown: SIGKILL, wait for the exit, remove the directory. Safe to call twice. */
  stop(): Promise<void>;
}

export async function startPrivateRedis(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
  const dir = mkdtempSync(join(tmpdir(), 'private-redis-'));
  reaper.trackFolder(dir);
  let appendOnly = options.appendOnly ?? false;
  let child: ChildProcess | undefined;
  let frozen = false;
  let stopped = false;
  let port = 0;

  const launch = async (): Promise<void> => {
    child = await spawnRedis(port, dir, appendOnly);
    frozen = false;
  };

  try {
    // A free port can be taken between our probe and redis-server's bind: try another one.
    let lastError: unknown;
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt += 1) {
      port = await freePort();
      try {
        await launch();
        lastError = undefined;
        break;
      } catch (err) {
        lastError = err;
        if (err instanceof MissingBinaryError) break;
      }
    }
    if (lastError !== undefined) throw lastError;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    reaper.forgetFolder(dir);
    throw err;
  }

  const signal = (name: NodeJS.Signals): void => {
    if (!child || exited(child)) throw new Error(`private Redis on port ${port} is not running`);
    child.kill(name);
  };

  return {
    get url() {
      return `redis://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    dir,
    get pid() {
      return child && !exited(child) ? child.pid : undefined;
    },
    get running() {
      return child !== undefined && !exited(child);
    },
    get frozen() {
      return frozen;
    },
    get appendOnly() {
      return appendOnly;
    },
    freeze() {
      signal('SIGSTOP');
      frozen = true;
    },
    thaw() {
      signal('SIGCONT');
      frozen = false;
    },
    async kill() {
      if (child) await killAndReap(child);
      frozen = false;
    },
    async restart(next: PrivateRedisOptions = {}) {
      if (stopped) throw new Error('private Redis was stopped for good; start a new one');
      if (child) await killAndReap(child);
      appendOnly = next.appendOnly ?? appendOnly;
      await launch();
    },
    async stop() {
      stopped = true;
      if (child) await killAndReap(child);
      frozen = false;
      rmSync(dir, { recursive: true, force: true });
      reaper.forgetFolder(dir);
    },
  };
}

class MissingBinaryError extends Error {}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGKILL works on a stopped process too; resolves once the exit has been reaped. */
async function killAndReap(child: ChildProcess): Promise<void> {
  if (exited(child)) {
    reaper.forget(child);
    return;
  }
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGKILL');
  await gone;
  reaper.forget(child);
}

/** Asks the kernel for a free port, then releases it for redis-server to take. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error('no free port'))));
    });
  });
}

async function spawnRedis(port: number, dir: string, appendOnly: boolean): Promise<ChildProcess> {
  const logfile = join(dir, 'redis.log');
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    appendOnly ? 'yes' : 'no',
    '--appendfsync',
    'always',
    '--maxmemory-policy',
    'noeviction',
    '--daemonize',
    'no',
    '--logfile',
    logfile,
  ];
  const child = spawn(BINARY, args, { stdio: 'ignore' });
  reaper.track(child);
  const failedToStart = new Promise<never>((_resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) => {
      reaper.forget(child);
      reject(
        err.code === 'ENOENT'
          ? new MissingBinaryError(
              `${BINARY} was not found on PATH: the Redis outage tests start their own ` +
                `${BINARY} process (install Redis, e.g. apt-get install redis-server)`,
            )
          : new Error(`could not start ${BINARY}: ${err.message}`),
      );
    });
    child.once('exit', (code, signal) => {
      reaper.forget(child);
      reject(
        new Error(
          `${BINARY} on port ${port} exited during start-up (${signal ?? `code ${code}`}):\n${tail(logfile)}`,
        ),
      );
    });
  });
  failedToStart.catch(() => undefined);
  try {
    await Promise.race([waitForPong(port), failedToStart]);
  } catch (err) {
    await killAndReap(child);
    throw err;
  }
  return child;
}

/** Polls with a raw PING until the server answers PONG (not LOADING, not refused). */
async function waitForPong(port: number): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    last = await ping(port);
    if (last === '+PONG') return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(
    `${BINARY} on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms (last: ${last})`,
  );
}

function ping(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const done = (answer: string) => {
      socket.destroy();
      resolve(answer);
    };
    socket.setTimeout(500, () => done('timeout'));
    socket.once('error', (err) => done(err.message));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString();
      if (reply.includes('\r\n')) done(reply.slice(0, reply.indexOf('\r\n')));
    });
  });
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}
