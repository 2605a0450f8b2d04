/**
 * `npm start`: runs the built service (dist/src/main.js) in this process.
 *
 * Builds first only when it has to: dist/ is missing or incomplete, or a
 * source it is compiled from (src/, scripts/*.ts, the tsconfig files) is
 * newer than the last successful build. A deployment holds dist/ without
 * src/, so nothing is compared and nothing but production dependencies is
 * needed. When a build is due and TypeScript is not installed, it says what
 * to run instead of starting stale code.
 *
 * Plain JavaScript, so that it runs without tsx or any devDependency.
 */
import cluster from 'node:cluster';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DIST, ROOT, STAMP, build, findTsc } from './build.mjs';

const ENTRY = join(DIST, 'src', 'main.js');

/** The newest modification time (ms) under the sources dist/ is compiled from. */
function newestSource() {
  let newest = 0;
  const visit = (path) => {
    const stat = statSync(path, { throwIfNoEntry: false });
    if (!stat) return;
    if (stat.isDirectory()) {
      for (const entry of readdirSync(path)) visit(join(path, entry));
    } else {
      newest = Math.max(newest, stat.mtimeMs);
    }
  };
  visit(join(ROOT, 'src'));
  for (const file of ['tsconfig.json', 'tsconfig.build.json', 'scripts/build.mjs']) {
    visit(join(ROOT, file));
  }
  for (const entry of readdirSync(join(ROOT, 'scripts'))) {
    if (entry.endsWith('.ts')) visit(join(ROOT, 'scripts', entry));
  }
  return newest;
}

/** Why dist/ must be rebuilt, or undefined when it is up to date (or there is nothing to build from). */
function staleness() {
  const built = statSync(STAMP, { throwIfNoEntry: false });
  const hasSources = existsSync(join(ROOT, 'src'));
  if (!built || !existsSync(ENTRY)) {
    return hasSources ? 'dist/ is missing or its last build did not finish' : undefined;
  }
  if (hasSources && newestSource() > built.mtimeMs)
    return 'the sources changed since the last build';
  return undefined;
}

// The supervisor forks API and worker processes from this same script: the primary has
// already built, and children must not each compare the sources (or build) again.
if (cluster.isPrimary) {
  const reason = staleness();
  if (reason) {
    if (!findTsc()) {
      console.error(
        `${reason}, and TypeScript is not installed here (production dependencies only). ` +
          'Build where devDependencies are installed (`npm ci && npm run build`) and ship dist/, ' +
          'or run `node dist/src/main.js` to start the existing build as it is.',
      );
      process.exit(1);
    }
    console.error(`building: ${reason}`);
    try {
      build();
    } catch (err) {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    }
  }
  if (!existsSync(ENTRY)) {
    console.error(`${ENTRY} is missing: run \`npm run build\` where devDependencies are installed`);
    process.exit(1);
  }
}

await import(pathToFileURL(ENTRY).href);
