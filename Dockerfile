# syntax=docker/dockerfile:1
# Multi-stage: build with dev dependencies, run with production ones only, as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build-console-assets.mjs ./scripts/
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production ERP_HOME=/app ERP_DATA_DIR=/var/lib/erp ERP_HTTP_PORT=9464
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY sql ./sql
COPY pipelines ./pipelines
COPY mappings ./mappings
COPY jobs ./jobs
COPY partners ./partners
RUN groupadd --system erp && useradd --system --gid erp --home-dir /app erp \
  && mkdir -p /var/lib/erp && chown erp:erp /var/lib/erp
USER erp
EXPOSE 9464
# Ready when PostgreSQL and Redis answer and the migrations are current (GET /readyz, src/http/health.ts).
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+process.env.ERP_HTTP_PORT+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["worker"]
