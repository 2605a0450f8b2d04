/**
 * `npm run build`: compiles src/ and scripts/ into dist/ and copies the Lua
 * scripts beside the compiled src/infra/redis/scripts.js, which reads them
 * relative to itself, so that dist/ runs without src/. Ends by stamping
 * dist/ (scripts/start.mjs compares the sources against the stamp).
 *
 * Plain JavaScript: `npm start` imports it and must run without tsx.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, realpathSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const DIST = join(ROOT, 'dist');
/** Written last: its presence means the whole build succeeded. */
export const STAMP = join(DIST, '.build-stamp');
const LUA_SOURCE = join(ROOT, 'src', 'infra', 'redis', 'lua');
const LUA_TARGET = join(DIST, 'src', 'infra', 'redis', 'lua');

/** The TypeScript compiler's entry point, or undefined where devDependencies are not installed. */
export function findTsc() {
  try {
    return createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    return undefined;
  }
}

/** Builds dist/; throws when the compiler is missing or fails. */
export function build() {
  const tsc = findTsc();
  if (!tsc) {
    throw new Error('TypeScript is not installed: run `npm ci` (with devDependencies) to build');
  }
  // Sources edited while the compiler runs must count as newer than the build.
  const startedAt = new Date();
  rmSync(STAMP, { force: true });
  const compiled = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (compiled.status !== 0)
    throw new Error(`tsc failed (exit ${compiled.status ?? compiled.signal})`);
  // Replaced whole, so a script deleted from src/ does not live on in dist/.
  rmSync(LUA_TARGET, { recursive: true, force: true });
  mkdirSync(dirname(LUA_TARGET), { recursive: true });
  cpSync(LUA_SOURCE, LUA_TARGET, { recursive: true });
  writeFileSync(STAMP, `${startedAt.toISOString()}\n`);
  utimesSync(STAMP, startedAt, startedAt);
}

const invokedDirectly =
  process.argv[1] !== undefined &&
  realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
if (invokedDirectly) {
  try {
    build();
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
