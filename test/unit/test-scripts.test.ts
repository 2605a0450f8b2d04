import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

/** The spec files an npm test script selects, as mocha lists them without running anything. */
async function selected(script: string): Promise<string[]> {
  const { stdout } = await run(
    'npm',
    ['run', '--silent', script, '--', '--dry-run', '--reporter', 'json'],
    {
      cwd: REPO_ROOT,
      // A dry run opens no connection; closed ports make sure of it should that ever change.
      env: {
        ...process.env,
        TEST_REDIS_URL: 'redis://127.0.0.1:1',
        TEST_DATABASE_URL: 'postgres://postgres@127.0.0.1:1/postgres',
      },
      maxBuffer: 64 * 1024 * 1024,
    },
  );
  const report = JSON.parse(stdout) as { tests: { file: string }[] };
  return [...new Set(report.tests.map((t) => relative(REPO_ROOT, t.file)))].sort();
}

function specFiles(dir: string): string[] {
  return readdirSync(join(REPO_ROOT, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts'))
    .map((f) => join(dir, f))
    .sort();
}

describe('the npm test scripts', function () {
  this.timeout(60_000);
  const unitFiles = specFiles('test/unit');
  const integrationFiles = specFiles('test/integration');

  it('when `npm run test:unit` is run, then it selects every unit test file and nothing that needs Redis or PostgreSQL', async () => {
    expect(await selected('test:unit')).to.deep.equal(unitFiles);
  });

  it('when `npm test` is run, then it selects every test file, unit and integration', async () => {
    expect(await selected('test')).to.deep.equal([...unitFiles, ...integrationFiles].sort());
  });

  it('when `test:integration` and `test:faults` are run, then between them they select every integration file, none twice, and the fault suites only in `test:faults`', async () => {
    const [integration, faults] = await Promise.all([
      selected('test:integration'),
      selected('test:faults'),
    ]);

    expect(integration.filter((f) => faults.includes(f))).to.deep.equal([]);
    expect([...integration, ...faults].sort()).to.deep.equal(integrationFiles);
    expect(faults).to.include.members([
      'test/integration/process-faults.test.ts',
      'test/integration/redis-outage.test.ts',
      'test/integration/postgres-outage.test.ts',
      'test/integration/redis-data-loss.test.ts',
    ]);
  });
});
