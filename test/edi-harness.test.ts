import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { replayFile, samplesDir, testPartner } from '../src/edi/harness.js';
import { parseYaml } from '../src/config/yaml.js';
import { compileInboundMapping, inboundMappingSchema } from '../src/x12/mapping.js';
import { HOME, parseStrict, segs, startEdiWorld, type EdiWorld } from './helpers/edi.js';

/**
 * The sample corpus (partners/<NAME>/samples: 850s in the shapes different senders use) run by
 * the partner test harness itself: every sample must give the orders and the acks kept beside it.
 * ERP_UPDATE_SAMPLES=1 rewrites the expected files (review the diff before committing them).
 */

let w: EdiWorld;
beforeAll(async () => {
  w = await startEdiWorld('edi_harness');
});
afterAll(async () => {
  await w?.close();
});

const update = process.env.ERP_UPDATE_SAMPLES === '1';

describe('partner test harness over the sample corpus', () => {
  for (const name of ['PARTNERA', 'PARTNERB'] as const) {
    it(`${name}: every sample gives the expected orders and acks`, async () => {
      const results = await testPartner(w.app, await w.partner(name), { update });
      expect(results.length).toBeGreaterThan(0);
      expect(results.map((r) => [r.sample, r.outcome, r.diff])).toEqual(
        results.map((r) => [r.sample, update ? 'written' : 'ok', []]),
      );
      // What goes back parses in node-x12 strict mode (the TA1s, which it cannot read, travel apart).
      for (const r of results) {
        for (const text of [r.result.ack?.text, r.result.poAck?.text]) if (text) parseStrict(text);
      }
    });
  }

  it('an AMT inside a line: 4 lines loaded with their PIDs, CTT agreeing; the SAC reported unused', async () => {
    const r = await replayFile(
      w.app,
      await w.partner('PARTNERA'),
      path.join(samplesDir(HOME, 'PARTNERA'), 'amt-sac-pid-in-lines.edi'),
    );
    expect(r.orders.map((o) => [o.outcome, o.lines.map((l) => l.sku)])).toEqual([
      ['loaded', ['SKU-1001', 'SKU-1002', 'SKU-1003', 'SKU-1004']],
    ]);
    expect(r.result.unusedSegments.map((u) => u.segment)).toEqual(['AMT', 'PO1/AMT', 'PO1/SAC', 'SAC']);
    const s = parseStrict(r.result.ack!.text).segments.flat();
    expect(segs(s, 'AK9')).toEqual([['AK9', 'A', '1', '1', '1']]);
  });

  it('the harness notices when a mapping changes what a sample gives', async () => {
    const partner = await w.partner('PARTNERA');
    const file = path.join(samplesDir(HOME, 'PARTNERA'), 'qualifiers-in-any-pair.edi');
    const narrow = compileInboundMapping(
      parseYaml(
        'narrow.yaml',
        (await readFile(path.join(HOME, 'mappings/x12/850-in.yaml'), 'utf8')).replace('[VP, VN, SK]', '[VP]'),
        inboundMappingSchema,
      ),
      'narrow',
    );
    const before = await replayFile(w.app, partner, file);
    const after = await replayFile(w.app, partner, file, { mapping: narrow });
    expect(before.orders[0]!.outcome).toBe('loaded');
    // VN SKU-1001 on line 1 is no longer read: the line falls back to the buyer part ACME-1, unknown.
    expect(after.orders[0]!.outcome).toBe('rejected');
    expect(after.result.problems.join('\n')).toMatch(/line 1: no item for buyer_part BP "ACME-1"/);
  });
});
