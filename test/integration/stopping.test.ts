import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { promisify } from 'node:util';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, requestIssue } from '../support/http.js';
import {
  alive,
  deploymentOf,
  message,
  ProcessFleet,
  waitGone,
  type Launch,
  type ServiceProcess,
} from '../support/processes.js';

/**
 * The service stops as one, however it is signalled: `npm start` (what a
 * terminal, systemd or a container runtime signals), the built entry point,
 * any one of the supervisor's children, or the supervisor's parent dying.
 * Real processes, started as built (`npm run build` once, before).
 */

/** Every process of the service is gone well within this (SHUTDOWN_TIMEOUT_MS is 10 s). */
const GONE_WITHIN_MS = 20_000;

/** True when nothing listens on the port any more. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

/** The live processes of a process group, from /proc (zombies waiting to be reaped left out). */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm)": state, ppid, pgrp, …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') members.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return members;
}

/** The pid a JSON log line names (the process that wrote it). */
const pidOf = (line: { json: Record<string, unknown> | null }) => Number(line.json?.pid);

describe('stopping: a signal to any process of the service stops all of it', function () {
  this.timeout(90_000);
  let h: Harness;
  let fleet: ProcessFleet;

  before(async function () {
    this.timeout(180_000);
    await promisify(execFile)('npm', ['run', 'build', '--silent'], { cwd: process.cwd() });
    h = await startHarness();
  });
  beforeEach(() => {
    fleet = new ProcessFleet(deploymentOf(h));
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(fleet.dump());
    await fleet.stopAll();
  });
  after(async () => {
    await h?.cleanup();
  });

  /** Two API processes and a worker process under the supervisor, in their own process group. */
  async function startService(
    launch: Launch,
    options: { env?: Record<string, string>; faultPoints?: string } = {},
  ): Promise<{
    top: ServiceProcess;
    pids: { supervisor: number; api: number[]; worker: number[] };
    port: number;
  }> {
    const top = fleet.spawn({
      name: launch,
      role: 'all',
      launch,
      detached: true,
      env: { API_PROCESSES: '2', ...options.env },
      ...(options.faultPoints ? { faultPoints: options.faultPoints, leaseMs: 30_000 } : {}),
    });
    await top.waitForMessage('all processes ready', {}, { timeoutMs: 60_000 });
    const pids = top.servicePids();
    expect(pids.api).to.have.length(2);
    expect(pids.worker).to.have.length(1);
    const port = top.port;
    if (port === undefined) throw new Error('no "listening" line');
    expect(await portIsFree(port)).to.equal(false);
    return { top, pids, port };
  }

  async function expectAllGone(
    top: ServiceProcess,
    pids: { supervisor: number; api: number[]; worker: number[] },
    port: number,
  ): Promise<void> {
    await waitGone([top.pid, pids.supervisor, ...pids.api, ...pids.worker], GONE_WITHIN_MS);
    expect(groupMembers(top.pid), 'processes left in the group').to.deep.equal([]);
    expect(await portIsFree(port)).to.equal(true);
    expect(top.find(message('a process died: restarting it'))).to.deep.equal([]);
  }

  // A lone SIGINT to npm is not among them: npm passes it to the shell running the script,
  // which ignores it while it waits for its command. Ctrl-C signals the whole group instead.
  const cases = [
    ['npm-start', 'SIGTERM', 'process'],
    ['npm-start', 'SIGINT', 'group'],
    ['built', 'SIGTERM', 'process'],
    ['built', 'SIGINT', 'process'],
    ['built', 'SIGINT', 'group'],
  ] as const;
  for (const [launch, signal, to] of cases) {
    const command = launch === 'npm-start' ? 'npm start' : 'node dist/src/main.js';
    const target =
      to === 'process'
        ? `the process of \`${command}\` only`
        : `the process group of \`${command}\` (Ctrl-C)`;
    it(`when ${signal} is sent to ${target}, then the supervisor, its API processes and its worker process all stop cleanly and the port is free`, async () => {
      const { top, pids, port } = await startService(launch);

      if (to === 'process') top.signal(signal);
      else top.signalGroup(signal);

      await expectAllGone(top, pids, port);
      // Every child ended its shutdown itself (it logged "stopped"): none was killed.
      const stopped = top.find(message('stopped')).map(pidOf);
      expect(stopped.sort()).to.deep.equal([...pids.api, ...pids.worker].sort());
      // The pids are gone before Node reports the exit: wait for the report, not the pids.
      if (launch === 'built') {
        expect(await top.waitForExit(GONE_WITHIN_MS)).to.deep.equal({ code: 0, signal: null });
      }
    });
  }

  for (const role of ['api', 'worker'] as const) {
    it(`when SIGTERM is sent to one ${role} process of the supervisor, then the whole service stops (none is restarted) and the supervisor exits 0`, async () => {
      const { top, pids, port } = await startService('built');
      const target = role === 'api' ? pids.api[1] : pids.worker[0];

      process.kill(target as number, 'SIGTERM');

      expect(await top.waitForExit(GONE_WITHIN_MS)).to.deep.equal({ code: 0, signal: null });
      await expectAllGone(top, pids, port);
      const shutdown = top.find(message('shutting down')).find((l) => pidOf(l) === pids.supervisor);
      expect(shutdown?.json?.signal).to.equal(`SIGTERM to pid ${target}`);
    });
  }

  it("when the supervisor's parent dies (SIGKILL), then the supervisor notices and stops itself and its children", async () => {
    const { top, pids, port } = await startService('built-under-sh');
    expect(pids.supervisor).not.to.equal(top.pid);

    top.signal('SIGKILL');
    await top.waitForExit();

    await waitGone([pids.supervisor, ...pids.api, ...pids.worker], GONE_WITHIN_MS);
    expect(await portIsFree(port)).to.equal(true);
    expect(
      top.find(message('shutting down', { signal: 'parent exited', pid: pids.supervisor })),
    ).to.have.length(1);
  });

  it('when a child cannot finish its batch within SHUTDOWN_TIMEOUT_MS, then it cuts it off at its deadline, the supervisor exits 1, and nothing is left running', async () => {
    const { top, pids, port } = await startService('built', {
      env: { SHUTDOWN_TIMEOUT_MS: '2000', BATCH_LANES: '1' },
      faultPoints: 'before-commit=delay:8000',
    });
    const couponId = await createCoupon(h.baseUrl, { name: 'Slow batch', totalQuantity: 5 });
    expect((await requestIssue(h.baseUrl, couponId, 'slow')).status).to.equal(202);
    await top.waitForMessage('fault point reached', { point: 'before-commit', action: 'delay' });

    top.signal('SIGTERM');

    expect(await top.waitForExit(GONE_WITHIN_MS)).to.deep.equal({ code: 1, signal: null });
    await expectAllGone(top, pids, port);
    const cut = top.find(message('shutdown took too long: exiting'));
    expect(cut.map(pidOf)).to.deep.equal(pids.worker);
    expect(top.find(message('batch'))).to.deep.equal([]);
  });

  it('when the supervisor is killed (SIGKILL), then its children do not keep serving', async () => {
    const { top, pids, port } = await startService('built');

    top.signal('SIGKILL');

    await waitGone([...pids.api, ...pids.worker], GONE_WITHIN_MS);
    expect(await portIsFree(port)).to.equal(true);
    expect(pids.api.concat(pids.worker).some(alive)).to.equal(false);
  });
});
