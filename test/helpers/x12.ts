import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadYamlFile } from '../../src/config/yaml.js';
import { x12ProfileSchema, type X12Profile } from '../../src/x12/partner.js';
import { splitX12, type SplitOptions } from '../../src/x12/splitter.js';
import type { X12Event } from '../../src/x12/types.js';

export const FIXTURES = path.resolve('fixtures/edi');
export const HOME = path.resolve('.');

/** Yields `data` in pieces of `size` bytes (1 = every byte its own chunk). */
export async function* chunked(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** All events of a fixture, read in chunks of `size` bytes (whole file when omitted). */
export async function fixtureEvents(
  name: string,
  size?: number,
  options: SplitOptions = {},
): Promise<X12Event[]> {
  const data = await readFile(path.join(FIXTURES, name));
  const out: X12Event[] = [];
  for await (const ev of splitX12(chunked(data, size ?? data.length), { file: name, ...options }))
    out.push(ev);
  return out;
}

/** Events as plain data, to compare runs. */
export function describeEvents(events: X12Event[]): unknown[] {
  return events.map((ev) => {
    switch (ev.kind) {
      case 'isa':
        return [
          'isa',
          ev.interchange.controlNumber,
          ev.interchange.delimiters,
          ev.interchange.segment.elements,
        ];
      case 'gs':
        return ['gs', ev.group.segment.elements, ev.group.segment.ordinal];
      case 'transaction':
        return [
          'st',
          ev.set.segments.map((s) => [s.ordinal, ...s.elements]),
          ev.set.problems.map((p) => p.code),
        ];
      case 'ge':
        return ['ge', ev.trailer?.elements ?? null, ev.sets.length, ev.problems.map((p) => p.code)];
      case 'iea':
        return ['iea', ev.trailer?.elements ?? null, ev.groupCount, ev.problems.map((p) => p.code)];
    }
  });
}

/** A partner profile from fixtures/edi/partners. */
export async function profile(name: 'partner-a' | 'partner-b'): Promise<X12Profile> {
  return loadYamlFile(path.join(FIXTURES, 'partners', `${name}.yaml`), x12ProfileSchema);
}
