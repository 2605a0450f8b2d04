import { expect } from 'chai';
import { Agent, request } from 'node:http';
import { startHarness, type Harness } from '../support/harness.js';
import { createCoupon, requestIssue } from '../support/http.js';
import { deploymentOf, message, ProcessFleet, type ServiceProcess } from '../support/processes.js';
import { couponState } from '../support/state.js';

/**
 * SIGTERM to a service under keep-alive load: the requests it holds get their
 * real answers, keep-alive clients are told to go (`Connection: close`), Redis
 * and PostgreSQL close only after the last answer, and every accepted request
 * is decided once a worker runs again.
 */

const CLIENTS = 32;
/** Answers before the signal: the load is well under way. */
const ANSWERS_BEFORE_SIGNAL = 400;

interface Outcome {
  readonly client: number;
  readonly status?: number;
  readonly requestId?: string;
  readonly code?: string;
  readonly connection?: string;
  /** The socket had carried an earlier request (keep-alive) when this one was sent. */
  readonly reused: boolean;
  readonly error?: string;
}

/** One POST on the client's own keep-alive agent. */
function accept(agent: Agent, port: number, couponId: number, userId: string, client: number) {
  return new Promise<Outcome>((resolve) => {
    const body = JSON.stringify({ userId });
    const req = request(
      {
        agent,
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: `/coupons/${couponId}/issue-requests`,
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let parsed: { requestId?: string; code?: string } = {};
          try {
            parsed = JSON.parse(text) as typeof parsed;
          } catch {
            // not JSON: the status says enough
          }
          resolve({
            client,
            status: res.statusCode,
            requestId: parsed.requestId,
            code: parsed.code,
            connection: res.headers.connection,
            reused: req.reusedSocket,
          });
        });
        res.on('error', (err: NodeJS.ErrnoException) =>
          resolve({ client, reused: req.reusedSocket, error: err.code ?? err.message }),
        );
      },
    );
    req.on('error', (err: NodeJS.ErrnoException) =>
      resolve({ client, reused: req.reusedSocket, error: err.code ?? err.message }),
    );
    req.end(body);
  });
}

describe('shutdown under keep-alive load', function () {
  this.timeout(120_000);
  let h: Harness;
  let fleet: ProcessFleet;

  beforeEach(async () => {
    h = await startHarness();
    fleet = new ProcessFleet(deploymentOf(h));
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') console.error(fleet.dump());
    try {
      await fleet.stopAll();
    } finally {
      await h.cleanup();
    }
  });

  const layouts = [
    { name: 'one process (ROLE=all, API_PROCESSES=1)', apiProcesses: 1 },
    { name: 'the supervisor with two API processes and a worker process', apiProcesses: 2 },
  ];
  for (const layout of layouts) {
    it(`when ${layout.name} gets SIGTERM while ${CLIENTS} keep-alive clients send requests, then every answer is a real one (no 5xx), keep-alive clients are told to close, it exits 0 logging a handful of lines, and every accepted request is decided after a restart`, async () => {
      const couponId = await createCoupon(h.baseUrl, {
        name: 'Under load',
        totalQuantity: 1_000_000,
      });
      const service = await startService(layout.apiProcesses);
      const port = service.port as number;

      const outcomes: Outcome[] = [];
      let signalled = false;
      let signalledAt = 0;
      const agents = Array.from(
        { length: CLIENTS },
        () => new Agent({ keepAlive: true, maxSockets: 1 }),
      );
      const clients = agents.map(async (agent, client) => {
        for (let n = 0; ; n += 1) {
          const outcome = await accept(agent, port, couponId, `c${client}-u${n}`, client);
          outcomes.push(outcome);
          if (!signalled && outcomes.length >= ANSWERS_BEFORE_SIGNAL) {
            signalled = true;
            signalledAt = outcomes.length;
            service.signal('SIGTERM');
          }
          // Refused: nothing listens any more. Any other failure ends the client too (counted).
          if (outcome.error) return;
        }
      });
      // No client hangs: each gets an answer or an error soon after the process is gone.
      let hung: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all(clients),
        new Promise((_, reject) => {
          hung = setTimeout(() => reject(new Error('a client still waits 60 s on')), 60_000);
        }),
      ]).finally(() => clearTimeout(hung));
      for (const agent of agents) agent.destroy();
      expect(await service.waitForExit(30_000)).to.deep.equal({ code: 0, signal: null });

      // Every answer is a real one: accepted, never a 503 (or any 5xx) of the shutdown's making.
      const answered = outcomes.filter((o) => o.status !== undefined);
      const statuses = [...new Set(answered.map((o) => o.status))];
      expect(
        statuses,
        JSON.stringify(answered.filter((o) => o.status !== 202).slice(0, 5)),
      ).to.deep.equal([202]);
      expect(answered.length).to.be.greaterThan(signalledAt - 1);
      // A client ends when it cannot connect any more: its one failure is on a new connection,
      // refused, or reset when the listener closed with it still queued (under the supervisor
      // the primary holds the listener; those requests were never read, which the final check
      // of the accepted requests confirms). A request on a kept-alive connection is never cut.
      const failures = outcomes.filter((o) => o.error);
      expect(failures).to.have.length(CLIENTS);
      const unexpected = failures.filter(
        (f) => f.reused || !['ECONNREFUSED', 'ECONNRESET'].includes(f.error as string),
      );
      expect(unexpected, JSON.stringify(unexpected)).to.deep.equal([]);
      // Each client's last answer told it to close its connection (else it would have sent the
      // next request on it, not opened a new one).
      for (let client = 0; client < CLIENTS; client += 1) {
        const last = answered.filter((o) => o.client === client).at(-1);
        expect(last?.connection, `client ${client}`).to.equal('close');
      }

      // A handful of lines from the signal to the exit, none a warning or an error.
      const from = service.lines.findIndex((l) => l.message === 'shutting down');
      const shutdownLines = service.lines.slice(from === -1 ? 0 : from);
      // Each process: "shutting down" and "stopped"; the worker may add its batches in hand
      // (two lanes) and one chore of its last round.
      const processes = layout.apiProcesses > 1 ? layout.apiProcesses + 2 : 1;
      expect(
        shutdownLines.filter((l) => l.json?.level !== 'info').map((l) => l.text),
      ).to.deep.equal([]);
      expect(shutdownLines.length, shutdownLines.map((l) => l.text).join('\n')).to.be.at.most(
        2 * processes + 3,
      );

      // Restart a worker: every accepted request reaches a final status, recorded in PostgreSQL.
      const accepted = new Set(answered.map((o) => o.requestId as string));
      await fleet.start({ name: 'successor', role: 'worker', batchSize: 500 });
      const deadline = Date.now() + 60_000;
      for (;;) {
        const state = await couponState(h.container, couponId);
        if (state.requestRows.length >= accepted.size && state.queued === 0) {
          expect(state.requestRows.map((r) => r.requestId).sort()).to.deep.equal(
            [...accepted].sort(),
          );
          expect(state.requestRows.every((r) => r.status === 'ISSUED')).to.equal(true);
          expect([state.inflight, state.leasedBatches, state.pendingRecords]).to.deep.equal([
            0, 0, 0,
          ]);
          break;
        }
        if (Date.now() > deadline) {
          throw new Error(
            `${state.requestRows.length} of ${accepted.size} accepted requests decided`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    });
  }

  it('when a batch outlasts SHUTDOWN_TIMEOUT_MS, then the worker process exits 1 at the deadline saying so, its batch stays leased, and a later worker settles it', async () => {
    const couponId = await createCoupon(h.baseUrl, { name: 'Deadline', totalQuantity: 10 });
    const accepted: string[] = [];
    for (let i = 0; i < 5; i += 1) {
      const res = await requestIssue(h.baseUrl, couponId, `d${i}`);
      expect(res.status).to.equal(202);
      accepted.push(res.body.requestId);
    }
    const slow = fleet.spawn({
      name: 'slow',
      role: 'worker',
      batchSize: 5,
      lanes: 1,
      // The server's idle-in-transaction limit (half the lease) outlasts the deadline.
      leaseMs: 8_000,
      faultPoints: 'before-commit=delay:6000',
      env: { SHUTDOWN_TIMEOUT_MS: '2000' },
    });
    await slow.waitForMessage('fault point reached', { point: 'before-commit', action: 'delay' });

    slow.signal('SIGTERM');

    expect(await slow.waitForExit()).to.deep.equal({ code: 1, signal: null });
    expect(slow.find(message('shutdown took too long: exiting'))).to.have.length(1);
    expect(slow.find(message('batch'))).to.deep.equal([]);
    const between = await couponState(h.container, couponId);
    expect([between.leasedBatches, between.requestRows.length]).to.deep.equal([1, 0]);

    await fleet.start({ name: 'successor', role: 'worker', batchSize: 5, leaseMs: 60_000 });
    const deadline = Date.now() + 60_000;
    for (;;) {
      const state = await couponState(h.container, couponId);
      if (state.requestRows.length === 5 && state.leasedBatches === 0) {
        expect(state.requestRows.map((r) => r.requestId).sort()).to.deep.equal(accepted.sort());
        expect(state.issuedRows).to.have.length(5);
        break;
      }
      if (Date.now() > deadline) throw new Error('the leased batch was not settled');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  });

  /** The service on a port of its own: one process, or the supervisor and its children. */
  async function startService(apiProcesses: number): Promise<ServiceProcess> {
    const service = fleet.spawn({
      name: apiProcesses > 1 ? 'supervisor' : 'all',
      role: 'all',
      batchSize: 200,
      leaseMs: 30_000,
      env: {
        API_PROCESSES: String(apiProcesses),
        // Thousands of requests on two shared cores: the accept path's own bound is not tested.
        REDIS_COMMAND_TIMEOUT_MS: '10000',
        SHUTDOWN_TIMEOUT_MS: '20000',
      },
    });
    if (apiProcesses > 1) {
      await service.waitForMessage('all processes ready', {}, { timeoutMs: 60_000 });
    } else {
      await service.ready();
    }
    return service;
  }
});
