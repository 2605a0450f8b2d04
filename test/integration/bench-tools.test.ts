import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const RESULTS = join(import.meta.dirname, '..', '..', 'bench', 'results');

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a bench tool from its TypeScript source with the given environment and arguments. */
function runTool(script: string, args: string[], env: Record<string, string>): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      env: { PATH: process.env.PATH ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not exit within 30 s:\n${stdout}\n${stderr}`));
    }, 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const TOOLS = [
  ['npm run bench', 'bench/run.ts', ['--quick']],
  ['npm run bench:layouts', 'bench/layouts.ts', ['--rounds', '1', '--seconds', '1']],
] as const;

/** What each tool is denied, and what its message must then say. */
const MISSING: { what: string; then: string; env: Record<string, string>; says: string[] }[] = [
  {
    what: 'PostgreSQL is unreachable',
    then: 'naming the URL, the variable and what to start',
    env: { BENCH_POSTGRES_URL: 'postgres://postgres@127.0.0.1:1/postgres' },
    says: [
      'PostgreSQL at postgres://postgres@127.0.0.1:1/postgres is unreachable',
      'BENCH_POSTGRES_URL',
      'Start ',
    ],
  },
  {
    what: 'Redis is unreachable',
    then: 'naming the URL, the variable and what to start',
    env: { BENCH_REDIS_URL: 'redis://127.0.0.1:1' },
    says: ['Redis at redis://127.0.0.1:1 is unreachable', 'BENCH_REDIS_URL', 'Start '],
  },
  {
    what: 'wrk is missing',
    then: 'saying how to install it or where to point BENCH_WRK',
    env: { BENCH_WRK: '/nonexistent/wrk' },
    says: ['wrk was not found (/nonexistent/wrk)', 'BENCH_WRK'],
  },
];

describe('the bench tools when something they need is missing', function () {
  this.timeout(60_000);

  for (const [tool, script, args] of TOOLS) {
    for (const { what, then, env, says } of MISSING) {
      it(`when ${what}, then ${tool} exits 1 at once, ${then}, and writes no results`, async () => {
        const before = readdirSync(RESULTS).sort();

        const exit = await runTool(script, [...args], env);

        expect(exit.code, exit.stderr).to.equal(1);
        for (const text of says) expect(exit.stderr).to.contain(text);
        expect(exit.stderr, 'a message, not a stack trace').not.to.contain('    at ');
        expect(exit.stdout).not.to.contain('wrote');
        expect(readdirSync(RESULTS).sort()).to.deep.equal(before);
      });
    }
  }

  it('when bench:layouts is given a round count that is not a whole number of at least 1, then it exits 2 naming the option', async () => {
    const exit = await runTool('bench/layouts.ts', ['--rounds', '0'], {});

    expect(exit.code).to.equal(2);
    expect(exit.stderr).to.contain('--rounds takes a whole number of at least 1');
    expect(exit.stdout).to.equal('');
  });
});
