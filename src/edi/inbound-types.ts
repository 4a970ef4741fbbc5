/**
 * The shapes of an inbound EDI run: its options, what it prepares once per partner, and each
 * file's outcome. Below inbound-file.ts, inbound-processor.ts and inbound-acks.ts, which all use them.
 */
import type { AppContext } from '../app.js';
import type { Partner } from '../partners/profile.js';
import type { InboundMapping } from '../x12/mapping.js';
import type { ControlNumberSource } from './transport.js';

/** What happened to one inbound file. */
export type InboundFileStatus =
  /** Every transaction set accepted and loaded (or every ack applied): archived. */
  | 'loaded'
  /** Every interchange was received before: acknowledged again, nothing loaded, archived. */
  | 'duplicate'
  /** Some or all sets rejected (the ack says which): accepted ones loaded, file in the error dir. */
  | 'rejected'
  /** Unreadable (not X12, unknown partner, a cap exceeded…): nothing loaded, file in the error dir. */
  | 'failed'
  /** Not an acknowledgment file (`acks` runs only): left in the inbox for the inbound run. */
  | 'skipped';

/** An acknowledgment of ours that a partner's 997/999 reconciled. */
export interface AppliedAck {
  functionalId: string;
  gs06: string;
  code: string;
  /** Our outbound interchange it updated, or null when we never sent that group. */
  interchangeId: number | null;
}

/** A partner's TA1 that was reconciled with our outbound interchange. */
export interface AppliedPartnerTa1 {
  /** TA101: our ISA13. */
  isa13: string;
  code: 'A' | 'E' | 'R';
  note: string;
  /** Our outbound interchange it updated, or null when we never sent that ISA13. */
  interchangeId: number | null;
}

/** The outcome of one inbound file. */
export interface InboundFileResult {
  file: string;
  size: number;
  sha256: string;
  status: InboundFileStatus;
  interchanges: { isa13: string; status: 'loaded' | 'rejected' | 'duplicate' | 'held'; usage: string }[];
  setsAccepted: number;
  setsRejected: number;
  /** Sales orders created (order numbers, the first 100). */
  orders: string[];
  ordersLoaded: number;
  acksApplied: AppliedAck[];
  /** The partner's TA1s about our interchanges, as reconciled. */
  ta1sApplied: AppliedPartnerTa1[];
  /** Our 997/999 for the file (null when it has no group to acknowledge). */
  ack: { type: '997' | '999'; name: string; text: string } | null;
  /** Our TA1s (ISA14 = 1, or a bad envelope), apart from the 997/999, or null. */
  ta1: { name: string; text: string } | null;
  /** Remote path of the uploaded TA1s. */
  ta1Path: string | null;
  /** Our 855s (business_errors: acknowledge), or null. */
  poAck: { name: string; text: string } | null;
  /** Segments present that the mapping does not read: `first` when never seen from this partner before. */
  unusedSegments: { segment: string; sets: number; first: boolean; timesSeen: number }[];
  /** Remote path of the uploaded 855s. */
  poAckPath: string | null;
  /** Business problems held or acknowledged as the profile says (not errors of the file), the first 200. */
  notices: string[];
  /** Problem messages, the first 200. */
  problems: string[];
  problemCount: number;
  /** Why the file failed (status `failed`). */
  error: string | null;
  /** Remote path of the uploaded ack. */
  ackPath: string | null;
  /** Where the file went: archive or error dir. */
  movedTo: string | null;
}

/** Options of an inbound run. */
export interface InboundOptions {
  /** Read, check and map everything in a transaction that is rolled back; upload and move nothing. */
  dryRun: boolean;
  signal?: AbortSignal;
  /** Reconcile partners' 997/999s only; leave files holding anything else in the inbox. */
  acksOnly?: boolean;
  /** Where `_env` settings of the partner are read. @defaultValue process.env */
  env?: NodeJS.ProcessEnv;
  /** Called with the number of transaction sets read so far. */
  onSets?: (sets: number) => void;
  /** ISA09/GS04 of the acks. @defaultValue now */
  now?: Date;
  /** The run, whose temporary directory (ERP_DATA_DIR/tmp/<run>) holds the downloads. */
  runId?: number | null;
  /**
   * Judge the file as if nothing had been received before: no interchange is a duplicate and no
   * PO number was loaded (the partner test harness and replays).
   */
  fresh?: boolean;
  /**
   * Store the orders (default); false: map and check them, call `onOrder` with outcome `loaded`,
   * insert nothing (a replay of files whose orders exist already).
   */
  storeOrders?: boolean;
  /** Called with each purchase order as it would be stored (the partner test harness collects them). */
  onOrder?: (order: MappedOrder) => void;
}

/** A purchase order as mapped and checked, for {@link InboundOptions.onOrder}. */
export interface MappedOrder {
  st02: string;
  header: Record<string, string | null>;
  lines: { sku: string; quantity: string; uom: string; unitPrice: string; customerLineRef: string | null }[];
  /** What happened to it: loaded, held, or rejected (its problems are in the file's result). */
  outcome: 'loaded' | 'held' | 'rejected';
}

/** What an inbound run needs about the partner, prepared once. */
export interface InboundContext {
  app: AppContext;
  partner: Partner;
  /** The 850 mapping, or null when the partner sends no 850. */
  mapping: InboundMapping | null;
  /** Control numbers of the acks, shared by the run's files (so a dry run shows the numbers each would get). */
  control: ControlNumberSource;
}
