import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** Reads a file as text, or undefined when it cannot be read. Injectable for tests. */
export type ReadText = (path: string) => string | undefined;

const readText: ReadText = (path) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
};

const CGROUP_ROOT = '/sys/fs/cgroup';

/** `quota/period` as CPUs, or undefined for "no limit" and anything unreadable. */
function cpus(quota: string | undefined, period: string | undefined): number | undefined {
  if (quota === undefined || period === undefined) return undefined;
  if (!/^\d+$/.test(quota) || !/^\d+$/.test(period)) return undefined;
  const q = Number(quota);
  const p = Number(period);
  return q > 0 && p > 0 ? q / p : undefined;
}

/**
 * The cgroup v2 directories whose `cpu.max` bounds this process: its own and
 * every ancestor (a limit on a parent slice bounds the children). Inside a
 * container with its own cgroup namespace, /proc/self/cgroup says `0::/` and
 * the container's limit is at the root.
 */
function v2Directories(read: ReadText): string[] {
  const line = read('/proc/self/cgroup')
    ?.split('\n')
    .find((l) => l.startsWith('0::'));
  const own = line?.slice(3).trim() ?? '/';
  const parts = own.split('/').filter((p) => p !== '' && p !== '..');
  const dirs = [CGROUP_ROOT];
  for (let i = 1; i <= parts.length; i += 1)
    dirs.push(`${CGROUP_ROOT}/${parts.slice(0, i).join('/')}`);
  return dirs;
}

/**
 * The CPUs the cgroup lets this process use (CFS quota over period), or
 * undefined when there is no limit or it cannot be read. Node's
 * availableParallelism() counts the host's cores: in a container limited to
 * 2 CPUs on a 64-core host it says 64.
 */
export function cgroupCpuLimit(read: ReadText = readText): number | undefined {
  const limits: number[] = [];
  for (const dir of v2Directories(read)) {
    const [quota, period] = (read(`${dir}/cpu.max`) ?? '').trim().split(/\s+/);
    const limit = cpus(quota, period);
    if (limit !== undefined) limits.push(limit);
  }
  const v1 = cpus(
    read(`${CGROUP_ROOT}/cpu/cpu.cfs_quota_us`)?.trim(),
    read(`${CGROUP_ROOT}/cpu/cpu.cfs_period_us`)?.trim(),
  );
  if (v1 !== undefined) limits.push(v1);
  return limits.length > 0 ? Math.min(...limits) : undefined;
}

/**
 * One API process per CPU the process may use: the cores, bounded by the
 * cgroup's CPU limit, rounded up. Each process runs its JavaScript on one
 * thread, so with a limit of 1.5 one process could use only 1 CPU and leave
 * the half idle; two share the 1.5 (the kernel throttles them when together
 * they exceed it), and one process more than the CPUs measured alike with one
 * per CPU on this project's machine (README, "Choosing the layout").
 */
export function defaultApiProcesses(
  max: number,
  cores: number = availableParallelism(),
  limit: number | undefined = cgroupCpuLimit(),
): number {
  const usable = limit === undefined ? cores : Math.min(cores, Math.ceil(limit));
  return Math.max(1, Math.min(max, usable));
}
