import { readdirSync, readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';

export type ScriptName =
  | 'accept'
  | 'take'
  | 'ack'
  | 'compensate'
  | 'status'
  | 'load'
  | 'claim-expired'
  | 'sync'
  | 'unlock-sync'
  | 'heartbeat'
  | 'last-heartbeat'
  | 'resize'
  | 'window'
  | 'retire';

type ScriptCall = (...keysAndArgs: (string | number)[]) => Promise<unknown>;

/**
 * Beside this module: src/infra/redis/lua under tsx, dist/src/infra/redis/lua
 * once built (`npm run build` copies the scripts there), so dist/ runs alone.
 */
const LUA_DIR = new URL('./lua/', import.meta.url);

/** `<name>-<numberOfKeys>.lua`, read once per process. */
const definitions = readdirSync(LUA_DIR)
  .filter((file) => file.endsWith('.lua'))
  .map((file) => {
    const match = /^([a-z][a-z-]*)-(\d+)\.lua$/.exec(file);
    if (!match) throw new Error(`Lua script ${file} is not named <name>-<numberOfKeys>.lua`);
    return {
      name: match[1] as ScriptName,
      numberOfKeys: Number(match[2]),
      lua: readFileSync(new URL(file, LUA_DIR), 'utf8'),
    };
  });

/**
 * The service's Lua scripts, registered on a connection with defineCommand so
 * that each call sends EVALSHA, not the script text.
 */
export class RedisScripts {
  private readonly calls = new Map<ScriptName, { call: ScriptCall; numberOfKeys: number }>();

  constructor(redis: Redis) {
    for (const def of definitions) {
      const command = `cfs_${def.name.replaceAll('-', '_')}`;
      redis.defineCommand(command, { numberOfKeys: def.numberOfKeys, lua: def.lua });
      const call = (redis as unknown as Record<string, ScriptCall>)[command];
      if (!call) throw new Error(`script ${def.name} was not registered`);
      this.calls.set(def.name, { call: call.bind(redis), numberOfKeys: def.numberOfKeys });
    }
  }

  run(
    name: ScriptName,
    keys: readonly string[],
    args: readonly (string | number)[],
  ): Promise<unknown> {
    const script = this.calls.get(name);
    if (!script) throw new Error(`unknown script ${name}`);
    if (keys.length !== script.numberOfKeys) {
      throw new Error(`script ${name} takes ${script.numberOfKeys} keys, got ${keys.length}`);
    }
    return script.call(...keys, ...args);
  }
}
