import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

/** How high the probe's old generation went, as a multiple of what is live in it, at this setting. */
async function peakOverLive(percent: string): Promise<number> {
  const { stdout } = await run(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', join(ROOT, 'test', 'support', 'heap-probe.ts')],
    {
      cwd: ROOT,
      env: { PATH: process.env.PATH, NODE_ENV: 'development', HEAP_GROWING_PERCENT: percent },
    },
  );
  const { liveBytes, peakBytes } = JSON.parse(stdout) as { liveBytes: number; peakBytes: number };
  return peakBytes / liveBytes;
}

describe('the heap growth setting (HEAP_GROWING_PERCENT)', function () {
  this.timeout(60_000);

  it('when it is 100, then garbage lifts the old generation to about twice what is live in it; at 200, to about three times', async () => {
    const doubled = await peakOverLive('100');
    const tripled = await peakOverLive('200');

    // The factor sets where the next full collection starts; it ends a little above (what is
    // allocated while it marks). V8's own choice here was about 4.2.
    expect(doubled).to.be.within(1.7, 2.45);
    expect(tripled).to.be.within(2.7, 3.45);
  });
});
