/**
 * X12 EDI: streaming splitter, envelope validation, 997/999, 810/856 writers, mappings, partner
 * profiles, control numbers and acknowledgment reconciliation. See docs/x12.md.
 */
export * from './ack.js';
export * from '../edi/control-numbers.js';
export * from './delimiters.js';
export * from './envelope.js';
export * from './errors.js';
export * from '../edi/interchanges.js';
export * from './mapping.js';
export * from './node-x12.js';
export * from './outbound.js';
export * from './partner.js';
export * from '../edi/reconcile.js';
export * from './splitter.js';
export * from './types.js';
export * from './writer.js';
