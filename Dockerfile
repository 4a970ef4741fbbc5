# syntax=docker/dockerfile:1
# Multi-stage: build with dev dependencies, run with production ones only, as a non-root user.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production ERP_HOME=/app ERP_DATA_DIR=/var/lib/erp
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
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["worker"]
