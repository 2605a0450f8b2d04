import { expect } from 'chai';
import { Redis } from 'ioredis';
import { readFileSync } from 'node:fs';
import { cpuSeconds, localRedisPid } from '../../bench/lib/procs.js';

describe('the bench’s CPU readings (bench/lib/procs.ts)', () => {
  it('when this process’s CPU is read from /proc, then it agrees with process.cpuUsage() to a few clock ticks, and a process that is gone counts 0', () => {
    // Some work, so that the figure is not zero.
    let x = 0;
    for (let i = 0; i < 5_000_000; i += 1) x += Math.sqrt(i);
    expect(x).to.be.greaterThan(0);

    const usage = process.cpuUsage();
    const fromProc = cpuSeconds([process.pid]);

    expect(fromProc).to.be.greaterThan(0);
    expect(Math.abs(fromProc - (usage.user + usage.system) / 1e6)).to.be.lessThan(0.05);
    expect(cpuSeconds([process.pid, 2 ** 22 + 1])).to.be.closeTo(cpuSeconds([process.pid]), 0.05);
    expect(cpuSeconds([2 ** 22 + 1])).to.equal(0);
  });

  it('when Redis runs on this machine, then its pid is found from INFO and /proc; a pid that is not a Redis server, or none, is undefined', async () => {
    const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
    try {
      const info = await redis.info('server');
      const pid = localRedisPid(info);

      expect(pid).to.equal(Number(/process_id:(\d+)/.exec(info)?.[1]));
      expect(readFileSync(`/proc/${pid}/comm`, 'utf8')).to.match(/^redis/);
      expect(localRedisPid(`# Server\r\nprocess_id:${process.pid}\r\n`)).to.equal(undefined);
      expect(localRedisPid('# Server\r\nredis_version:7.0.15\r\n')).to.equal(undefined);
    } finally {
      redis.disconnect();
    }
  });
});
