/**
 * `npm run ops -- <command>`: the operator's command line, a thin client of
 * the HTTP API.
 *
 *   list [--status S] [--limit N] [--after CURSOR]   events, newest first
 *   show <id>                                         one event
 *   create --name N --total Q [--starts-at T] [--ends-at T]
 *   update <id> [--name N] [--total Q] [--starts-at T|none] [--ends-at T|none]
 *   open | close | pause | resume <id>                change an event's state
 *   stats <id>                                        live figures
 *
 * Every command takes --json to print the API's answer as it came. Settings:
 * OPS_URL (http://127.0.0.1:3000) and ADMIN_TOKEN (the development token, as
 * the service uses when ADMIN_TOKEN is not set). Exit code 1 on any error,
 * with the problem's title and detail.
 */
import { Command, InvalidArgumentError } from 'commander';
import { DEVELOPMENT_ADMIN_TOKEN } from '../src/infra/config.js';

const baseUrl = (process.env.OPS_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
const token = process.env.ADMIN_TOKEN ?? DEVELOPMENT_ADMIN_TOKEN;
const TIMEOUT_MS = 10_000;

/** An error explained in one message, without a stack trace. */
class OpsError extends Error {}

interface Problem {
  readonly title?: string;
  readonly code?: string;
  readonly detail?: string;
  readonly errors?: readonly { path: string; message: string }[];
}

async function call(method: string, path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(baseUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new OpsError(
      `cannot reach the service at OPS_URL=${baseUrl} (${cause?.code ?? cause?.message ?? (err as Error).message}); ` +
        'is it running? Set OPS_URL to its address.',
    );
  }
  const text = await res.text();
  let parsed: unknown = null;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    throw new OpsError(`${method} ${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 200)}`);
  }
  if (!res.ok) {
    const problem = (parsed ?? {}) as Problem;
    const lines = [
      `${problem.title ?? `HTTP ${res.status}`} (${problem.code ?? res.status}): ${problem.detail ?? ''}`,
      ...(problem.errors ?? []).map((e) => `  ${e.path}: ${e.message}`),
    ];
    throw new OpsError(lines.join('\n'));
  }
  return parsed;
}

type Row = Record<string, unknown>;

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  return String(value);
}

function table(rows: readonly Row[], columns: readonly string[]): string {
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r[c]).length)));
  const line = (values: readonly string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(columns), ...rows.map((r) => line(columns.map((c) => cell(r[c]))))].join('\n');
}

function fields(record: Row, indent = ''): string {
  const width = Math.max(...Object.keys(record).map((k) => k.length));
  return Object.entries(record)
    .map(([k, v]) =>
      v !== null && typeof v === 'object'
        ? `${indent}${k}:\n${fields(v as Row, indent + '  ')}`
        : `${indent}${k.padEnd(width)}  ${cell(v)}`,
    )
    .join('\n');
}

function print(json: boolean, value: unknown, human: () => string): void {
  process.stdout.write((json ? JSON.stringify(value, null, 2) : human()) + '\n');
}

function couponId(value: string): string {
  if (!/^[1-9][0-9]{0,14}$/.test(value)) throw new InvalidArgumentError('must be a coupon id');
  return value;
}

function positiveInt(value: string): number {
  if (!/^[1-9][0-9]*$/.test(value)) throw new InvalidArgumentError('must be a positive integer');
  return Number(value);
}

/** A date-time, or `none` to remove the bound. */
function instant(value: string): string | null {
  return value === 'none' ? null : value;
}

const LIST_COLUMNS = [
  'id',
  'name',
  'status',
  'totalQuantity',
  'issuedCount',
  'remaining',
  'queued',
  'inFlight',
  'startsAt',
  'endsAt',
];

const program = new Command()
  .name('npm run ops --')
  .description(`Operate coupon events through the HTTP API at ${baseUrl}.`)
  .showHelpAfterError();

program
  .command('list')
  .description('events, newest first, with their live figures')
  .option('--status <status>', 'OPEN, SCHEDULED, PAUSED, SOLD_OUT, ENDED or CLOSED')
  .option('--limit <n>', 'events per page (1-100)', positiveInt)
  .option('--after <cursor>', 'the nextCursor of the page before')
  .option('--json', 'print the API answer as JSON')
  .action(async (opts: { status?: string; limit?: number; after?: string; json?: boolean }) => {
    const query = new URLSearchParams();
    if (opts.status) query.set('status', opts.status.toUpperCase());
    if (opts.limit) query.set('limit', String(opts.limit));
    if (opts.after) query.set('after', opts.after);
    const qs = query.toString();
    const page = (await call('GET', `/coupons${qs ? `?${qs}` : ''}`)) as {
      items: Row[];
      nextCursor: string | null;
    };
    print(Boolean(opts.json), page, () =>
      [
        page.items.length === 0 ? 'no events' : table(page.items, LIST_COLUMNS),
        ...(page.nextCursor ? [`more: --after ${page.nextCursor}`] : []),
      ].join('\n'),
    );
  });

program
  .command('show')
  .description('one event')
  .argument('<id>', 'coupon id', couponId)
  .option('--json', 'print the API answer as JSON')
  .action(async (id: string, opts: { json?: boolean }) => {
    const coupon = (await call('GET', `/coupons/${id}`)) as Row;
    print(Boolean(opts.json), coupon, () => fields(coupon));
  });

program
  .command('create')
  .description('a new event')
  .requiredOption('--name <name>', 'the event name')
  .requiredOption('--total <n>', 'total quantity', positiveInt)
  .option('--starts-at <time>', 'ISO 8601 date-time with a time zone')
  .option('--ends-at <time>', 'ISO 8601 date-time with a time zone')
  .option('--json', 'print the API answer as JSON')
  .action(
    async (opts: {
      name: string;
      total: number;
      startsAt?: string;
      endsAt?: string;
      json?: boolean;
    }) => {
      const coupon = (await call('POST', '/coupons', {
        name: opts.name,
        totalQuantity: opts.total,
        ...(opts.startsAt ? { startsAt: opts.startsAt } : {}),
        ...(opts.endsAt ? { endsAt: opts.endsAt } : {}),
      })) as Row;
      print(Boolean(opts.json), coupon, () => fields(coupon));
    },
  );

program
  .command('update')
  .description("change an event's name, window or total quantity")
  .argument('<id>', 'coupon id', couponId)
  .option('--name <name>', 'the new name')
  .option('--total <n>', 'the new total quantity', positiveInt)
  .option('--starts-at <time>', 'ISO 8601 date-time, or "none"', instant)
  .option('--ends-at <time>', 'ISO 8601 date-time, or "none"', instant)
  .option('--json', 'print the API answer as JSON')
  .action(
    async (
      id: string,
      opts: {
        name?: string;
        total?: number;
        startsAt?: string | null;
        endsAt?: string | null;
        json?: boolean;
      },
    ) => {
      const coupon = (await call('PATCH', `/coupons/${id}`, {
        name: opts.name,
        totalQuantity: opts.total,
        startsAt: opts.startsAt,
        endsAt: opts.endsAt,
      })) as Row;
      print(Boolean(opts.json), coupon, () => fields(coupon));
    },
  );

for (const [action, description] of [
  ['open', 'open a scheduled event now'],
  ['close', 'close an event now; requests still waiting end EVENT_CLOSED'],
  ['pause', 'stop accepting and deciding; waiting requests keep their place'],
  ['resume', 'accept and decide again, in arrival order'],
] as const) {
  program
    .command(action)
    .description(description)
    .argument('<id>', 'coupon id', couponId)
    .option('--json', 'print the API answer as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const coupon = (await call('POST', `/coupons/${id}/${action}`)) as Row;
      print(Boolean(opts.json), coupon, () => fields(coupon));
    });
}

program
  .command('stats')
  .description("an event's live figures and its rates over the last minute")
  .argument('<id>', 'coupon id', couponId)
  .option('--json', 'print the API answer as JSON')
  .action(async (id: string, opts: { json?: boolean }) => {
    const stats = (await call('GET', `/coupons/${id}/stats`)) as Row;
    print(Boolean(opts.json), stats, () => fields(stats));
  });

try {
  await program.parseAsync();
} catch (err) {
  if (!(err instanceof OpsError)) throw err;
  process.stderr.write(`error: ${err.message}\n`);
  process.exitCode = 1;
}
