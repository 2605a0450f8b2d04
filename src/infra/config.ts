import { BlockList, isIP } from 'node:net';
import cron from 'node-cron';
import { z } from 'zod';
import type { FaultPoint } from '../domain/ports.js';
import { defaultApiProcesses } from './cpu-limit.js';
import { parseFaultPoints, type FaultAction } from './fault-points.js';

const MAX_API_PROCESSES = 64;

const TRUST_PROXY_MESSAGE =
  'must be false, true, a hop count, or comma-separated addresses, CIDRs and loopback, linklocal, uniquelocal';

const integer = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: integer(0, 65535).default(3000),
    /**
     * The address to listen on. Loopback by default: the development token is
     * well known, so a service using it must not be reachable from elsewhere.
     */
    HOST: z
      .string()
      .refine(
        (v) => isIP(v) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(v),
        'must be an IP address or a host name',
      )
      .default('127.0.0.1'),
    /** Time a client has to send a request's headers; past it, 408 and the connection closes. */
    HTTP_HEADERS_TIMEOUT_MS: integer(10, 600_000).default(10_000),
    /** Time a client has to send a whole request (headers and body); past it, 408. */
    HTTP_REQUEST_TIMEOUT_MS: integer(10, 3_600_000).default(10_000),
    /** Open connections one API process accepts; further ones are closed at once. */
    HTTP_MAX_CONNECTIONS: integer(1, 1_000_000).default(10_000),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .default('redis://127.0.0.1:6379'),
    /** Namespace for every key this service writes; lets several deployments share one Redis. */
    REDIS_KEY_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{0,64}$/, 'letters, digits and _ . : - only')
      .default('cfs:'),
    /** Bound on each Redis command of the accept path; past it the client gets 503. */
    REDIS_COMMAND_TIMEOUT_MS: integer(50, 60_000).default(1_000),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .default('postgres://postgres@127.0.0.1:5432/coupons'),
    ADMIN_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    BATCH_SIZE: integer(1, 10_000).default(2000),
    BATCH_CRON: z
      .string()
      .refine((v) => cron.validate(v), 'must be a valid node-cron expression')
      .default('* * * * * *'),
    BATCH_INTERVAL_MS: integer(1, 60_000).default(100),
    /** Batches one worker process keeps in flight; each lane holds one PostgreSQL connection. */
    BATCH_LANES: integer(1, 8).default(2),
    /** Niceness a process running only the worker (ROLE=worker) gives itself: answering comes first. */
    WORKER_NICE: integer(0, 19).default(10),
    /**
     * How far the JavaScript heap may grow past what a full collection leaves live before the
     * next one (V8's heap growing factor, 1 + percent/100); 0 leaves it to V8 (up to 4x).
     */
    HEAP_GROWING_PERCENT: integer(0, 300).default(150),
    LEASE_MS: integer(100, 3_600_000).default(30_000),
    LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info'),
    /**
     * One JSON line per answered request: `off` (the default: the hot path pays nothing),
     * `sampled` (ACCESS_LOG_SAMPLE_RATE of them, chosen at random) or `all`.
     */
    ACCESS_LOG: z.enum(['off', 'sampled', 'all']).default('off'),
    /** The share of requests ACCESS_LOG=sampled writes, from 0 to 1. */
    ACCESS_LOG_SAMPLE_RATE: z.coerce.number().min(0).max(1).default(0.01),
    ROLE: z.enum(['api', 'worker', 'all']).default('all'),
    /**
     * HTTP processes `npm start` runs (node:cluster); 1 keeps everything in one process.
     * Unset: one per CPU this process may use (cores, bounded by the cgroup's CPU limit).
     */
    API_PROCESSES: integer(1, MAX_API_PROCESSES).optional(),
    /**
     * How long a stopping service (SIGTERM or SIGINT) may take to answer what it holds and finish
     * its batches before what is left is cut off (and, under the supervisor, killed).
     */
    SHUTDOWN_TIMEOUT_MS: integer(1_000, 600_000).default(10_000),
    /** /readyz answers 503 when no batch worker has beaten this recently (workers beat every second). */
    WORKER_HEARTBEAT_STALE_MS: integer(2_000, 600_000).default(5_000),
    /** For fault-injection tests only: refused in production. */
    FAULT_POINTS: z.string().default(''),
    /** `refuse` (default in production) or `warn` when Redis may evict keys. */
    REDIS_EVICTION_CHECK: z.enum(['refuse', 'warn']).optional(),
    /** Whether this worker process runs the event lifecycle jobs (at least one worker must). */
    LIFECYCLE_JOBS: z.enum(['true', 'false']).default('true'),
    /** How often the worker's reconcile job checks every live event against PostgreSQL. */
    RECONCILE_EVERY_MS: integer(500, 86_400_000).default(60_000),
    /**
     * Every Redis key of an event expires this long after its end (or its close):
     * a second safety behind retirement, never reached while the event is live.
     */
    KEY_EXPIRY_AFTER_END_MS: integer(60_000, 365 * 86_400_000).default(7 * 86_400_000),
    /** HS256 key for users' bearer tokens (JWT), at least 32 bytes. */
    JWT_SECRET: z
      .string()
      .refine((v) => Buffer.byteLength(v) >= 32, 'must be at least 32 bytes')
      .optional(),
    /** Where the RS256/ES256 keys of users' bearer tokens are published (a JWKS), instead of JWT_SECRET. */
    JWT_JWKS_URL: z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).optional(),
    /** When set, a token's `iss` must equal it. */
    JWT_ISSUER: z.string().min(1).optional(),
    /** When set, a token's `aud` must contain it. */
    JWT_AUDIENCE: z.string().min(1).optional(),
    /** Seconds of clock difference allowed on `exp` and `nbf`. */
    JWT_CLOCK_TOLERANCE_S: integer(0, 300).default(5),
    /** The claim holding a token's roles (a string or an array of strings). */
    JWT_ROLES_CLAIM: z
      .string()
      .regex(/^[A-Za-z0-9_.:/-]{1,200}$/, 'must be a claim name')
      .default('roles'),
    /** The role in that claim that makes a token an operator's. */
    JWT_OPERATOR_ROLE: z.string().min(1).max(200).default('operator'),
    /** `false` turns every rate limit off (one limit alone: set its points to 0). */
    RATE_LIMIT_ENABLED: z.enum(['true', 'false']).default('true'),
    /** Requests per client address per window, on every route; generous, for carrier NAT. */
    RATE_LIMIT_IP_POINTS: integer(0, 1_000_000).default(600),
    RATE_LIMIT_IP_WINDOW_S: integer(1, 86_400).default(10),
    /** Issue requests per user per window. */
    RATE_LIMIT_ACCEPT_POINTS: integer(0, 1_000_000).default(10),
    RATE_LIMIT_ACCEPT_WINDOW_S: integer(1, 86_400).default(10),
    /** Status reads per user per window. */
    RATE_LIMIT_STATUS_POINTS: integer(0, 1_000_000).default(60),
    RATE_LIMIT_STATUS_WINDOW_S: integer(1, 86_400).default(10),
    /** Failed authentications per client address per window; past it the address is refused. */
    RATE_LIMIT_AUTH_FAILURE_POINTS: integer(0, 1_000_000).default(10),
    RATE_LIMIT_AUTH_FAILURE_WINDOW_S: integer(1, 86_400).default(60),
    /**
     * Which proxies to believe about the client address (Express `trust proxy`): `false`,
     * a hop count, or a comma-separated list of addresses, CIDRs and the names
     * loopback, linklocal, uniquelocal.
     */
    TRUST_PROXY: z
      .string()
      .refine((v) => parseTrustProxy(v) !== undefined, TRUST_PROXY_MESSAGE)
      .default('false'),
    /** Browser origins allowed to call the API (CORS), comma-separated, exact; none by default. */
    CORS_ORIGINS: z
      .string()
      .refine(
        (v) => parseOrigins(v) !== undefined,
        'must be comma-separated origins such as https://shop.example.com',
      )
      .default(''),
    /** `false`: no metrics are kept and GET /metrics answers 404. */
    METRICS_ENABLED: z.enum(['true', 'false']).default('true'),
    /** When set, GET /metrics needs `Authorization: Bearer <METRICS_TOKEN>`; unset, it is open. */
    METRICS_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    /**
     * A process run alone with ROLE=worker serves GET /metrics on this port (it has no API);
     * unset, it serves nothing. Ignored in every other layout.
     */
    WORKER_METRICS_PORT: integer(0, 65535).optional(),
  })
  .superRefine((env, ctx) => {
    if (env.NODE_ENV === 'production' && !env.ADMIN_TOKEN) {
      ctx.addIssue({ code: 'custom', path: ['ADMIN_TOKEN'], message: 'is required in production' });
    } else if (!env.ADMIN_TOKEN && env.ROLE !== 'worker' && !isLoopback(env.HOST)) {
      // Anyone who can reach the port could open events and close them with a token
      // printed in the README. A worker process serves no API (at most /metrics): left alone.
      ctx.addIssue({
        code: 'custom',
        path: ['ADMIN_TOKEN'],
        message: `is not set, so the development token is in use, and HOST=${JSON.stringify(env.HOST)} is not a loopback address: set ADMIN_TOKEN, or HOST=127.0.0.1 to keep the development token`,
      });
    }
    if (env.JWT_SECRET && env.JWT_JWKS_URL) {
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_JWKS_URL'],
        message: 'set JWT_SECRET or JWT_JWKS_URL, not both (a token is verified one way only)',
      });
    } else if (
      env.NODE_ENV === 'production' &&
      env.ROLE !== 'worker' &&
      !env.JWT_SECRET &&
      !env.JWT_JWKS_URL
    ) {
      // Without a verified identity the user is whatever a client writes in the body: one
      // client could take a whole event under made-up names.
      ctx.addIssue({
        code: 'custom',
        path: ['JWT_SECRET'],
        message:
          'is required in production (or JWT_JWKS_URL): without either, any client may claim to be any user',
      });
    }
    if (env.ACCESS_LOG !== 'off' && (env.LOG_LEVEL === 'error' || env.LOG_LEVEL === 'warn')) {
      ctx.addIssue({
        code: 'custom',
        path: ['ACCESS_LOG'],
        message: `writes at level info, which LOG_LEVEL=${env.LOG_LEVEL} drops: set LOG_LEVEL=info or ACCESS_LOG=off`,
      });
    }
    if (env.HTTP_HEADERS_TIMEOUT_MS > env.HTTP_REQUEST_TIMEOUT_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['HTTP_HEADERS_TIMEOUT_MS'],
        message: `must not exceed HTTP_REQUEST_TIMEOUT_MS (${env.HTTP_REQUEST_TIMEOUT_MS})`,
      });
    }
    if (env.FAULT_POINTS) {
      const parsed = parseFaultPoints(env.FAULT_POINTS);
      if (typeof parsed === 'string') {
        ctx.addIssue({ code: 'custom', path: ['FAULT_POINTS'], message: parsed });
      } else if (env.NODE_ENV === 'production') {
        ctx.addIssue({
          code: 'custom',
          path: ['FAULT_POINTS'],
          message: 'cannot be set in production',
        });
      }
    }
  });

export type Env = z.infer<typeof schema>;

export interface Config {
  readonly nodeEnv: Env['NODE_ENV'];
  readonly port: number;
  readonly host: string;
  /** Bounds on what one client may hold of an API process (see src/api/server.ts). */
  readonly http: {
    readonly headersTimeoutMs: number;
    readonly requestTimeoutMs: number;
    readonly maxConnections: number;
  };
  readonly redisUrl: string;
  readonly redisKeyPrefix: string;
  readonly redisCommandTimeoutMs: number;
  readonly databaseUrl: string;
  readonly adminToken: string;
  /** True when ADMIN_TOKEN was not set and the development token is in use. */
  readonly adminTokenIsDefault: boolean;
  readonly batchSize: number;
  readonly batchCron: string;
  readonly batchIntervalMs: number;
  readonly batchLanes: number;
  readonly workerNice: number;
  /** V8's heap growing factor as a percentage over 1; 0: V8 decides. */
  readonly heapGrowingPercent: number;
  readonly leaseMs: number;
  readonly logLevel: Env['LOG_LEVEL'];
  /** Access lines: which requests get one (`sampleRate` applies to `sampled` only). */
  readonly accessLog: { readonly mode: Env['ACCESS_LOG']; readonly sampleRate: number };
  readonly role: Env['ROLE'];
  readonly apiProcesses: number;
  readonly shutdownTimeoutMs: number;
  readonly workerHeartbeatStaleMs: number;
  readonly faultPoints: ReadonlyMap<FaultPoint, FaultAction>;
  readonly redisEvictionCheck: 'refuse' | 'warn';
  /** Whether a worker process runs the event lifecycle jobs (BullMQ). */
  readonly lifecycleJobs: boolean;
  readonly reconcileEveryMs: number;
  readonly keyExpiryAfterEndMs: number;
  /** How users' bearer tokens are verified; null: no identity, the user is the body's userId. */
  readonly identity: IdentityConfig | null;
  /** Absent when RATE_LIMIT_ENABLED=false; a limit with 0 points is absent too. */
  readonly rateLimits?: RateLimitSettings;
  /** Express `trust proxy`: false, a hop count, or addresses and CIDRs. */
  readonly trustProxy: boolean | number | readonly string[];
  readonly corsOrigins: readonly string[];
  /** Prometheus metrics at GET /metrics; null when METRICS_ENABLED=false. */
  readonly metrics: { readonly token: string | null; readonly workerPort: number | null } | null;
}

export interface IdentityConfig {
  readonly key:
    | { readonly kind: 'secret'; readonly secret: string }
    | { readonly kind: 'jwks'; readonly url: string };
  readonly issuer?: string;
  readonly audience?: string;
  readonly clockToleranceSec: number;
  readonly rolesClaim: string;
  readonly operatorRole: string;
}

export interface RateLimit {
  readonly points: number;
  readonly windowS: number;
}

export interface RateLimitSettings {
  readonly ip?: RateLimit;
  readonly accept?: RateLimit;
  readonly status?: RateLimit;
  readonly authFailure?: RateLimit;
}

const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

/** TRUST_PROXY as Express takes it, or undefined when it is not valid. */
export function parseTrustProxy(value: string): boolean | number | string[] | undefined {
  if (value === 'false') return false;
  // Trusts whatever X-Forwarded-For says: only behind a proxy that always overwrites it.
  if (value === 'true') return true;
  if (/^\d{1,2}$/.test(value)) return Number(value);
  const entries = value.split(',').map((v) => v.trim());
  const valid = entries.every((entry) => {
    if (PROXY_NAMES.has(entry)) return true;
    const [address, bits, extra] = entry.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) return false;
    if (bits === undefined) return true;
    const n = /^\d{1,3}$/.test(bits) ? Number(bits) : -1;
    return n >= 0 && n <= (family === 4 ? 32 : 128);
  });
  return valid ? entries : undefined;
}

/** CORS_ORIGINS as a list, or undefined when an entry is not an origin (scheme, host, port only). */
export function parseOrigins(value: string): string[] | undefined {
  const entries = value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
  const valid = entries.every((entry) => {
    try {
      const url = new URL(entry);
      return /^https?:$/.test(url.protocol) && url.origin === entry;
    } catch {
      return false;
    }
  });
  return valid ? entries : undefined;
}

function rateLimit(points: number, windowS: number): RateLimit | undefined {
  return points === 0 ? undefined : { points, windowS };
}

export const DEVELOPMENT_ADMIN_TOKEN = 'dev-admin-token-change-me';

const LOOPBACK = new BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');
LOOPBACK.addSubnet('::ffff:127.0.0.0', 104, 'ipv6');

/** Whether only this machine can connect to an address (RFC 6761 keeps `localhost` on loopback). */
export function isLoopback(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const family = isIP(host);
  if (family === 0) return false;
  return LOOPBACK.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

const SECRET_NAME = /TOKEN|SECRET|PASSWORD/;

/**
 * A setting's value as an error may print it: secrets not at all, and no
 * password from anything shaped like a URL or a connection string, even one
 * too malformed to parse (which is when it gets printed).
 */
function mask(name: string, value: string): string {
  if (SECRET_NAME.test(name)) return '***';
  let shown = value.replace(/\b(password|passwd|pass|pwd)=[^\s&;]*/gi, '$1=***');
  const at = shown.lastIndexOf('@');
  if (at >= 0) {
    const scheme = shown.indexOf('://');
    const start = scheme >= 0 && scheme < at ? scheme + 3 : 0;
    const colon = shown.indexOf(':', start);
    if (colon >= 0 && colon < at) shown = `${shown.slice(0, colon)}:***${shown.slice(at)}`;
  }
  return shown;
}

export class ConfigError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** The only place that reads process.env. Empty strings count as unset. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ''),
  );
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = issue.path.join('.') || '(environment)';
        const value = present[String(issue.path[0])];
        return `${name}${value === undefined ? '' : `=${JSON.stringify(mask(name, value))}`}: ${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  return {
    nodeEnv: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    http: {
      headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_MS,
      requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_MS,
      maxConnections: e.HTTP_MAX_CONNECTIONS,
    },
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    redisCommandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS,
    databaseUrl: e.DATABASE_URL,
    adminToken: e.ADMIN_TOKEN ?? DEVELOPMENT_ADMIN_TOKEN,
    adminTokenIsDefault: e.ADMIN_TOKEN === undefined,
    batchSize: e.BATCH_SIZE,
    batchCron: e.BATCH_CRON,
    batchIntervalMs: e.BATCH_INTERVAL_MS,
    batchLanes: e.BATCH_LANES,
    workerNice: e.WORKER_NICE,
    heapGrowingPercent: e.HEAP_GROWING_PERCENT,
    leaseMs: e.LEASE_MS,
    logLevel: e.LOG_LEVEL,
    accessLog: { mode: e.ACCESS_LOG, sampleRate: e.ACCESS_LOG_SAMPLE_RATE },
    role: e.ROLE,
    apiProcesses: e.API_PROCESSES ?? defaultApiProcesses(MAX_API_PROCESSES),
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    workerHeartbeatStaleMs: e.WORKER_HEARTBEAT_STALE_MS,
    faultPoints: e.FAULT_POINTS
      ? (parseFaultPoints(e.FAULT_POINTS) as Map<FaultPoint, FaultAction>)
      : new Map(),
    redisEvictionCheck: e.REDIS_EVICTION_CHECK ?? (e.NODE_ENV === 'production' ? 'refuse' : 'warn'),
    lifecycleJobs: e.LIFECYCLE_JOBS === 'true',
    reconcileEveryMs: e.RECONCILE_EVERY_MS,
    keyExpiryAfterEndMs: e.KEY_EXPIRY_AFTER_END_MS,
    identity:
      e.JWT_SECRET || e.JWT_JWKS_URL
        ? {
            key: e.JWT_SECRET
              ? { kind: 'secret', secret: e.JWT_SECRET }
              : { kind: 'jwks', url: e.JWT_JWKS_URL as string },
            ...(e.JWT_ISSUER ? { issuer: e.JWT_ISSUER } : {}),
            ...(e.JWT_AUDIENCE ? { audience: e.JWT_AUDIENCE } : {}),
            clockToleranceSec: e.JWT_CLOCK_TOLERANCE_S,
            rolesClaim: e.JWT_ROLES_CLAIM,
            operatorRole: e.JWT_OPERATOR_ROLE,
          }
        : null,
    ...(e.RATE_LIMIT_ENABLED === 'true'
      ? {
          rateLimits: {
            ip: rateLimit(e.RATE_LIMIT_IP_POINTS, e.RATE_LIMIT_IP_WINDOW_S),
            accept: rateLimit(e.RATE_LIMIT_ACCEPT_POINTS, e.RATE_LIMIT_ACCEPT_WINDOW_S),
            status: rateLimit(e.RATE_LIMIT_STATUS_POINTS, e.RATE_LIMIT_STATUS_WINDOW_S),
            authFailure: rateLimit(
              e.RATE_LIMIT_AUTH_FAILURE_POINTS,
              e.RATE_LIMIT_AUTH_FAILURE_WINDOW_S,
            ),
          },
        }
      : {}),
    trustProxy: parseTrustProxy(e.TRUST_PROXY) as boolean | number | string[],
    corsOrigins: parseOrigins(e.CORS_ORIGINS) as string[],
    metrics:
      e.METRICS_ENABLED === 'true'
        ? { token: e.METRICS_TOKEN ?? null, workerPort: e.WORKER_METRICS_PORT ?? null }
        : null,
  };
}
