import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { startHarness, type Harness } from '../support/harness.js';

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
});
