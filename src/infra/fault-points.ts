import type { FaultPoint, FaultPoints } from '../domain/ports.js';

export type FaultAction =
  | { readonly kind: 'kill' }
  | { readonly kind: 'stop' }
  | { readonly kind: 'delay'; readonly ms: number };

export const FAULT_POINT_NAMES: readonly FaultPoint[] = [
  'after-take',
  'before-commit',
  'after-commit',
];

/**
 * Parses FAULT_POINTS, e.g. `after-take=kill`, `before-commit=delay:500,after-commit=stop`.
 * Returns an error message naming what is wrong, or the parsed map.
 */
export function parseFaultPoints(spec: string): Map<FaultPoint, FaultAction> | string {
  const points = new Map<FaultPoint, FaultAction>();
  for (const part of spec
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const [name, action] = part.split('=') as [string, string | undefined];
    if (!FAULT_POINT_NAMES.includes(name as FaultPoint)) {
      return `unknown point "${name}" (known: ${FAULT_POINT_NAMES.join(', ')})`;
    }
    const delay = /^delay:(\d{1,6})$/.exec(action ?? '');
    if (action === 'kill' || action === 'stop') points.set(name as FaultPoint, { kind: action });
    else if (delay) points.set(name as FaultPoint, { kind: 'delay', ms: Number(delay[1]) });
    else return `unknown action "${action ?? ''}" for ${name} (kill, stop or delay:<ms>)`;
  }
  return points;
}

/**
 * Fault points for tests: `kill` ends the process with SIGKILL (nothing runs
 * after it, as in a crash), `stop` freezes it with SIGSTOP until someone
 * sends SIGCONT, `delay` waits. With no points configured, reaching one does nothing.
 */
export function faultPoints(
  points: ReadonlyMap<FaultPoint, FaultAction>,
  onReach: (point: FaultPoint, action: FaultAction, batchId?: string) => void = () => undefined,
): FaultPoints {
  if (points.size === 0) return { reach: async () => undefined };
  return {
    async reach(point, batchId) {
      const action = points.get(point);
      if (!action) return;
      onReach(point, action, batchId);
      if (action.kind === 'kill') process.kill(process.pid, 'SIGKILL');
      else if (action.kind === 'stop') process.kill(process.pid, 'SIGSTOP');
      else await new Promise((resolve) => setTimeout(resolve, action.ms));
    },
  };
}
