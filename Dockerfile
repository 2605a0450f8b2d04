# The coupon-issuance service as one image; ROLE chooses what a container runs
# (api, worker or all). docker-compose.yml runs it with Redis, PostgreSQL,
# Prometheus and Grafana.
#
#   docker build -t coupon-issuance .
#   docker run --rm -e ADMIN_TOKEN=... -e JWT_SECRET=... -e REDIS_URL=... -e DATABASE_URL=... \
#     -p 3000:3000 coupon-issuance
#
# Debian slim rather than Alpine: the same C library as the build stage, and
# the one the optional native parts of the dependencies (msgpackr-extract,
# under BullMQ) ship prebuilt first; pg and ioredis are plain JavaScript either way.

# Production dependencies alone, from the lockfile. Install scripts are skipped:
# none is needed at run time (prebuilt binaries load without them) and one only
# reports telemetry.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts

# The build: TypeScript compiles src/ and scripts/ into dist/ (scripts/build.mjs
# also copies the Lua scripts beside the compiled code that loads them).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# What runs: the compiled service, its migrations and production dependencies.
# Owned by root and read-only to the service's user.
FROM node:20-bookworm-slim AS runtime
WORKDIR /app
# SHUTDOWN_TIMEOUT_MS below docker stop's default grace of 10 s, so a stop ends
# cleanly (exit 0) before it would be killed.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000 \
    SHUTDOWN_TIMEOUT_MS=8000
# package.json: "type": "module" for dist/, and where the service finds migrations/.
COPY package.json ./
COPY --from=deps /app/node_modules ./node_modules
COPY migrations ./migrations
COPY --from=build /app/dist ./dist
USER node
EXPOSE 3000
# Liveness: /healthz for ROLE=api and all, the worker's own beat in Redis for
# ROLE=worker (it listens on no port); see scripts/healthcheck.ts.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["node", "dist/scripts/healthcheck.js"]
# Node itself is PID 1, not npm or a shell: `docker stop`'s SIGTERM reaches the
# service. PID 1 gets no default signal actions from the kernel, so a signal
# with no handler would be ignored; the service installs its SIGTERM and SIGINT
# handlers at start (src/shutdown.ts) and stops within SHUTDOWN_TIMEOUT_MS. The
# processes it forks (API_PROCESSES > 1) are its own children and it reaps
# them; nothing else runs in the container, so no init process is needed.
CMD ["node", "dist/src/main.js"]
