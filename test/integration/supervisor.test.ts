import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { reaper } from '../support/reaper.js';
import { ADMIN_TOKEN, startHarness, type Harness } from '../support/harness.js';
import { createCoupon, http, requestIssue } from '../support/http.js';

/** Pids of the live children of a process, from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const line of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(/\s+/)) {
    if (line) out.push(Number(line));
  }
  return out;
}

/** The niceness of a process (field 19 of /proc/<pid>/stat). */
function niceOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return Number(fields[16]);
}

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the multi-process mode (npm start)', function () {
  this.timeout(60_000);
  let h: Harness;
  let primary: ChildProcess | undefined;
  let output = '';

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    primary?.kill('SIGKILL');
    await h.cleanup();
  });

  it('when started with ROLE=all and API_PROCESSES=2, then two API processes share the port, a worker process drains, a dead API process is replaced, and SIGTERM stops them all with exit 0', async () => {
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    primary = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        DATABASE_URL: h.databaseUrl,
        REDIS_KEY_PREFIX: h.prefix,
        ADMIN_TOKEN,
        ROLE: 'all',
        API_PROCESSES: '2',
        PORT: String(port),
        BATCH_INTERVAL_MS: '5',
        // Freshly forked processes on a loaded machine: the accept path's own bound is not
        // under test here, and a 503 from it would fail the test for the wrong reason.
        REDIS_COMMAND_TIMEOUT_MS: '10000',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    reaper.track(primary);
    primary.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    primary.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const pid = primary.pid as number;
    const baseUrl = `http://127.0.0.1:${port}`;

    await until('all processes ready', () =>
      output.includes('all processes ready') ? true : undefined,
    );
    const children = childrenOf(pid);
    expect(children, output).to.have.length(3);
    // The worker process yields the CPU to the API processes (WORKER_NICE, 10 by default).
    const ready = JSON.parse(
      output.split('\n').find((l) => l.includes('all processes ready')) ?? '{}',
    ) as { api?: number[]; worker?: number[] };
    expect(ready.api?.map(niceOf)).to.deep.equal([0, 0]);
    expect(ready.worker?.map(niceOf)).to.deep.equal([10]);

    const couponId = await createCoupon(baseUrl, { name: 'Cluster', totalQuantity: 5 });
    const accepted = await Promise.all(
      ['c1', 'c2', 'c3'].map((u) => requestIssue(baseUrl, couponId, u)),
    );
    expect(accepted.map((a) => a.status)).to.deep.equal([202, 202, 202]);
    // The worker process decides them without any help.
    await until('the requests to be issued', async () => {
      const statuses = await Promise.all(
        accepted.map(
          async (a) =>
            (await http(baseUrl, 'GET', `/issue-requests/${a.body.requestId}`)).body.status,
        ),
      );
      return statuses.every((s) => s === 'ISSUED') ? true : undefined;
    });

    // Kill one API process: the supervisor forks a new one and the service keeps answering.
    const apiPids = JSON.parse(/"api":(\[[^\]]*\])/.exec(output)?.[1] ?? '[]') as number[];
    expect(apiPids).to.have.length(2);
    process.kill(apiPids[0] as number, 'SIGKILL');
    await until('a replacement process', () => {
      const now = childrenOf(pid);
      return now.length === 3 && !now.includes(apiPids[0] as number) ? now : undefined;
    });
    await until('the replacement to be ready', () =>
      output.split('all processes ready').length > 2 ? true : undefined,
    );
    const after = await requestIssue(baseUrl, couponId, 'c4');
    expect(after.status).to.equal(202);

    const beforeStop = childrenOf(pid);
    primary.kill('SIGTERM');
    const exit = await new Promise<{ code: number | null }>((resolve) =>
      primary?.once('exit', (code) => resolve({ code })),
    );
    expect(exit.code, output).to.equal(0);
    const alive = (p: number) => {
      try {
        process.kill(p, 0);
        return true;
      } catch {
        return false;
      }
    };
    await until('every child to be gone', () => (beforeStop.some(alive) ? undefined : true), 5_000);
    expect(output).to.contain('a process died: restarting it');
  });
});
