import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { connect, createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { DEVELOPMENT_ADMIN_TOKEN } from '../../src/infra/config.js';
import { startHarness, type Harness } from '../support/harness.js';
import { http } from '../support/http.js';
import { deploymentOf, ProcessFleet } from '../support/processes.js';

interface Exit {
  code: number | null;
  output: string;
}

/** Starts the real entry point with the given environment and waits for it to exit. */
function runService(env: Record<string, string>, timeoutMs = 20_000): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the service did not exit within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('start-up failures name what to fix', function () {
  this.timeout(60_000);
  let h: Harness;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h.cleanup();
  });

  it('when settings are invalid, then the process exits 1 naming each bad variable', async () => {
    const exit = await runService({ ROLE: 'both', BATCH_SIZE: '-5', BATCH_CRON: 'soon' });

    expect(exit.code).to.equal(1);
    expect(exit.output).to.contain('ROLE="both"');
    expect(exit.output).to.contain('BATCH_SIZE="-5"');
    expect(exit.output).to.contain('BATCH_CRON="soon"');
  });

  it('when NODE_ENV=production has neither JWT_SECRET nor JWT_JWKS_URL, then the process exits 1 naming both and touches nothing', async () => {
    const exit = await runService({
      NODE_ENV: 'production',
      ADMIN_TOKEN: 'a-production-admin-token',
      DATABASE_URL: h.databaseUrl,
      REDIS_KEY_PREFIX: h.prefix,
      PORT: '0',
    });

    expect(exit.code, exit.output).to.equal(1);
    expect(exit.output).to.contain('JWT_SECRET: is required in production (or JWT_JWKS_URL)');
    expect(exit.output).not.to.contain('listening');
  });

  it('when Redis is unreachable, then the process exits 1 naming the URL, REDIS_URL and what to start', async () => {
    const exit = await runService({
      DATABASE_URL: h.databaseUrl,
      REDIS_URL: 'redis://127.0.0.1:1',
      PORT: '0',
    });

    expect(exit.code).to.equal(1);
    expect(exit.output).to.contain('Redis at redis://127.0.0.1:1');
    expect(exit.output).to.contain('Start Redis');
    expect(exit.output).to.contain('REDIS_URL');
  });

  it('when PostgreSQL is unreachable, then the process exits 1 naming the URL, DATABASE_URL and what to start', async () => {
    const exit = await runService({
      DATABASE_URL: 'postgres://postgres:secret@127.0.0.1:1/coupons',
      PORT: '0',
    });

    expect(exit.code).to.equal(1);
    expect(exit.output).to.contain('PostgreSQL at postgres://postgres:***@127.0.0.1:1/coupons');
    expect(exit.output).to.contain('DATABASE_URL');
    expect(exit.output).not.to.contain('secret');
  });

  it('when the port is taken, then the process exits 1 instead of living on without listening', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const exit = await runService({
        DATABASE_URL: h.databaseUrl,
        REDIS_KEY_PREFIX: h.prefix,
        PORT: String(port),
        ROLE: 'api',
      });

      expect(exit.code).to.equal(1);
      expect(exit.output).to.contain(`PORT=${port}`);
    } finally {
      blocker.close();
    }
  });

  it('when HOST is not an address of this machine, then the process exits 1 naming HOST', async () => {
    const exit = await runService({
      DATABASE_URL: h.databaseUrl,
      REDIS_KEY_PREFIX: h.prefix,
      ADMIN_TOKEN: 'a-long-enough-token',
      // TEST-NET-2 (RFC 5737): never assigned to a machine.
      HOST: '198.51.100.7',
      PORT: '0',
      ROLE: 'api',
      API_PROCESSES: '1',
    });

    expect(exit.code).to.equal(1);
    expect(exit.output).to.contain('cannot listen on HOST=198.51.100.7 (EADDRNOTAVAIL)');
  });

  it('when ADMIN_TOKEN is unset and HOST is not loopback, then the process exits 1 naming ADMIN_TOKEN and HOST', async () => {
    const exit = await runService({
      DATABASE_URL: h.databaseUrl,
      REDIS_KEY_PREFIX: h.prefix,
      HOST: '0.0.0.0',
      PORT: '0',
    });

    expect(exit.code).to.equal(1);
    expect(exit.output).to.contain('ADMIN_TOKEN');
    expect(exit.output).to.contain('HOST="0.0.0.0" is not a loopback address');
    expect(exit.output).to.contain('set ADMIN_TOKEN, or HOST=127.0.0.1');
  });
});

describe('the development token stays on this machine', function () {
  this.timeout(60_000);
  let h: Harness;
  let fleet: ProcessFleet;

  before(async () => {
    h = await startHarness();
    fleet = new ProcessFleet(deploymentOf(h));
  });
  afterEach(async () => {
    await fleet.stopAll();
  });
  after(async () => {
    await h.cleanup();
  });

  it('when neither ADMIN_TOKEN nor HOST is set, then the service starts on loopback only and the development token opens it there', async () => {
    const api = await fleet.start({ role: 'api', env: { ADMIN_TOKEN: '', HOST: '' } });
    const listening = await api.waitForMessage('listening');

    expect(listening.json?.host).to.equal('127.0.0.1');
    // No identity is configured: said at start, since the user is whatever the body says.
    expect(api.dump()).to.contain('neither JWT_SECRET nor JWT_JWKS_URL is set');
    const res = await http(api.baseUrl, 'POST', '/coupons', {
      headers: { authorization: `Bearer ${DEVELOPMENT_ADMIN_TOKEN}` },
      body: { name: 'Local', totalQuantity: 1 },
    });
    expect(res.status).to.equal(201);
    const { rows } = await h.container.pool.query('SELECT name FROM coupons');
    expect(rows).to.deep.equal([{ name: 'Local' }]);

    const external = Object.values(networkInterfaces())
      .flat()
      .find((a) => a && a.family === 'IPv4' && !a.internal);
    if (external) {
      const refused = await new Promise<string>((resolve) => {
        const socket = connect(api.port as number, external.address);
        socket.once('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      });
      expect(refused, `connecting to ${external.address}`).to.equal('ECONNREFUSED');
    }
  });
});
