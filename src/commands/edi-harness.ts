import path from 'node:path';
import type { App } from '../app.js';
import { listExceptions, reprocessHeld } from '../edi/exceptions.js';
import { samplesDir, testPartner } from '../edi/harness.js';
import { UserError } from '../errors.js';
import { listPartnerNames, loadPartner } from '../partners/profile.js';
import { table } from './report.js';
import { loadMappingFile, parseSince, replayPartner } from '../edi/replay.js';
import { first, type EdiCommandOptions } from './edi.js';
import { EXIT } from './exit.js';

/**
 * `erp edi test <partner> [--update]`: the partner's samples through split, validate and map,
 * compared with the expected files beside them (exit 1 when any differs or is missing).
 * `erp edi exceptions [partner]`: the orders held for business errors.
 * `erp edi reprocess <partner>`: loads the held orders whose problems are gone, each once.
 * `erp edi replay <partner> --since 30d [--mapping FILE]`: archived inbound files through a
 * mapping, the differences with what was loaded; nothing written.
 */
export async function ediHarnessCommand(
  app: App,
  action: 'test' | 'exceptions' | 'reprocess' | 'replay',
  partnerName: string | undefined,
  opts: EdiCommandOptions,
): Promise<number> {
  const out = (lines: string[]): void => {
    process.stdout.write(`${lines.join('\n')}\n`);
  };
  if (action === 'exceptions') {
    const held = await listExceptions(app.pool, partnerName);
    if (held.length === 0) {
      out(['no order is held']);
      return EXIT.ok;
    }
    out([
      `${held.length} order(s) held for business errors (erp edi reprocess <partner> loads them once fixed):`,
      table(
        ['ID', 'PARTNER', 'PO', 'FILE', 'ISA13/GS06/ST02', 'PROBLEM'],
        held.map((h) => [
          String(h.id),
          h.partner,
          h.customerPo ?? '',
          h.fileName,
          `${h.isa13}/${h.gs06}/${h.st02}`,
          h.problems[0] && h.problems[0].length > 100
            ? `${h.problems[0].slice(0, 97)}...`
            : (h.problems[0] ?? ''),
        ]),
      ),
    ]);
    return EXIT.ok;
  }
  if (!partnerName) {
    throw new UserError(
      `usage: erp edi ${action} <partner>; partners are: ${(await listPartnerNames(app.home)).join(', ') || '(none)'}`,
    );
  }
  const partner = await loadPartner(app.home, partnerName);
  if (action === 'replay') {
    const since = first(opts.since);
    if (since === undefined)
      throw new UserError('usage: erp edi replay <partner> --since 30d [--mapping FILE]');
    const mappingFile = first(opts.mapping);
    const files = await replayPartner(app, partner, {
      sinceHours: parseSince(since),
      ...(mappingFile ? { mapping: await loadMappingFile(path.resolve(mappingFile)) } : {}),
    });
    const lines = [
      `edi replay ${partner.name}, files received in the last ${since}${mappingFile ? ` through ${mappingFile}` : ''} (nothing written):`,
    ];
    for (const f of files) {
      lines.push(
        `${f.file}: ${f.diff.length === 0 ? 'same' : 'differs'} (${f.loaded} order(s) loaded then, ${f.orders} now)`,
      );
      for (const d of f.diff) lines.push(`  ${d}`);
    }
    const differ = files.filter((f) => f.diff.length > 0).length;
    lines.push(
      files.length === 0
        ? `no inbound file from ${partner.name} in the last ${since}`
        : `${differ} of ${files.length} file(s) differ`,
    );
    out(lines);
    return EXIT.ok;
  }
  if (action === 'reprocess') {
    const done = await reprocessHeld(app, partner);
    const loaded = done.filter((d) => d.orderNo !== null);
    out([
      ...done.map((d) =>
        d.orderNo
          ? `held order ${d.id} (PO ${d.customerPo ?? '?'}): loaded as ${d.orderNo}`
          : `held order ${d.id} (PO ${d.customerPo ?? '?'}): still held: ${d.problems[0] ?? ''}`,
      ),
      `${loaded.length} of ${done.length} held order(s) loaded`,
    ]);
    return EXIT.ok;
  }
  const results = await testPartner(app, partner, { update: opts.update === true });
  if (results.length === 0) {
    throw new UserError(
      `no samples for ${partner.name}: put the partner's files (*.edi) in ${samplesDir('.', partner.name)}`,
    );
  }
  const lines: string[] = [];
  for (const r of results) {
    lines.push(
      `${r.sample}: ${r.outcome}${r.outcome === 'missing' ? ' (run with --update to write the expected files)' : ''}`,
    );
    for (const d of r.diff) lines.push(`  ${d}`);
  }
  const bad = results.filter((r) => r.outcome === 'differs' || r.outcome === 'missing').length;
  lines.push(
    bad === 0 ? `${results.length} sample(s) as expected` : `${bad} of ${results.length} sample(s) differ`,
  );
  out(lines);
  return bad === 0 ? EXIT.ok : EXIT.failed;
}
