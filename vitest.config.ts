import { defineConfig } from 'vitest/config';

/**
 * Two projects. `unit`: tests of pure code (parsers, writers, schemas, the layout's own checks),
 * which need no PostgreSQL, Redis or sshd — `npx vitest run --project unit` runs them anywhere.
 * `integration`: everything else, against real services, with the global set-up that builds the
 * migrated template database and checks that dist/ (which the CLI tests spawn) is current.
 */
const UNIT = [
  'test/config.test.ts',
  'test/gcm-batch.test.ts',
  'test/csv-tokenizer.test.ts',
  'test/csv-writer.test.ts',
  'test/dist.test.ts',
  'test/format-xlsx.test.ts',
  'test/import-cycles.test.ts',
  'test/nacha.test.ts',
  'test/reject-report-formulas.test.ts',
  'test/runs-store.test.ts',
  'test/sqlstate.test.ts',
  'test/test-layout.test.ts',
  'test/text-decode.test.ts',
  'test/validate.test.ts',
  'test/x12/ack.test.ts',
  'test/x12/envelope.test.ts',
  'test/x12/mapping.test.ts',
  'test/x12/outbound.test.ts',
  'test/x12/partner.test.ts',
  'test/x12/splitter.test.ts',
  'test/x12/structure.test.ts',
  'test/x12/writer.test.ts',
  'test/xlsx-producers.test.ts',
];

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Two cores: files run in parallel, each against its own database and queue prefix.
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      { extends: true, test: { name: 'unit', include: UNIT } },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: UNIT,
          globalSetup: ['test/helpers/global-setup.ts'],
        },
      },
    ],
  },
});
