/**
 * Closed-loop saturation load: wrk (a C load generator, in its own process)
 * keeps `connections` requests in flight for `durationSec` seconds, every
 * request a POST from a distinct user (bench/load/saturate.lua). wrk rather
 * than a Node.js generator because the load shares the machine's two cores
 * with the server under test: wrk spends about a third of the CPU per request
 * that autocannon did (measured: 32 µs against 89 µs), and whatever the load
 * generator takes, the server does not get.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { SetupError } from '../lib/setup-error.js';

export interface SaturationInput {
  url: string;
  path: string;
  connections: number;
  durationSec: number;
  /** wrk threads (event loops); one keeps up with 100 connections on this machine. */
  threads: number;
  userPrefix: string;
  /** One bearer token a line, each for a distinct user: requests carry them instead of a userId. */
  tokensFile?: string;
}

export interface SaturationResult {
  /** Every answer received, whatever its status. */
  requests: number;
  /** Answers with a status below 400, per second: a server that fails fast scores nothing. */
  throughputRps: number;
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** Connect, read, write errors and timeouts, summed. */
  errors: number;
  /** Answers with a status above 399. */
  non2xx: number;
  /** Requests sent after the tokens file ran out (they repeat users); 0 without tokens. */
  reused: number;
}

interface WrkLine {
  requests: number;
  durationUs: number;
  latencyUs: { p50: number; p90: number; p99: number; max: number };
  errors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
  reused?: number;
}

const SCRIPT = join(import.meta.dirname, 'saturate.lua');
const WRK = process.env.BENCH_WRK ?? 'wrk';

function notFound(): Error {
  return new SetupError(
    `wrk was not found (${WRK}): the saturation runs need it. Install it ` +
      '(`apt-get install wrk` on Debian or Ubuntu, `brew install wrk` on macOS) ' +
      'or set BENCH_WRK to its path.',
  );
}

/** wrk's version line; throws a message naming what to install when wrk is missing. */
export function wrkVersion(): string {
  const run = spawnSync(WRK, ['-v'], { encoding: 'utf8' });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw notFound();
  return `${run.stdout}${run.stderr}`.trim().split('\n')[0] ?? 'unknown';
}

export async function saturate(input: SaturationInput): Promise<SaturationResult> {
  const args = [
    `-t${input.threads}`,
    `-c${input.connections}`,
    `-d${input.durationSec}s`,
    '--timeout',
    '10s',
    '-s',
    SCRIPT,
    `${input.url}${input.path}`,
    '--',
    input.userPrefix,
    ...(input.tokensFile ? [input.tokensFile, String(input.threads)] : []),
  ];
  const child = spawn(WRK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'ENOENT' ? notFound() : err),
    );
    child.once('exit', resolve);
  });
  const last = out.trim().split('\n').pop() ?? '';
  if (code !== 0 || !last.startsWith('{')) {
    throw new Error(`wrk ${args.join(' ')} exited with ${code}:\n${out}`);
  }
  const line = JSON.parse(last) as WrkLine;
  const ms = (us: number) => Math.round(us / 10) / 100;
  return {
    requests: line.requests,
    throughputRps: (line.requests - line.non2xx) / (line.durationUs / 1e6),
    latencyMs: {
      p50: ms(line.latencyUs.p50),
      p90: ms(line.latencyUs.p90),
      p99: ms(line.latencyUs.p99),
      max: ms(line.latencyUs.max),
    },
    errors: line.errors.connect + line.errors.read + line.errors.write + line.errors.timeout,
    non2xx: line.non2xx,
    reused: line.reused ?? 0,
  };
}
