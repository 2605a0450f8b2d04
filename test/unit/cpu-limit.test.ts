import { expect } from 'chai';
import { cgroupCpuLimit, defaultApiProcesses } from '../../src/infra/cpu-limit.js';

/** A file system holding only these files. */
const files =
  (contents: Record<string, string>) =>
  (path: string): string | undefined =>
    contents[path];

describe('the CPU limit of the cgroup', () => {
  it('when cgroup v2 limits the container to 2 CPUs, then the limit is 2', () => {
    const read = files({
      '/proc/self/cgroup': '0::/\n',
      '/sys/fs/cgroup/cpu.max': '200000 100000\n',
    });

    expect(cgroupCpuLimit(read)).to.equal(2);
  });

  it('when cgroup v2 allows a fraction of a CPU, then the limit keeps the fraction', () => {
    expect(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu.max': '150000 100000' }))).to.equal(1.5);
  });

  it('when cgroup v2 says max, then there is no limit', () => {
    const read = files({ '/proc/self/cgroup': '0::/\n', '/sys/fs/cgroup/cpu.max': 'max 100000\n' });

    expect(cgroupCpuLimit(read)).to.equal(undefined);
  });

  it('when a parent cgroup v2 slice is the tighter limit, then it wins', () => {
    const read = files({
      '/proc/self/cgroup': '0::/system.slice/app.service\n',
      '/sys/fs/cgroup/cpu.max': 'max 100000',
      '/sys/fs/cgroup/system.slice/cpu.max': '300000 100000',
      '/sys/fs/cgroup/system.slice/app.service/cpu.max': '400000 100000',
    });

    expect(cgroupCpuLimit(read)).to.equal(3);
  });

  it('when cgroup v1 sets a CFS quota, then the limit is quota over period', () => {
    const read = files({
      '/proc/self/cgroup': '1:cpu,cpuacct:/\n0::/\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '400000\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
    });

    expect(cgroupCpuLimit(read)).to.equal(4);
  });

  it('when cgroup v1 has no quota (-1), then there is no limit', () => {
    const read = files({
      '/sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
      '/sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
    });

    expect(cgroupCpuLimit(read)).to.equal(undefined);
  });

  it('when no cgroup file can be read, then there is no limit', () => {
    expect(cgroupCpuLimit(files({}))).to.equal(undefined);
  });

  for (const [what, content] of [
    ['words', 'lots of cpu'],
    ['a zero period', '100000 0'],
    ['a zero quota', '0 100000'],
    ['a negative quota', '-5 100000'],
    ['a quota alone', '100000'],
    ['an empty file', ''],
  ] as const) {
    it(`when cpu.max holds ${what}, then it is ignored`, () => {
      expect(cgroupCpuLimit(files({ '/sys/fs/cgroup/cpu.max': content }))).to.equal(undefined);
    });
  }
});

describe('the default number of API processes', () => {
  it('when a container is limited to 2 CPUs on a 64-core host, then 2', () => {
    expect(defaultApiProcesses(64, 64, 2)).to.equal(2);
  });

  it('when the limit is 1.5 CPUs, then 2 (rounded up: one process alone uses at most one CPU)', () => {
    expect(defaultApiProcesses(64, 8, 1.5)).to.equal(2);
  });

  it('when the limit is below one CPU, then 1', () => {
    expect(defaultApiProcesses(64, 8, 0.25)).to.equal(1);
  });

  it('when there is no limit, then one per core', () => {
    expect(defaultApiProcesses(64, 6, undefined)).to.equal(6);
  });

  it('when the limit exceeds the cores, then one per core', () => {
    expect(defaultApiProcesses(64, 4, 16)).to.equal(4);
  });

  it('when the host has more cores than allowed processes, then the maximum', () => {
    expect(defaultApiProcesses(64, 128, undefined)).to.equal(64);
  });
});
