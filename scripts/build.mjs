/**
 * `npm run build`: compiles src/ and scripts/ into dist/ and copies the files
 * that are not TypeScript beside the compiled modules that read them relative
 * to themselves (the Lua scripts, the dashboard's page), so that dist/ runs
 * without src/. Ends by stamping dist/ (scripts/start.mjs compares the sources
 * against the stamp).
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
/** Folders under src/ copied as they are. */
const COPIED = [join('src', 'infra', 'redis', 'lua'), join('src', 'api', 'dashboard')];

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
  for (const folder of COPIED) {
    const target = join(DIST, folder);
    // Replaced whole, so a file deleted from src/ does not live on in dist/.
    rmSync(target, { recursive: true, force: true });
    mkdirSync(dirname(target), { recursive: true });
    cpSync(join(ROOT, folder), target, { recursive: true });
  }
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
