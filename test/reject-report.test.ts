import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RejectReport } from '../src/pipeline/reject-report.js';

/**
 * The reject report honours back-pressure: a pipeline adds a batch of rejects, then waits at
 * ready() before the next batch. When the report's reader does not keep up, ready() holds the
 * pipeline after a bounded amount, instead of letting the rejects pile up in memory (issue 10:
 * 544 MB at 1M rejects, 1,164 MB at 2M). The report here is a FIFO whose reader the test pauses.
 * (`npm run bench` prints the peak RSS of whole runs with every row rejected.)
 */

const BATCH = 1000;

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'erp-reject-report-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const reject = (line: number) => ({
  file: 'in/items.csv',
  line,
  field: 'sku',
  value: `SKU-${line} with a value long enough to fill the report quickly`,
  reason: 'expected a whole number',
});

describe('the reject report', () => {
  it('holds the pipeline at ready() while its reader does not read, and loses nothing once it does', async () => {
    const fifo = path.join(dir, 'runs', '1', 'rejects.csv');
    await mkdir(path.dirname(fifo), { recursive: true });
    await promisify(execFile)('mkfifo', [fifo]);
    const report = new RejectReport(fifo, 10);
    // The reader opens the FIFO and reads nothing until told.
    const reader = createReadStream(fifo);
    reader.pause();
    let line = 0;
    let pending: Promise<void> | null = null;
    let batches = 0;
    // Without back-pressure ready() never waits, and this adds 2,000 batches (2M rejects).
    while (batches < 2000) {
      for (let i = 0; i < BATCH; i++) report.add(reject(++line));
      batches++;
      const ready = report.ready();
      const held = await Promise.race([ready.then(() => false), sleep(500).then(() => true)]);
      if (held) {
        pending = ready;
        break;
      }
    }
    // Held within the first few batches: what waits in memory is a few hundred KB, not the rejects so far.
    expect(pending).not.toBeNull();
    expect(batches).toBeLessThanOrEqual(10);
    // Still held a moment later: it waits for the reader, not for time.
    expect(await Promise.race([pending!.then(() => 'ready'), sleep(300).then(() => 'held')])).toBe('held');

    // The reader reads: the pipeline goes on, and the report has every reject once.
    let lines = 0;
    reader.on('data', (chunk: string | Buffer) => {
      if (typeof chunk === 'string') chunk = Buffer.from(chunk);
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
    });
    const ended = new Promise<void>((resolve) => reader.once('end', () => resolve()));
    reader.resume();
    await pending;
    for (let i = 0; i < BATCH; i++) report.add(reject(++line));
    await report.ready();
    expect(await report.close()).toBe(fifo);
    await ended;
    expect(report.count).toBe(line);
    expect(lines).toBe(line + 1);
  });
});
