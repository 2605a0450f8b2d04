import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrometheusMetrics } from '../../src/infra/metrics/prometheus.js';
import { parseMetrics } from '../support/metrics.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Panel {
  readonly title: string;
  readonly targets?: readonly { readonly expr: string }[];
  readonly panels?: readonly Panel[];
}

/** Words of PromQL that are not metric names. */
const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'offset',
  'bool',
  'inf',
  'nan',
]);

/**
 * The metric names an expression reads: identifiers left once strings, label
 * matchers, grouping clauses, ranges, numbers and function calls are taken out.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b\d+(\.\d+)?\b/g, '');
  return [...bare.matchAll(/\b([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()/g)]
    .map((m) => m[1] as string)
    .filter((name) => !KEYWORDS.has(name.toLowerCase()));
}

function panelsOf(panels: readonly Panel[]): Panel[] {
  return panels.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);
}

/** Every sample name the service exports, probes and worker metrics included. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = new PrometheusMetrics({
    runsWorker: true,
    probe: {
      liveQueues: async () => new Map([[1, { queued: 1, inFlight: 0 }]]),
      redisUp: async () => true,
      postgresUp: async () => true,
    },
  });
  metrics.request('/metrics', 'GET', 200, 0.001);
  return new Set(parseMetrics(await metrics.render()).map((s) => s.name));
}

describe('the Grafana dashboard (deploy/grafana/dashboards/coupons.json)', () => {
  const dashboard = JSON.parse(
    readFileSync(join(ROOT, 'deploy', 'grafana', 'dashboards', 'coupons.json'), 'utf8'),
  ) as { uid: string; panels: Panel[] };
  const targets = panelsOf(dashboard.panels).flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
  );

  it('when its expressions are read, then every metric they name is one the service exports', async () => {
    const exported = await exportedNames();
    expect(targets.length).to.be.greaterThan(10);
    const unknown = targets.flatMap(({ panel, expr }) =>
      metricNames(expr)
        .filter((name) => !exported.has(name))
        .map((name) => `${panel}: ${name}`),
    );
    expect(unknown).to.deep.equal([]);
  });

  it('when a name is misspelt, then the check finds it', async () => {
    const exported = await exportedNames();
    const names = metricNames(
      'histogram_quantile(0.99, sum by (le, route) (rate(http_request_duration_second_bucket{route="/x"}[1m])))',
    );
    expect(names).to.deep.equal(['http_request_duration_second_bucket']);
    expect(exported.has(names[0] as string)).to.equal(false);
  });

  it('when the service’s own metrics are listed, then the dashboard shows each of them', async () => {
    const shown = new Set(targets.flatMap(({ expr }) => metricNames(expr)));
    const own = [...(await exportedNames())].filter((n) => /^(coupon_|http_)/.test(n));
    const base = (n: string) => n.replace(/_(bucket|sum|count)$/, '');
    const missing = [...new Set(own.map(base))].filter(
      (n) => ![...shown].some((s) => base(s) === n),
    );
    expect(missing).to.deep.equal([]);
  });
});
