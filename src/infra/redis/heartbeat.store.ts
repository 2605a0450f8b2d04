import type { RedisKeys } from './keys.js';
import type { RedisScripts } from './scripts.js';

/** Beats are kept this long: long enough to show how stale a dead worker's last one is. */
const KEEP_MS = 3_600_000;

export interface LastHeartbeat {
  /** "<host>:<pid>" of the worker that beat last. */
  readonly worker: string;
  readonly ageMs: number;
}

/** Worker heartbeats in one Redis ZSET, stamped and aged by Redis's clock. */
export class RedisHeartbeats {
  constructor(
    private readonly scripts: RedisScripts,
    private readonly keys: RedisKeys,
  ) {}

  async beat(worker: string): Promise<void> {
    await this.scripts.run('heartbeat', [this.keys.workerHeartbeats()], [worker, KEEP_MS]);
  }

  async last(): Promise<LastHeartbeat | undefined> {
    const reply = (await this.scripts.run('last-heartbeat', [this.keys.workerHeartbeats()], [])) as
      [string, number] | [];
    if (reply.length === 0) return undefined;
    return { worker: String(reply[0]), ageMs: Math.max(0, Number(reply[1])) };
  }
}
