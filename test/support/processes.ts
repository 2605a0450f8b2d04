import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Harness } from './harness.js';
import { reaper } from './reaper.js';

/**
 * Real service processes (`node --import tsx src/main.ts`) for tests that need
 * what an in-process container cannot give: a process that dies by SIGKILL,
 * freezes with SIGSTOP or shuts down on SIGTERM in the middle of a batch.
 *
 * Every process is spawned through a ProcessFleet; `stopAll()` (call it in
 * afterEach) kills whatever is still running, frozen ones included. Each
 * process's stdout and stderr are kept line by line (the service logs JSON
 * lines) for assertions and for printing when a test fails.
 */

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const ENTRY_POINT = 'src/main.ts';

/**
 * How a process is started: from the sources (the default), as built
 * (`node dist/src/main.js`, after `npm run build`), or the way an operator
 * does, `npm start` (its pre-scripts skipped: the build is done once, before),
 * or as built under a shell that stays its parent (`sh -c '…; exit $?'`).
 */
export type Launch = 'tsx' | 'built' | 'npm-start' | 'built-under-sh';

const COMMANDS: Record<Launch, readonly [string, readonly string[]]> = {
  tsx: [process.execPath, ['--import', 'tsx', ENTRY_POINT]],
  built: [process.execPath, ['dist/src/main.js']],
  'npm-start': ['npm', ['start', '--ignore-scripts', '--silent']],
  // Anything after the command keeps the shell from replacing itself with it.
  'built-under-sh': ['sh', ['-c', `"${process.execPath}" dist/src/main.js; exit $?`]],
};

/** Whether a process exists and has not exited (a zombie waiting to be reaped counts as gone). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Waits until none of the pids is alive; rejects naming those left after the timeout. */
export async function waitGone(
  pids: readonly number[],
  timeoutMs = DEFAULT_WAIT_MS,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const left = pids.filter(alive);
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`still running after ${timeoutMs} ms: ${left.join(', ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export type Role = 'worker' | 'api' | 'all';

/** Where a deployment lives: the database, Redis and key prefix its processes share. */
export interface Deployment {
  readonly databaseUrl: string;
  readonly redisUrl: string;
  readonly prefix: string;
  readonly adminToken: string;
  /** Settings every process of the fleet gets (a spawn's own `env` wins). */
  readonly env?: Readonly<Record<string, string>>;
}

/** The deployment of an in-process harness, so spawned processes share its database and keys. */
export function deploymentOf(h: Harness): Deployment {
  return {
    databaseUrl: h.databaseUrl,
    redisUrl: h.container.config.redisUrl,
    prefix: h.prefix,
    adminToken: h.container.config.adminToken,
  };
}

export interface SpawnOptions {
  /** A short name for messages and dumps (default: role and a counter). */
  readonly name?: string;
  readonly role: Role;
  /** 0 (the default) lets the system choose; the port actually bound is read back from the log. */
  readonly port?: number;
  readonly leaseMs?: number;
  readonly batchSize?: number;
  /** BATCH_LANES: batches the worker keeps in flight (the service's default when unset). */
  readonly lanes?: number;
  readonly batchIntervalMs?: number;
  /** FAULT_POINTS, e.g. `after-take=kill` or `before-commit=delay:1500`. */
  readonly faultPoints?: string;
  readonly logLevel?: 'error' | 'warn' | 'info' | 'debug';
  /** Anything else to set (or override) in the process's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** How to start it (default `tsx`). */
  readonly launch?: Launch;
  /**
   * Leads its own process group, as a service started from a terminal or by a process
   * manager does; stopAll() then kills the whole group (children left by a dead parent too).
   */
  readonly detached?: boolean;
}

export interface LogLine {
  readonly process: string;
  readonly pid: number;
  readonly stream: 'stdout' | 'stderr';
  readonly text: string;
  /** The parsed JSON object, or null for a line that is not a JSON object. */
  readonly json: Record<string, unknown> | null;
  /** `json.message` when it is a string. */
  readonly message: string | undefined;
  /** Order of arrival across every process of every fleet. */
  readonly seq: number;
  readonly receivedAt: number;
}

export type LinePredicate = (line: LogLine) => boolean;

export interface ExitInfo {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  /** Only lines at or after this index of the process's `lines` count (default 0: all so far). */
  readonly fromIndex?: number;
  /** Named in the timeout error. */
  readonly description?: string;
}

const DEFAULT_WAIT_MS = 20_000;
let sequence = 0;

/** A line matcher: the message, plus fields that must be equal (a partial match). */
export function message(text: string, fields: Record<string, unknown> = {}): LinePredicate {
  return (line) =>
    line.message === text &&
    Object.entries(fields).every(([key, value]) => line.json?.[key] === value);
}

interface Waiter {
  readonly predicate: LinePredicate;
  readonly fromIndex: number;
  readonly resolve: (line: LogLine) => void;
  readonly reject: (err: Error) => void;
}

export class ServiceProcess {
  readonly lines: LogLine[] = [];
  readonly pid: number;
  /** Settles once the process has exited and its output has been read to the end. */
  readonly closed: Promise<ExitInfo>;
  private exitInfo: ExitInfo | undefined;
  private spawnError: Error | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly partial = { stdout: '', stderr: '' };

  constructor(
    readonly name: string,
    readonly role: Role,
    private readonly child: ChildProcess,
    /** True when the process leads its own process group. */
    readonly detached = false,
  ) {
    this.pid = child.pid ?? -1;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.receive('stdout', chunk));
    child.stderr?.on('data', (chunk: string) => this.receive('stderr', chunk));
    this.closed = new Promise((resolve) => {
      child.once('error', (err) => {
        this.spawnError = err;
      });
      // 'close', not 'exit': it comes after stdout and stderr were read to their end.
      child.once('close', (code, signal) => {
        reaper.forget(child);
        this.flush('stdout');
        this.flush('stderr');
        this.exitInfo = { code, signal };
        const why = this.spawnError
          ? `could not start: ${this.spawnError.message}`
          : `exited (code ${code}, signal ${signal})`;
        for (const waiter of this.waiters) {
          waiter.reject(new Error(`${this.name} (pid ${this.pid}) ${why} before the line came`));
        }
        this.waiters.clear();
        resolve(this.exitInfo);
      });
    });
  }

  /** How the process ended, or undefined while it runs. */
  get exit(): ExitInfo | undefined {
    return this.exitInfo;
  }

  get running(): boolean {
    return this.exitInfo === undefined;
  }

  /** The port from the "listening" line (API processes), once it was logged. */
  get port(): number | undefined {
    const line = this.lines.find(message('listening'));
    const port = line?.json?.port;
    return typeof port === 'number' ? port : undefined;
  }

  get baseUrl(): string {
    const port = this.port;
    if (port === undefined) throw new Error(`${this.name} has not logged "listening" yet`);
    return `http://127.0.0.1:${port}`;
  }

  /** Sends a signal; false when the process is already gone. */
  signal(signal: NodeJS.Signals): boolean {
    if (!this.running) return false;
    try {
      return this.child.kill(signal);
    } catch {
      return false;
    }
  }

  /** Sends a signal to the process's group (detached processes only); false when none is left. */
  signalGroup(signal: NodeJS.Signals): boolean {
    if (!this.detached) throw new Error(`${this.name} does not lead a process group`);
    try {
      process.kill(-this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /**
   * The pids of a supervised service, from its log: the supervisor (the last one to log
   * "supervisor started") and the processes of its latest "all processes ready".
   */
  servicePids(): { supervisor: number; api: number[]; worker: number[] } {
    const started = this.find(message('supervisor started')).at(-1);
    const ready = this.find(message('all processes ready')).at(-1);
    if (!started || !ready) throw new Error(`${this.name}: the supervised service is not ready`);
    return {
      supervisor: Number(started.json?.pid),
      api: (ready.json?.api as number[] | undefined) ?? [],
      worker: (ready.json?.worker as number[] | undefined) ?? [],
    };
  }

  /** Lines matching a predicate, in order. */
  find(predicate: LinePredicate): LogLine[] {
    return this.lines.filter(predicate);
  }

  /** The first line matching the predicate (already logged or still to come). */
  waitForLine(predicate: LinePredicate, options: WaitOptions = {}): Promise<LogLine> {
    const fromIndex = options.fromIndex ?? 0;
    const found = this.lines.slice(fromIndex).find(predicate);
    if (found) return Promise.resolve(found);
    if (!this.running) {
      return Promise.reject(
        new Error(
          `${this.name} (pid ${this.pid}) exited (code ${this.exitInfo?.code}, signal ${this.exitInfo?.signal}) without logging ${options.description ?? 'the line'}`,
        ),
      );
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(
            `${this.name} (pid ${this.pid}) did not log ${options.description ?? 'the line'} within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      const waiter: Waiter = {
        predicate,
        fromIndex,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Waits for a line with this message (and these field values). */
  waitForMessage(
    text: string,
    fields: Record<string, unknown> = {},
    options: Omit<WaitOptions, 'description'> = {},
  ): Promise<LogLine> {
    const description = `"${text}"${Object.keys(fields).length ? ` with ${JSON.stringify(fields)}` : ''}`;
    return this.waitForLine(message(text, fields), { ...options, description });
  }

  /** Resolves when the process has started its worker and/or its API, as its role says. */
  async ready(timeoutMs = 30_000): Promise<this> {
    if (this.role !== 'api') await this.waitForMessage('batch worker started', {}, { timeoutMs });
    if (this.role !== 'worker') await this.waitForMessage('listening', {}, { timeoutMs });
    return this;
  }

  /** Waits for the process to exit; rejects (leaving it running) after the timeout. */
  async waitForExit(timeoutMs = DEFAULT_WAIT_MS): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new Error(`${this.name} (pid ${this.pid}) did not exit within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([this.closed, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * The scheduler state of the process from /proc (Linux): `T` when stopped,
   * `S`/`R` when running; undefined when it is gone.
   */
  schedulerState(): string | undefined {
    if (!this.running) return undefined;
    try {
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      // "pid (comm) S ...": the command may hold spaces and parentheses, the state follows the last ')'.
      return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    } catch {
      return undefined;
    }
  }

  /** Waits until the kernel reports the process stopped (after SIGSTOP). */
  async waitStopped(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const state = this.schedulerState();
      if (state === 'T' || state === 't') return;
      if (!this.running)
        throw new Error(`${this.name} (pid ${this.pid}) exited instead of stopping`);
      if (Date.now() > deadline) {
        throw new Error(`${this.name} (pid ${this.pid}) is not stopped (state ${state})`);
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Kills the process (waking it first if frozen) and waits until it is gone. */
  async kill(timeoutMs = 10_000): Promise<ExitInfo> {
    if (this.detached) {
      // The group outlives its leader when the leader dies first: end what is left of it.
      this.signalGroup('SIGCONT');
      this.signalGroup('SIGKILL');
    }
    if (this.running) {
      // SIGKILL also ends a stopped process; SIGCONT first costs nothing and leaves no doubt.
      this.signal('SIGCONT');
      this.signal('SIGKILL');
    }
    return this.waitForExit(timeoutMs);
  }

  /** Everything the process wrote, for failure messages. */
  dump(): string {
    const status = this.exitInfo
      ? `exited code=${this.exitInfo.code} signal=${this.exitInfo.signal}`
      : 'running';
    return [
      `----- ${this.name} (pid ${this.pid}, ${this.role}, ${status}) -----`,
      ...this.lines.map((l) => (l.stream === 'stderr' ? `[stderr] ${l.text}` : l.text)),
    ].join('\n');
  }

  private receive(stream: 'stdout' | 'stderr', chunk: string): void {
    const text = this.partial[stream] + chunk;
    const parts = text.split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const part of parts) this.addLine(stream, part);
  }

  private flush(stream: 'stdout' | 'stderr'): void {
    if (this.partial[stream] !== '') this.addLine(stream, this.partial[stream]);
    this.partial[stream] = '';
  }

  private addLine(stream: 'stdout' | 'stderr', raw: string): void {
    const text = raw.replace(/\r$/, '');
    if (text.trim() === '') return;
    let json: Record<string, unknown> | null = null;
    if (text.startsWith('{')) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
          json = parsed as Record<string, unknown>;
        }
      } catch {
        // not JSON: kept as text
      }
    }
    const line: LogLine = {
      process: this.name,
      pid: this.pid,
      stream,
      text,
      json,
      message: typeof json?.message === 'string' ? json.message : undefined,
      seq: (sequence += 1),
      receivedAt: Date.now(),
    };
    const index = this.lines.push(line) - 1;
    for (const waiter of this.waiters) {
      if (index >= waiter.fromIndex && waiter.predicate(line)) {
        this.waiters.delete(waiter);
        waiter.resolve(line);
      }
    }
  }
}

/** The processes of one test: spawned against one deployment, all ended by stopAll(). */
export class ProcessFleet {
  readonly processes: ServiceProcess[] = [];
  private counter = 0;

  constructor(private readonly deployment: Deployment) {}

  /** Starts a process and returns at once (see ServiceProcess.ready()). */
  spawn(options: SpawnOptions): ServiceProcess {
    this.counter += 1;
    const name = options.name ?? `${options.role}-${this.counter}`;
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      DATABASE_URL: this.deployment.databaseUrl,
      REDIS_URL: this.deployment.redisUrl,
      REDIS_KEY_PREFIX: this.deployment.prefix,
      ADMIN_TOKEN: this.deployment.adminToken,
      ROLE: options.role,
      // One process per spawn: the tests start as many API processes as they mean to.
      API_PROCESSES: '1',
      PORT: String(options.port ?? 0),
      LEASE_MS: String(options.leaseMs ?? 1_500),
      BATCH_SIZE: String(options.batchSize ?? 100),
      ...(options.lanes === undefined ? {} : { BATCH_LANES: String(options.lanes) }),
      BATCH_INTERVAL_MS: String(options.batchIntervalMs ?? 5),
      FAULT_POINTS: options.faultPoints ?? '',
      LOG_LEVEL: options.logLevel ?? 'info',
      // Fault tests send thousands of requests from one address: limits are tested on their own.
      RATE_LIMIT_ENABLED: 'false',
      ...this.deployment.env,
      ...options.env,
    };
    const [command, args] = COMMANDS[options.launch ?? 'tsx'];
    const detached = options.detached ?? false;
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached,
    });
    reaper.track(child, detached);
    const proc = new ServiceProcess(name, options.role, child, detached);
    this.processes.push(proc);
    return proc;
  }

  /** Starts a process and waits until it is ready (worker started and/or listening). */
  async start(options: SpawnOptions, timeoutMs = 30_000): Promise<ServiceProcess> {
    const proc = this.spawn(options);
    try {
      return await proc.ready(timeoutMs);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${proc.dump()}`);
    }
  }

  /** Lines of every process matching the predicate, in the order they arrived. */
  find(predicate: LinePredicate): LogLine[] {
    return this.processes.flatMap((p) => p.find(predicate)).sort((a, b) => a.seq - b.seq);
  }

  /** Everything every process wrote, for failure messages. */
  dump(): string {
    return this.processes.map((p) => p.dump()).join('\n');
  }

  /** Kills every process still running (frozen ones too) and waits until each is gone. */
  async stopAll(timeoutMs = 10_000): Promise<void> {
    const results = await Promise.allSettled(this.processes.map((p) => p.kill(timeoutMs)));
    const stuck = results
      .map((r, i) => (r.status === 'rejected' ? this.processes[i] : undefined))
      .filter((p): p is ServiceProcess => p !== undefined);
    if (stuck.length > 0) {
      throw new Error(`still running after SIGKILL: ${stuck.map((p) => p.pid).join(', ')}`);
    }
  }
}
