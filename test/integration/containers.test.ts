import { expect } from 'chai';
import { execFile, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  realpathSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { validate, ValidationSeverity, type ValidatorSettings } from 'dockerfile-utils';
import pg from 'pg';
import { startHarness, type Harness } from '../support/harness.js';
import {
  inBuildContext,
  readDockerfile,
  readDockerignore,
  type Instruction,
  type Stage,
} from '../support/dockerfile.js';
import { reaper } from '../support/reaper.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const run = promisify(execFile);

const DOCKER_COMPOSE = '/usr/bin/docker-compose';
const MISSING_COMPOSE =
  'docker-compose is not installed: install Debian\'s "docker-compose" package (apt-get install docker-compose) to validate docker-compose.yml';

interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  ports?: (string | { published?: string | number; target?: number; host_ip?: string })[];
  volumes?: (string | { source?: string; target?: string; type?: string })[];
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  stop_grace_period?: string;
  restart?: string;
}

interface ComposeConfig {
  services: Record<string, ComposeService>;
}

/**
 * `docker-compose config` as an object: the file with every variable and
 * anchor resolved, as Compose itself reads it. Compose 1.29 prints YAML only;
 * it is turned into JSON by the YAML library Compose itself runs on (Debian's
 * docker-compose is Python and depends on python3-yaml).
 */
async function composeConfig(env: Record<string, string>): Promise<ComposeConfig> {
  // An empty env file: a developer's .env (the service's settings) must not change the result.
  const envFile = join(mkdtempSync(join(tmpdir(), 'cfs-compose-')), 'empty.env');
  writeFileSync(envFile, '');
  reaper.trackFolder(dirname(envFile));
  const { stdout } = await run(
    DOCKER_COMPOSE,
    ['--env-file', envFile, '-f', join(ROOT, 'docker-compose.yml'), 'config'],
    { cwd: ROOT, env: { PATH: process.env.PATH ?? '', ...env } },
  );
  const converted = spawnSync(
    'python3',
    ['-c', 'import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)'],
    { input: stdout, encoding: 'utf8' },
  );
  if (converted.status !== 0) {
    throw new Error(`could not read docker-compose config's YAML: ${converted.stderr}`);
  }
  return JSON.parse(converted.stdout) as ComposeConfig;
}

/** A published port as Compose 1.29 prints it: `127.0.0.1:3000-3009:3000/tcp`. */
function published(port: NonNullable<ComposeService['ports']>[number]): {
  hostIp: string | undefined;
  hostPort: string | undefined;
  target: string;
} {
  if (typeof port !== 'string') {
    return {
      hostIp: port.host_ip,
      hostPort: port.published === undefined ? undefined : String(port.published),
      target: String(port.target),
    };
  }
  const parts = port.replace(/\/(tcp|udp)$/, '').split(':');
  const target = parts.pop() as string;
  const hostPort = parts.pop();
  return { hostIp: parts.pop(), hostPort: hostPort === '' ? undefined : hostPort, target };
}

const SECRETS = {
  ADMIN_TOKEN: 'compose-admin-token-0123456789',
  JWT_SECRET: 'compose-jwt-secret-of-at-least-32-bytes',
};

function volumeTargets(service: ComposeService): Map<string, string> {
  const map = new Map<string, string>();
  for (const volume of service.volumes ?? []) {
    if (typeof volume === 'string') {
      const [source, target] = volume.split(':');
      map.set(target as string, source as string);
    } else if (volume.target) {
      map.set(volume.target, volume.source ?? '');
    }
  }
  return map;
}

/** What a COPY puts where, under `root` (the stage's /app): [source, destination] pairs. */
function copied(copy: Instruction, root: string): [string, string][] {
  const parts = copy.rest.split(/\s+/);
  const destination = (parts.at(-1) as string).replace(/^\.\/?/, '');
  return parts
    .slice(0, -1)
    .map((source) => [
      source,
      destination === '' || destination.endsWith('/')
        ? join(root, destination, basename(source))
        : join(root, destination),
    ]);
}

/** The source a built file is compiled from (tsconfig.build.json: rootDir ".", outDir "dist"). */
function sourceOf(built: string): string {
  return built.replace(/^dist\//, '').replace(/\.js$/, '.ts');
}

describe('containers: Dockerfile and docker-compose.yml', () => {
  describe('docker-compose.yml', () => {
    let config: ComposeConfig;
    let services: Record<string, ComposeService>;

    before(async function () {
      if (!existsSync(DOCKER_COMPOSE)) throw new Error(MISSING_COMPOSE);
      this.timeout(60_000);
      config = await composeConfig(SECRETS);
      services = config.services;
    });

    it('when Compose reads it, then it runs the stores, a migration, the API, the worker, Prometheus and Grafana', () => {
      expect(Object.keys(services).sort()).to.deep.equal([
        'api',
        'grafana',
        'migrate',
        'postgres',
        'prometheus',
        'redis',
        'worker',
      ]);
    });

    it('when no secret is set, then the file is still valid, so `up -d redis postgres` works for local development', async () => {
      const bare = await composeConfig({});
      expect(bare.services.api?.environment?.ADMIN_TOKEN ?? '').to.equal('');
      for (const name of ['redis', 'postgres']) {
        const ports = (bare.services[name]?.ports ?? []).map(published);
        expect(ports, name).to.have.length(1);
        expect(ports[0]?.hostIp, name).to.equal('127.0.0.1');
      }
      expect(published(bare.services.redis?.ports?.[0] ?? '').hostPort).to.equal('6379');
      expect(published(bare.services.postgres?.ports?.[0] ?? '').hostPort).to.equal('5432');
    });

    it('when Redis starts, then it keeps an append-only file and refuses writes rather than evict keys', () => {
      const command = (services.redis?.command ?? []).join(' ');
      expect(command).to.match(/--appendonly yes\b/);
      expect(command).to.match(/--maxmemory-policy noeviction\b/);
      expect(volumeTargets(services.redis ?? {}).has('/data')).to.equal(true);
    });

    it('when any long-running service runs, then it has a health check; the one-shot migration has none', () => {
      for (const [name, service] of Object.entries(services)) {
        const test = service.healthcheck?.test ?? [];
        if (name === 'migrate') {
          expect(test, name).to.deep.equal(['NONE']);
        } else {
          expect(test[0], name).to.be.oneOf(['CMD', 'CMD-SHELL']);
          expect(test.slice(1).join(' '), name).to.not.equal('');
        }
      }
      // The service's own check, from the image's dist/.
      for (const name of ['api', 'worker']) {
        expect(services[name]?.healthcheck?.test, name).to.deep.equal([
          'CMD',
          'node',
          'dist/scripts/healthcheck.js',
        ]);
      }
    });

    it('when the services start, then each waits for what it needs: stores healthy, the migration completed', () => {
      const conditions = (name: string) =>
        Object.fromEntries(
          Object.entries(services[name]?.depends_on ?? {}).map(([k, v]) => [k, v.condition]),
        );
      expect(conditions('migrate')).to.deep.equal({ postgres: 'service_healthy' });
      for (const name of ['api', 'worker']) {
        expect(conditions(name), name).to.deep.equal({
          redis: 'service_healthy',
          postgres: 'service_healthy',
          migrate: 'service_completed_successfully',
        });
      }
      expect(conditions('prometheus')).to.deep.equal({
        api: 'service_healthy',
        worker: 'service_healthy',
      });
      expect(conditions('grafana')).to.deep.equal({ prometheus: 'service_healthy' });
    });

    it('when the API is scaled, then no replica needs a fixed host port: it publishes a range on loopback', () => {
      const ports = (services.api?.ports ?? []).map(published);
      expect(ports).to.have.length(1);
      expect(ports[0]).to.deep.include({ hostIp: '127.0.0.1', target: '3000' });
      expect(ports[0]?.hostPort).to.match(/^\d+-\d+$/);
      const [low, high] = (ports[0]?.hostPort ?? '').split('-').map(Number);
      expect((high as number) - (low as number)).to.be.at.least(2);
      // Every published port of every service is on loopback.
      for (const [name, service] of Object.entries(services)) {
        for (const port of (service.ports ?? []).map(published)) {
          expect(port.hostIp, name).to.equal('127.0.0.1');
        }
      }
      expect(services.worker?.ports ?? [], 'the worker listens on nothing').to.have.length(0);
    });

    it('when the app services run, then they share one image and their roles, and pass the secrets through', () => {
      const app = ['migrate', 'api', 'worker'].map((name) => services[name] ?? {});
      expect(new Set(app.map((s) => s.image)).size).to.equal(1);
      for (const service of app) {
        expect(service.build).to.not.equal(undefined);
        expect(service.environment).to.include({
          ...SECRETS,
          REDIS_URL: 'redis://redis:6379',
          DATABASE_URL: 'postgres://postgres@postgres:5432/coupons',
        });
      }
      expect(services.api?.environment?.ROLE).to.equal('api');
      expect(services.worker?.environment?.ROLE).to.equal('worker');
      expect(services.migrate?.command).to.deep.equal(['node', 'dist/scripts/migrate.js']);
      expect(existsSync(join(ROOT, sourceOf('dist/scripts/migrate.js')))).to.equal(true);
      // Each app service ends its work within the grace period Compose gives it.
      const shutdownMs = Number(
        /SHUTDOWN_TIMEOUT_MS=(\d+)/.exec(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'))?.[1],
      );
      for (const service of app) {
        const graceS = Number(/^(\d+)s$/.exec(service.stop_grace_period ?? '')?.[1]);
        expect(graceS * 1000).to.be.greaterThan(shutdownMs);
      }
    });

    it('when Prometheus and Grafana start, then they read the files under deploy/', () => {
      expect(services.prometheus?.image).to.match(/^prom\/prometheus[:@]/);
      expect(
        volumeTargets(services.prometheus ?? {}).get('/etc/prometheus/prometheus.yml'),
      ).to.equal(join(ROOT, 'deploy', 'prometheus', 'prometheus.yml'));
      expect(services.grafana?.image).to.match(/^grafana\/grafana[:@]/);
      const grafana = volumeTargets(services.grafana ?? {});
      expect(grafana.get('/etc/grafana/provisioning')).to.equal(
        join(ROOT, 'deploy', 'grafana', 'provisioning'),
      );
      expect(grafana.get('/var/lib/grafana/dashboards')).to.equal(
        join(ROOT, 'deploy', 'grafana', 'dashboards'),
      );
    });
  });

  describe('Dockerfile', () => {
    const stages: Stage[] = readDockerfile(ROOT);
    const runtime = stages.at(-1) as Stage;
    const find = (stage: Stage, keyword: string) =>
      stage.instructions.filter((i) => i.keyword === keyword);
    const last = (stage: Stage, keyword: string): Instruction | undefined =>
      find(stage, keyword).at(-1);
    const scripts = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;

    it("when a Dockerfile linter reads it (dockerfile-utils, the Dockerfile language server's validator, every rule an error), then it finds nothing, though it finds what a broken copy gets wrong", () => {
      const strict: ValidatorSettings = {
        deprecatedMaintainer: ValidationSeverity.ERROR,
        directiveCasing: ValidationSeverity.ERROR,
        emptyContinuationLine: ValidationSeverity.ERROR,
        instructionCasing: ValidationSeverity.ERROR,
        instructionCmdMultiple: ValidationSeverity.ERROR,
        instructionEntrypointMultiple: ValidationSeverity.ERROR,
        instructionHealthcheckMultiple: ValidationSeverity.ERROR,
        instructionJSONInSingleQuotes: ValidationSeverity.ERROR,
        instructionWorkdirRelative: ValidationSeverity.ERROR,
      };
      const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
      const problems = validate(text, strict).map(
        (d) => `line ${d.range.start.line + 1}: ${d.message}`,
      );
      expect(problems).to.deep.equal([]);

      const broken = `${text}\nCMD ['node', 'x.js']\nEXPOSE http\nWORKDIR relative\n`;
      expect(validate(broken, strict).map((d) => d.message)).to.have.length(4);
    });

    it('when it is read, then it has a build stage and a small Node 20 runtime stage', () => {
      expect(stages.length).to.be.at.least(2);
      expect(runtime.from).to.match(/^node:20[-.\w]*-(slim|alpine)/);
      const named = new Set(stages.map((s) => s.name));
      for (const stage of stages) {
        for (const copy of find(stage, 'COPY')) {
          if (copy.flags.from) expect(named, copy.rest).to.include(copy.flags.from);
        }
      }
    });

    it('when the image runs, then it runs as a user other than root', () => {
      const user = last(runtime, 'USER')?.rest;
      expect(user).to.be.a('string');
      expect(user).to.not.match(/^(root|0)(:|$)/);
    });

    it('when the container starts, then Node runs the compiled service as PID 1 (exec form, no npm or shell)', () => {
      expect(last(runtime, 'CMD')?.exec).to.deep.equal(['node', 'dist/src/main.js']);
      expect(find(runtime, 'ENTRYPOINT')).to.have.length(0);
      expect(existsSync(join(ROOT, sourceOf('dist/src/main.js')))).to.equal(true);
    });

    it('when it is healthy-checked, then Node runs the check (no curl in a slim image) and the service listens on every interface of port 3000', () => {
      const check = last(runtime, 'HEALTHCHECK');
      expect(check?.exec?.[0]).to.equal('node');
      const script = check?.exec?.[1] as string;
      expect(existsSync(join(ROOT, sourceOf(script))), script).to.equal(true);
      expect(find(runtime, 'EXPOSE').map((i) => i.rest)).to.deep.equal(['3000']);
      const env = find(runtime, 'ENV')
        .map((i) => i.rest)
        .join(' ');
      expect(env).to.match(/\bHOST=0\.0\.0\.0\b/);
      expect(env).to.match(/\bNODE_ENV=production\b/);
    });

    it('when it builds, then every npm script it runs exists, dependencies come from the lockfile, and the runtime gets production ones only', () => {
      const runs = stages.flatMap((s) => find(s, 'RUN').map((i) => i.rest));
      const npmScripts = runs.flatMap((r) => [...r.matchAll(/npm run (\S+)/g)].map((m) => m[1]));
      expect(npmScripts).to.include('build');
      for (const name of npmScripts) expect(scripts, name).to.have.property(name as string);
      expect(runs.some((r) => /npm ci\b(?!.*--omit=dev)/.test(r))).to.equal(true);
      expect(runs.some((r) => /npm ci\b.*--omit=dev/.test(r))).to.equal(true);
      // The runtime copies node_modules from a stage that installed without devDependencies.
      const modules = find(runtime, 'COPY').find((c) => /node_modules/.test(c.rest));
      const from = stages.find((s) => s.name === modules?.flags.from);
      expect(from && find(from, 'RUN').some((r) => /npm ci\b.*--omit=dev/.test(r.rest))).to.equal(
        true,
      );
    });

    it('when the context is sent, then every file it copies is in it, and no .env, node_modules, dist or .git', () => {
      const rules = readDockerignore(ROOT);
      for (const stage of stages) {
        for (const copy of find(stage, 'COPY')) {
          if (copy.flags.from) continue;
          const sources = copy.rest.split(/\s+/).slice(0, -1);
          for (const source of sources) {
            expect(existsSync(join(ROOT, source)), source).to.equal(true);
            expect(inBuildContext(rules, source), source).to.equal(true);
          }
        }
      }
      for (const kept of ['.env', 'node_modules', 'dist', '.git', 'test', 'bench']) {
        expect(inBuildContext(rules, kept), kept).to.equal(false);
      }
    });
  });

  describe('the image, laid out without Docker', function () {
    this.timeout(120_000);
    let h: Harness;
    /** The build stage's /app: the context (as .dockerignore lets it in), then npm run build. */
    let build: string;
    /** The runtime stage's /app, from its COPY lines. */
    let image: string;
    /** The runtime stage's ENV. */
    let imageEnv: Record<string, string>;
    const databaseUrl = `postgres://postgres@127.0.0.1:5432/coupons_test_image_${randomBytes(4).toString('hex')}`;

    before(async () => {
      h = await startHarness();
      const rules = readDockerignore(ROOT);
      build = mkdtempSync(join(tmpdir(), 'cfs-image-build-'));
      image = mkdtempSync(join(tmpdir(), 'cfs-image-'));
      reaper.trackFolder(build);
      reaper.trackFolder(image);
      const stages = readDockerfile(ROOT);
      const buildStage = stages.find((s) =>
        s.instructions.some((i) => i.keyword === 'RUN' && /npm run build/.test(i.rest)),
      ) as Stage;
      for (const copy of buildStage.instructions.filter((i) => i.keyword === 'COPY')) {
        for (const [source, target] of copied(copy, build)) {
          if (inBuildContext(rules, source))
            cpSync(join(ROOT, source), target, { recursive: true });
        }
      }
      // npm ci's result, from this checkout (nothing is installed from the network here).
      symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(build, 'node_modules'));
      await run(process.execPath, ['scripts/build.mjs'], { cwd: build });

      const runtime = stages.at(-1) as Stage;
      for (const copy of runtime.instructions.filter((i) => i.keyword === 'COPY')) {
        for (const [source, target] of copied(copy, image)) {
          if (source.endsWith('/node_modules')) {
            symlinkSync(realpathSync(join(ROOT, 'node_modules')), target);
          } else if (copy.flags.from) {
            cpSync(join(build, source.replace(/^\/app\//, '')), target, { recursive: true });
          } else {
            cpSync(join(ROOT, source), target, { recursive: true });
          }
        }
      }
      imageEnv = Object.fromEntries(
        runtime.instructions
          .filter((i) => i.keyword === 'ENV')
          .flatMap((i) => i.rest.split(/\s+/))
          .map((pair) => pair.split('=') as [string, string]),
      );
    });

    after(async () => {
      const admin = new pg.Client({
        connectionString: 'postgres://postgres@127.0.0.1:5432/postgres',
      });
      await admin.connect();
      await admin
        .query(`DROP DATABASE IF EXISTS "${new URL(databaseUrl).pathname.slice(1)}" WITH (FORCE)`)
        .catch(() => undefined);
      await admin.end();
      await h?.cleanup();
    });

    it("when the migrate service's command runs in the image's layout, then a new database gets every migration", async () => {
      const migrate = (await composeConfigOrSkip())?.services.migrate?.command ?? [
        'node',
        'dist/scripts/migrate.js',
      ];
      expect(migrate[0]).to.equal('node');
      await run(process.execPath, migrate.slice(1), {
        cwd: image,
        env: { PATH: process.env.PATH ?? '', ...imageEnv, ...SECRETS, DATABASE_URL: databaseUrl },
      });

      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: string }>(
          'SELECT count(*) AS n FROM drizzle.__drizzle_migrations',
        );
        const journal = JSON.parse(
          readFileSync(join(ROOT, 'migrations', 'meta', '_journal.json'), 'utf8'),
        ) as { entries: unknown[] };
        expect(Number(rows[0]?.n)).to.equal(journal.entries.length);
      } finally {
        await client.end();
      }
    });

    it("when the image's health check runs, then it passes against a live API and fails, saying why, against none", async () => {
      const check = readDockerfile(ROOT)
        .at(-1)
        ?.instructions.find((i) => i.keyword === 'HEALTHCHECK')?.exec as string[];
      const port = new URL(h.baseUrl).port;
      const env = { PATH: process.env.PATH ?? '', ...imageEnv, ...SECRETS, ROLE: 'api' };
      // Not spawnSync: the API under test answers from this process's event loop.
      const alive = await exitOf(process.execPath, check.slice(1), image, { ...env, PORT: port });
      expect(alive.code, alive.stderr).to.equal(0);

      const dead = await exitOf(process.execPath, check.slice(1), image, { ...env, PORT: '9' });
      expect(dead.code).to.equal(1);
      expect(dead.stderr).to.match(/^unhealthy: http:\/\/127\.0\.0\.1:9\/healthz did not answer/);
    });

    it("when the image's health check runs for a worker, then it passes while this host's worker beats in Redis and fails where none does", async () => {
      const check = readDockerfile(ROOT)
        .at(-1)
        ?.instructions.find((i) => i.keyword === 'HEALTHCHECK')?.exec as string[];
      const env = {
        PATH: process.env.PATH ?? '',
        ...imageEnv,
        ...SECRETS,
        ROLE: 'worker',
        REDIS_URL: h.container.config.redisUrl,
      };
      // The harness's container beats as a worker of this host would.
      const beating = await exitOf(process.execPath, check.slice(1), image, {
        ...env,
        REDIS_KEY_PREFIX: h.prefix,
      });
      expect(beating.code, beating.stderr).to.equal(0);

      const silent = await exitOf(process.execPath, check.slice(1), image, {
        ...env,
        REDIS_KEY_PREFIX: `${h.prefix}nobody:`,
      });
      expect(silent.code).to.equal(1);
      expect(silent.stderr).to.match(/^unhealthy: no worker on \S+ has beaten/);
    });
  });
});

/** Runs a command to its end; its exit code and standard error. */
async function exitOf(
  command: string,
  args: string[],
  cwd: string,
  env: Record<string, string>,
): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(command, args, { cwd, env, timeout: 30_000 });
    return { code: 0, stderr };
  } catch (err) {
    const failed = err as { code?: number; stderr?: string };
    return {
      code: typeof failed.code === 'number' ? failed.code : -1,
      stderr: failed.stderr ?? '',
    };
  }
}

/** The compose file's config when docker-compose is here; the Dockerfile tests stand without it. */
async function composeConfigOrSkip(): Promise<ComposeConfig | undefined> {
  if (!existsSync(DOCKER_COMPOSE)) return undefined;
  return composeConfig(SECRETS);
}
