/**
 * The container image and the compose stack. Where a Docker engine answers, the image is built and
 * its CLI run; where none does, that test says so and is skipped. What needs no engine is checked
 * everywhere: every path the Dockerfile copies exists, the build stage has what `npm run build`
 * reads, and every erp service of the compose stack has a health check on /readyz at the port it
 * serves.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const engine = spawnSync('docker', ['info'], { stdio: 'ignore', timeout: 20_000 }).status === 0;
if (!engine) console.log('docker.test: no Docker engine answers here; the image build test is skipped');

const dockerfile = readFileSync('Dockerfile', 'utf8');

describe('Dockerfile', () => {
  it('copies only paths that exist, including what `npm run build` runs', () => {
    const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1]!.split(/\s+/));
    expect(copies.length).toBeGreaterThan(5);
    for (const p of copies) expect(existsSync(p), `COPY ${p}`).toBe(true);
    const build = (JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: { build: string } }).scripts
      .build;
    const buildStage = dockerfile.slice(0, dockerfile.indexOf('FROM', dockerfile.indexOf('AS build')));
    for (const file of build.match(/scripts\/\S+/g) ?? []) expect(buildStage).toContain(file);
  });

  it('declares a health check on /readyz at ERP_HTTP_PORT', () => {
    expect(dockerfile).toMatch(/ENV .*ERP_HTTP_PORT=9464/);
    expect(dockerfile).toMatch(/HEALTHCHECK [\s\S]*\/readyz/);
  });

  it.skipIf(!engine)(
    'builds, and its CLI runs',
    () => {
      const tag = `erp-test-${process.pid}`;
      const build = spawnSync('docker', ['build', '-t', tag, '.'], { encoding: 'utf8', timeout: 900_000 });
      expect(build.status, build.stderr).toBe(0);
      try {
        const run = spawnSync('docker', ['run', '--rm', tag, '--help'], {
          encoding: 'utf8',
          timeout: 60_000,
        });
        expect(run.status, run.stderr).toBe(0);
        expect(run.stdout).toContain('erp worker');
      } finally {
        spawnSync('docker', ['rmi', '-f', tag], { stdio: 'ignore' });
      }
    },
    900_000,
  );
});

describe('docker-compose.yml', () => {
  const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as {
    services: Record<
      string,
      {
        build?: string;
        command?: string[];
        environment?: Record<string, string>;
        healthcheck?: { test: string[] };
        depends_on?: Record<string, { condition: string }>;
      }
    >;
  };

  it('runs worker, scheduler and console from the image, each checked on /readyz at its ERP_HTTP_PORT', () => {
    const erp = Object.entries(compose.services).filter(([, s]) => s.build === '.');
    expect(erp.map(([, s]) => s.command?.[0]).sort()).toEqual(['console', 'scheduler', 'worker']);
    for (const [name, s] of erp) {
      const port = s.environment?.ERP_HTTP_PORT;
      expect(port, `${name}: ERP_HTTP_PORT`).toMatch(/^\d+$/);
      expect(s.healthcheck?.test.join(' '), `${name}: healthcheck`).toContain(`127.0.0.1:${port}/readyz`);
    }
  });

  it('starts the erp services once PostgreSQL and Redis are healthy', () => {
    const worker = Object.values(compose.services).find((s) => s.command?.[0] === 'worker')!;
    expect(worker.depends_on).toMatchObject({
      postgres: { condition: 'service_healthy' },
      redis: { condition: 'service_healthy' },
    });
    expect(compose.services.postgres?.healthcheck).toBeDefined();
    expect(compose.services.redis?.healthcheck).toBeDefined();
  });
});
