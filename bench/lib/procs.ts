import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface Running {
  readonly name: string;
  readonly child: ChildProcess;
  readonly lines: string[];
  stop(): Promise<void>;
}

/** Starts a process and resolves once a stdout line matches `ready`. */
export async function startProcess(
  name: string,
  command: string,
  args: string[],
  env: Record<string, string>,
  ready: (line: string) => boolean,
  timeoutMs = 60_000,
): Promise<Running> {
  const child = spawn(command, args, {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let buffered = '';
  const running: Running = {
    name,
    child,
    lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${name} did not become ready:\n${lines.join('\n')}`));
    }, timeoutMs);
    const onData = (data: Buffer) => {
      buffered += data.toString();
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        lines.push(line);
        if (ready(line)) {
          clearTimeout(timer);
          resolve();
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) =>
      lines.push(...d.toString().split('\n').filter(Boolean)),
    );
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready:\n${lines.join('\n')}`));
    });
  });
  return running;
}

/** Runs a load-generator script to completion and parses the JSON line it prints. */
export async function runLoad<T>(script: string, input: unknown): Promise<T> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, JSON.stringify(input)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0) throw new Error(`${script} exited with ${code}: ${out}`);
  return JSON.parse(last) as T;
}

/** The process and all its descendants. */
export function processTree(pid: number): number[] {
  const all = [pid];
  for (let i = 0; i < all.length; i += 1) {
    try {
      const children = readFileSync(`/proc/${all[i]}/task/${all[i]}/children`, 'utf8').trim();
      if (children) all.push(...children.split(/\s+/).map(Number));
    } catch {
      // gone
    }
  }
  return all;
}

/** The clock ticks per second of /proc's CPU times (USER_HZ; 100 wherever getconf is missing). */
const TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** The CPU time (user and system, in seconds) the processes have used so far; one gone counts 0. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      // The fields after the command name, which may itself hold spaces and parentheses:
      // state first, then utime and stime at 11 and 12 (proc(5) fields 14 and 15).
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/**
 * The pid of the Redis server when it runs on this machine (from INFO's process_id, checked
 * against /proc), so that its CPU can be counted with the service's; undefined otherwise.
 */
export function localRedisPid(info: string): number | undefined {
  const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  if (!pid) return undefined;
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('redis') ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Peak resident set size (VmHWM) of each process, in MB, with its command line. */
export function peakRss(pids: number[]): { pid: number; what: string; peakRssMb: number }[] {
  return pids.flatMap((pid) => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? 0);
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const role = env.find((e) => e.startsWith('ROLE='))?.slice(5) ?? '';
      const cmd =
        readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(-1)[0] ?? '';
      return [
        {
          pid,
          what: `${cmd.split('/').slice(-2).join('/')}${role ? ` (${role})` : ''}`,
          peakRssMb: Math.round(hwm / 102.4) / 10,
        },
      ];
    } catch {
      return [];
    }
  });
}
