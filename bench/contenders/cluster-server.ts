/**
 * What the two contender servers share: a node:cluster primary that forks
 * PROCESSES HTTP workers on one port and prints one ready line, and the
 * worker-side plumbing (listen, stop, error answers).
 */
import cluster, { type Worker } from 'node:cluster';
import type { Server } from 'node:http';
import type { Express, NextFunction, Request, Response } from 'express';

/** Sent by a worker to the primary. */
export type WorkerMessage = { type: 'listening' } | { type: 'failed'; message: string };

export function intEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < (name === 'PORT' ? 0 : 1)) {
    console.error(`${name}=${raw} is not a valid value`);
    process.exit(1);
  }
  return value;
}

/**
 * Forks the workers; prints `{"ready":true,"pid":…,"pids":[…],"port":…}` once
 * every one listens; SIGTERM or SIGINT stops them and exits 0; a worker that
 * fails or dies stops everything with exit code 1.
 */
export function superviseWorkers(name: string, processes: number, port: number): void {
  const workers = new Map<number, Worker>();
  const listening = new Set<number>();
  let stopping = false;

  const stop = (code: number) => {
    if (stopping) return;
    stopping = true;
    const alive = [...workers.values()].filter((w) => !w.isDead());
    if (alive.length === 0) process.exit(code);
    let left = alive.length;
    for (const worker of alive) {
      worker.once('exit', () => {
        left -= 1;
        if (left === 0) process.exit(code);
      });
      worker.process.kill('SIGTERM');
    }
    // A worker stuck on a socket must not keep the primary alive.
    setTimeout(() => {
      for (const worker of alive) if (!worker.isDead()) worker.process.kill('SIGKILL');
      process.exit(code);
    }, 5_000).unref();
  };

  process.on('SIGTERM', () => stop(0));
  process.on('SIGINT', () => stop(0));

  for (let i = 0; i < processes; i += 1) {
    const worker = cluster.fork();
    workers.set(worker.id, worker);
    worker.on('message', (message: WorkerMessage) => {
      if (message.type === 'failed') {
        console.error(`${name}: worker ${worker.process.pid} failed: ${message.message}`);
        stop(1);
      } else if (message.type === 'listening') {
        listening.add(worker.id);
        if (listening.size === processes && !stopping) {
          const pids = [...workers.values()].map((w) => w.process.pid);
          process.stdout.write(
            `${JSON.stringify({ ready: true, pid: process.pid, pids, port: port })}\n`,
          );
        }
      }
    });
    worker.on('exit', (code, signal) => {
      if (stopping) return;
      console.error(`${name}: worker ${worker.process.pid} exited (${signal ?? code})`);
      stop(1);
    });
  }
}

/** Worker-side set-up: only the primary decides when to stop; an orphan exits. */
export function workerChannel(): (message: WorkerMessage) => void {
  // Ctrl-C reaches the whole process group; only the primary decides when to stop.
  process.on('SIGINT', () => undefined);
  // Orphaned (primary killed with SIGKILL): do not linger.
  process.on('disconnect', () => process.exit(0));
  return (message) => process.send?.(message);
}

/** Answers errors Express raises (a bad body) with a small JSON body. */
export function jsonErrors(app: Express): void {
  app.use((err: { status?: number }, _req: Request, res: Response, _next: NextFunction) => {
    const status = err.status ?? 500;
    res.status(status).json({ code: status < 500 ? 'BAD_REQUEST' : 'ERROR' });
  });
}

/** Listens, tells the primary, and runs `onStop` on SIGTERM. */
export function serve(
  app: Express,
  port: number,
  send: (message: WorkerMessage) => void,
  onStop: (server: Server) => void,
): void {
  const server: Server = app.listen(port, (err?: Error) => {
    if (err) send({ type: 'failed', message: `cannot listen on ${port}: ${err.message}` });
    else send({ type: 'listening' });
  });
  process.on('SIGTERM', () => onStop(server));
}

export const isPrimary = cluster.isPrimary;
export type { Worker };
