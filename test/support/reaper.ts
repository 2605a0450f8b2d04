import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

/**
 * Children and temporary folders the tests started, so that none outlives
 * the run: mocha --exit ends the process without running the `after` hooks of
 * unfinished suites, and this 'exit' hook is the last chance to clean up.
 */
const children = new Set<ChildProcess>();
/** Children that lead a process group: the group is killed, not only the child. */
const leaders = new Set<ChildProcess>();
const folders = new Set<string>();
let installed = false;

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const child of leaders) {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGCONT');
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const child of children) {
      try {
        // A stopped child must be continued for SIGKILL to be reaped promptly.
        child.kill('SIGCONT');
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  });
}

export const reaper = {
  track(child: ChildProcess, group = false): void {
    install();
    children.add(child);
    if (group) leaders.add(child);
  },
  /** The child has exited (its group, if it led one, is still killed at exit). */
  forget(child: ChildProcess): void {
    children.delete(child);
  },
  trackFolder(folder: string): void {
    install();
    folders.add(folder);
  },
  forgetFolder(folder: string): void {
    folders.delete(folder);
  },
};
