import { X12Parser, type X12Transaction } from 'node-x12';
import type { TransactionSet } from '../../src/x12/types.js';

/**
 * Hands one transaction set to node-x12's in-memory parser (strict mode), for callers who want
 * its object model or query engine. The set is wrapped in its own ISA/GS/GE/IEA with the
 * interchange's delimiters; only this set is held, never the file.
 */
export function parseSetWithNodeX12(set: TransactionSet): X12Transaction {
  const x = set.group.interchange;
  const d = x.delimiters;
  const seg = (elements: readonly string[]): string => elements.join(d.element) + d.segment;
  let text = seg(x.segment.elements) + seg(set.group.segment.elements);
  for (const s of set.segments) text += seg(s.elements);
  text += seg(['GE', '1', set.group.controlNumber]) + seg(['IEA', '1', x.controlNumber]);
  // A parser keeps state between parse() calls, so each set gets its own.
  const parsed = new X12Parser(true).parse(text);
  if (!('functionalGroups' in parsed)) throw new Error('node-x12 returned several interchanges for one set');
  return parsed.functionalGroups[0]!.transactions[0]!;
}
