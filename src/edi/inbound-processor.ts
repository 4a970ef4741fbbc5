/**
 * One inbound file's events, one method per splitter event (the caller owns the transaction):
 *
 *   isa ─ findPartner, receive_interchange (duplicate?), SAVEPOINT interchange
 *   gs  ─ SAVEPOINT group
 *   transaction ─ FA: apply the partner's 997/999 to our outbound interchange
 *               └ 850: kept until 500 are waiting (or the group ends), then set-wise:
 *                      map each (structure + elements) ─ check all (business rules, two queries) ─
 *                      each by business_errors: reject (997 R) | hold (edi.held_orders) |
 *                      acknowledge (load good lines, 855) ─ store all (one INSERT … SELECT per table)
 *   ge  ─ the group's last 850s as above; ROLLBACK TO the group when it has envelope problems
 *   iea ─ ROLLBACK TO the interchange when it has problems; reused ISA13 with other content → held;
 *         record groups and sets as judged (judgeGroup)
 *
 * The savepoints keep the database equal to the ack: exactly the sets it accepts are loaded.
 */
import { createHash, type Hash } from 'node:crypto';
import type pg from 'pg';
import { describeError } from '../errors.js';
import { judgeGroup, type GroupVerdict } from '../x12/ack.js';
import { problem, X12Error, type X12Problem } from '../x12/errors.js';
import { receiveInterchange } from './interchanges.js';
import {
  describeField,
  mapTransaction,
  type InboundMapping,
  type MappedTransaction,
} from '../x12/mapping.js';
import { findPartner } from '../x12/partner.js';
import { applyFunctionalAck, applyTa1, readFunctionalAck, TA1_NOTES } from './reconcile.js';
import type {
  GeEvent,
  GroupHeader,
  IeaEvent,
  InterchangeHeader,
  Ta1Event,
  TransactionSet,
} from '../x12/types.js';
import { holdOrder } from './exceptions.js';
import type { InboundContext, InboundFileResult, InboundOptions } from './inbound-types.js';
import { insertPurchaseOrder, insertPurchaseOrders, type OrderToInsert } from './orders.js';
import { checkPurchaseOrder, checkPurchaseOrders, type CheckedOrder } from './po-check.js';
/** Per ST02: what the ack and the ledger need about an 850. */
export interface DocState {
  po: string | null;
  orderNo: string | null;
}

/** A functional group being read. */
export interface GroupState {
  ge: GeEvent | null;
  fa: boolean;
  docs: Map<string, DocState>;
}

/** An interchange being read. */
export interface InterchangeState {
  header: InterchangeHeader;
  id: number;
  duplicate: boolean;
  /** Received before, even when judged `fresh` (its row stays a duplicate's: the first one holds the ISA13). */
  receivedBefore: boolean;
  /** Sets of this interchange may be loaded (not a duplicate, usage accepted). */
  loadable: boolean;
  /** Problems of ours about the interchange (usage, reused ISA13), on top of the splitter's. */
  extra: X12Problem[];
  /** Every problem that rejects the whole interchange; known at its IEA. */
  problems: X12Problem[];
  groups: GroupState[];
  closed: boolean;
  /** SHA-256 of GS … GE, to tell a re-delivery from a reused ISA13. */
  content: Hash;
  /** TA1s of the partner read in this interchange. */
  ta1s: number;
}

/** A purchase order to answer with an 855 (business_errors: acknowledge). */
export interface PoAckRequest {
  set: TransactionSet;
  mapped: MappedTransaction;
  checked: CheckedOrder;
}

/** Thrown in an `acks` run when the file holds more than acks. */
export class NotAnAckFile extends Error {}

const usageName = (u: string): string => (u === 'P' ? 'production' : u === 'T' ? 'test' : 'information');

/** A database error about the data (class 22 data exception, 23 integrity): the set is rejected, not the file. */
function isDataError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(22|23)/.test(code);
}

/** The mapping's product id fields as messages quote them. */
function productFieldsOf(mapping: InboundMapping): string {
  const fields = (mapping.lines?.fields ?? []).filter((f) => f.kind === 'product');
  return fields.map((f) => `${f.name} (${describeField(f)})`).join(' and ') || 'no product id field';
}

const MAX_PROBLEMS = 200;
const MAX_ORDERS = 100;
/** 850s checked and stored together (two queries and three inserts per batch, not per set). */
const SET_BATCH = 500;

/** See the module comment. */
export class InboundProcessor {
  readonly interchanges: InterchangeState[] = [];
  readonly poAcks: PoAckRequest[] = [];
  /** Segments the mapping did not read, with how many sets carried them. */
  readonly unused = new Map<string, number>();
  private ix: InterchangeState | null = null;
  private group: GroupState | null = null;
  sets = 0;
  /** 850s of the current group read but not yet checked and stored (see {@link purchaseOrders}). */
  private pendingSets: TransactionSet[] = [];
  /** Checked orders waiting to be stored together. */
  private toStore: {
    set: TransactionSet;
    mapped: MappedTransaction;
    checked: CheckedOrder;
    doc: DocState;
  }[] = [];
  /** `onOrder` events waiting for their batch to be stored, by the set's place in the batch. */
  private events: ((() => void) | undefined)[] = [];
  /** The place in the batch of the set being handled. */
  private slot = 0;
  /**
   * The last batch's store, running on the server while the client splits and maps the next
   * batch: its outcome (`{ err }` when it failed) and the `onOrder` events waiting for it. Every
   * step that talks to the database first waits for it ({@link settle}), so statements keep the
   * order one batch at a time gave them.
   */
  private storing: { done: Promise<{ err: unknown } | null>; events: ((() => void) | undefined)[] } | null =
    null;

  constructor(
    private readonly ctx: InboundContext,
    private readonly client: pg.ClientBase,
    private readonly result: InboundFileResult,
    private readonly opts: InboundOptions,
  ) {}

  /** Counts a problem message into the result (the first 200 are kept). */
  note(message: string): void {
    this.result.problemCount++;
    if (this.result.problems.length < MAX_PROBLEMS) this.result.problems.push(message);
  }

  /** A business problem handled as the profile says (held or acknowledged): not an error of the file. */
  notice(message: string): void {
    if (this.result.notices.length < MAX_PROBLEMS) this.result.notices.push(message);
  }

  /**
   * Tells `onOrder` about an order, in file order: the events of a batch wait until its orders are
   * stored (a `loaded` one is told only if its order was stored).
   */
  private emit(
    set: TransactionSet,
    mapped: MappedTransaction,
    checked: CheckedOrder | null,
    outcome: 'loaded' | 'held' | 'rejected',
    doc?: DocState,
  ): void {
    if (!this.opts.onOrder) return;
    this.events[this.slot] = () => {
      const told = outcome !== 'loaded' || this.opts.storeOrders === false || doc?.orderNo;
      if (told) this.emitNow(set, mapped, checked, outcome);
    };
  }

  private emitNow(
    set: TransactionSet,
    mapped: MappedTransaction,
    checked: CheckedOrder | null,
    outcome: 'loaded' | 'held' | 'rejected',
  ): void {
    this.opts.onOrder!({
      st02: set.controlNumber,
      header: mapped.header,
      lines: (checked?.lines ?? [])
        .filter((l) => l !== null)
        .map((l) => ({
          sku: l.sku,
          quantity: l.quantity,
          uom: l.uom,
          unitPrice: l.unitPrice,
          customerLineRef: l.customerLineRef,
        })),
      outcome,
    });
  }

  private q(sql: string): Promise<pg.QueryResult> {
    return this.client.query(sql);
  }

  /**
   * Waits for the batch being stored (see {@link storing}), rethrows its error, then tells its
   * orders to `onOrder`. Called before any other statement of the file's transaction.
   */
  async settle(): Promise<void> {
    const s = this.storing;
    if (s === null) return;
    this.storing = null;
    const failed = await s.done;
    if (failed !== null) throw failed.err;
    for (const e of s.events) e?.();
  }

  /** Waits for the batch being stored, whatever its outcome, before the transaction is rolled back. */
  async abandon(): Promise<void> {
    const s = this.storing;
    this.storing = null;
    if (s !== null) await s.done;
  }

  private hash(elements: readonly string[]): void {
    this.ix?.content.update(`${elements.join('\x1f')}\x1e`);
  }

  async isa(h: InterchangeHeader): Promise<void> {
    const partner = this.ctx.partner;
    // Throws UNKNOWN_PARTNER: a file from anyone else, or not addressed to us, is not read.
    findPartner({ [partner.name]: partner.x12 }, h);
    const usageOk = (partner.accept_usage as string[]).includes(usageName(h.usage));
    await this.settle();
    const receipt = await receiveInterchange(this.client, {
      partner: partner.name,
      isa13: h.controlNumber,
      fileName: this.result.file,
      sha256: this.result.sha256,
      usage: h.usage,
      groupCount: 0,
      setCount: 0,
    });
    const extra: X12Problem[] = usageOk
      ? []
      : [
          problem({
            code: 'USAGE_NOT_ACCEPTED',
            level: 'interchange',
            file: this.result.file,
            segment: h.segment.ordinal,
            segmentId: 'ISA',
            element: 15,
            value: h.usage,
            text: `ISA15 is "${h.usage}" (${usageName(h.usage)}), but ${partner.file} accepts ${partner.accept_usage.join(' and ')} interchanges only (accept_usage)`,
            ack: { ta1: '020' },
          }),
        ];
    const duplicate = receipt.duplicate && !this.opts.fresh;
    this.ix = {
      header: h,
      id: receipt.id,
      duplicate,
      receivedBefore: receipt.duplicate,
      loadable: !duplicate && usageOk,
      extra,
      problems: [],
      groups: [],
      closed: false,
      content: createHash('sha256'),
      ta1s: 0,
    };
    this.interchanges.push(this.ix);
    await this.q('SAVEPOINT edi_interchange');
  }

  async gs(g: GroupHeader): Promise<void> {
    const fa = g.functionalId === 'FA';
    if (this.opts.acksOnly && !fa) throw new NotAnAckFile();
    await this.settle();
    this.group = { ge: null, fa, docs: new Map() };
    this.ix!.groups.push(this.group);
    this.hash(g.segment.elements);
    await this.q('SAVEPOINT edi_group');
  }

  async transaction(set: TransactionSet): Promise<void> {
    // The same bytes as hashing each segment, in one update a set (a call per segment cost more
    // than the digest itself).
    let text = '';
    for (const s of set.segments) text += `${s.elements.join('\x1f')}\x1e`;
    this.ix?.content.update(text);
    if (this.group!.fa) await this.functionalAck(set);
    else {
      this.pendingSets.push(set);
      if (this.pendingSets.length >= SET_BATCH) await this.purchaseOrders();
    }
    this.opts.onSets?.(++this.sets);
  }

  async ge(ev: GeEvent): Promise<void> {
    // The group's last 850s are stored before its savepoint is kept or undone.
    await this.purchaseOrders();
    await this.settle();
    this.group!.ge = ev;
    if (ev.trailer) this.hash(ev.trailer.elements);
    if (ev.problems.length > 0) await this.q('ROLLBACK TO SAVEPOINT edi_group');
    await this.q('RELEASE SAVEPOINT edi_group');
    this.group = null;
  }

  /**
   * A partner's TA1 inside its interchange: reconciled with our outbound interchange of that ISA13
   * (TA104/TA105 recorded; R marks it rejected by the partner). Part of the interchange's content,
   * so a reused ISA13 with another TA1 is told from a re-delivery.
   */
  async ta1(ev: Ta1Event): Promise<void> {
    this.hash(ev.segment.elements);
    this.ix!.ta1s++;
    if (!this.ix!.loadable) return;
    await this.settle();
    const partner = this.ctx.partner;
    const applied = await applyTa1(this.client, partner.name, ev);
    this.result.ta1sApplied.push({
      isa13: ev.controlNumber,
      code: ev.code,
      note: ev.note,
      interchangeId: applied.interchangeId,
    });
    if (applied.interchangeId === null) {
      this.note(
        `${this.result.file}, segment ${ev.segment.ordinal} (TA1): acknowledges our interchange ${ev.controlNumber}, which we never sent to ${partner.name}; ignored`,
      );
    } else if (ev.code === 'R') {
      this.notice(
        `${partner.name} rejected our interchange ${ev.controlNumber} (TA1 R ${ev.note}: ${TA1_NOTES[ev.note] ?? 'unknown note code'})`,
      );
    }
  }

  /** A partner's 997/999 for one of our groups. */
  private async functionalAck(set: TransactionSet): Promise<void> {
    if (set.problems.length > 0) return;
    if (set.id !== '997' && set.id !== '999') {
      set.problems.push(
        problem({
          code: 'SET_NOT_SUPPORTED',
          level: 'transaction',
          file: this.result.file,
          segment: set.segments[0]!.ordinal,
          segmentId: 'ST',
          text: `transaction set ${set.id} in a functional group FA; expected 997 or 999`,
          ack: { ak5: '6' },
        }),
      );
      return;
    }
    if (!this.ix!.loadable) return;
    await this.settle();
    const partner = this.ctx.partner;
    try {
      const ack = readFunctionalAck(set);
      const interchangeId = await applyFunctionalAck(this.client, partner.name, ack);
      this.result.acksApplied.push({
        functionalId: ack.group.functionalId,
        gs06: ack.group.controlNumber,
        code: ack.group.code,
        interchangeId,
      });
      if (interchangeId === null) {
        this.note(
          `${this.result.file}, ${set.id} ${set.controlNumber}: acknowledges our group ${ack.group.functionalId} ${ack.group.controlNumber}, which we never sent to ${partner.name}; ignored`,
        );
      }
    } catch (err) {
      if (!(err instanceof X12Error)) throw err;
      set.problems.push(err.problem);
    }
  }

  /**
   * The 850s read so far, set-wise: each is mapped, then all are checked against the ERP with two
   * queries, then each goes as the profile says (rejected, held, acknowledged), and the ones to
   * store are stored with one statement per table ({@link storeOrders}). Per set the outcome is
   * what checking and storing them one at a time gave: a PO number repeated in the batch is checked
   * again once the earlier order is stored, and a data error undoes the batch and stores its
   * orders one by one, each rejected alone (STORE_FAILED).
   *
   * The batch is mapped while the previous one is still being stored (the server inserts while
   * the client parses), checked once that store is done, and its own store is left running
   * ({@link storing}) for the caller to read on.
   */
  private async purchaseOrders(): Promise<void> {
    if (this.pendingSets.length === 0) return;
    const sets = this.pendingSets;
    this.pendingSets = [];
    const { partner, mapping } = this.ctx;
    const x = this.ix!;
    const mappedSets: { set: TransactionSet; mapped: MappedTransaction; doc: DocState; slot: number }[] = [];
    for (let i = 0; i < sets.length; i++) {
      this.slot = i;
      const m = this.mapOrder(sets[i]!);
      if (m !== null) mappedSets.push({ ...m, slot: i });
    }
    // The previous batch's orders are in before this one's PO numbers are looked for.
    await this.settle();
    if (mappedSets.length > 0) {
      const options = {
        // A re-delivered interchange already loaded its POs; it is judged as it was the first time.
        checkDuplicatePo: x.loadable && !this.opts.fresh,
        productFields: productFieldsOf(mapping!),
      };
      const checked = await checkPurchaseOrders(this.client, partner.customer_no, mappedSets, options);
      const storing = new Set<string>();
      for (let i = 0; i < mappedSets.length; i++) {
        const { set, mapped, doc, slot } = mappedSets[i]!;
        this.slot = slot;
        let c = checked[i]!;
        const po = mapped.header.po_number ?? '';
        if (options.checkDuplicatePo && po !== '' && storing.has(po)) {
          // The same PO earlier in the batch: store it, then look again, as one at a time would.
          await this.storeOrders();
          storing.clear();
          c = await checkPurchaseOrder(this.client, partner.customer_no, set, mapped, options);
        }
        if (await this.judgeOrder(set, mapped, c, doc)) {
          this.toStore.push({ set, mapped, checked: c, doc });
          storing.add(po);
        }
      }
    }
    const events = this.events;
    this.events = [];
    // Handled at once, so a failure is never an unhandled rejection while the next batch is read.
    const done = this.storeOrders().then(
      () => null,
      (err: unknown) => ({ err }),
    );
    this.storing = { done, events };
  }

  /** An 850's structure and mapping: syntax problems reject it; null unless it is to be checked. */
  private mapOrder(
    set: TransactionSet,
  ): { set: TransactionSet; mapped: MappedTransaction; doc: DocState } | null {
    const { partner, mapping } = this.ctx;
    const doc: DocState = { po: null, orderNo: null };
    this.group!.docs.set(set.controlNumber, doc);
    if (set.id !== '850' || mapping === null || !partner.x12.inbound.includes(set.id)) {
      set.problems.push(
        problem({
          code: 'SET_NOT_SUPPORTED',
          level: 'transaction',
          file: this.result.file,
          segment: set.segments[0]!.ordinal,
          segmentId: 'ST',
          positionInSet: 1,
          element: 1,
          value: set.id,
          text: `transaction set ${set.id} is not loaded from ${partner.name}; ${partner.file} lists inbound ${partner.x12.inbound.join(', ') || '(none)'} and erp loads 850 purchase orders`,
          ack: { ak5: '1' },
        }),
      );
      return null;
    }
    // A set the envelope already rejects is not mapped: its codes say why.
    if (set.problems.length > 0) return null;
    const mapped = mapTransaction(mapping, set);
    doc.po = mapped.header.po_number ?? null;
    for (const u of mapped.unused) this.unused.set(u, (this.unused.get(u) ?? 0) + 1);
    const syntax = mapped.problems.filter((p) => !p.business);
    if (syntax.length > 0) {
      set.problems.push(...syntax);
      this.emit(set, mapped, null, 'rejected');
      return null;
    }
    return { set, mapped, doc };
  }

  /** Business problems go as the partner profile says; true when the order is to be stored. */
  private async judgeOrder(
    set: TransactionSet,
    mapped: MappedTransaction,
    checked: CheckedOrder,
    doc: DocState,
  ): Promise<boolean> {
    const { partner } = this.ctx;
    const x = this.ix!;
    const mappedBusiness = mapped.problems.filter((p) => p.business);
    const business = [...mappedBusiness, ...checked.problems];
    const policy = business.length === 0 ? 'clean' : partner.business_errors;
    if (policy === 'reject') {
      set.problems.push(...business);
      this.emit(set, mapped, checked, 'rejected');
      return false;
    }
    if (!x.loadable) return false;
    if (policy === 'hold') {
      await holdOrder(
        this.client,
        { partner: partner.name, interchangeId: x.id, fileName: this.result.file },
        set,
        doc.po,
        business,
      );
      for (const p of business) this.notice(`held for an operator (erp edi exceptions): ${p.message}`);
      this.emit(set, mapped, checked, 'held');
      return false;
    }
    if (policy === 'acknowledge') {
      // A mapping-required value missing on a line rejects that line; anywhere else, the order.
      for (const p of mappedBusiness) {
        const i = mapped.lineAnchors.findIndex(
          (a, n) =>
            p.positionInSet !== undefined &&
            p.positionInSet >= a.position &&
            p.positionInSet < (mapped.lineAnchors[n + 1]?.position ?? Infinity),
        );
        if (i >= 0) checked.lines[i] = null;
        else checked.headerRejected = true;
      }
      this.poAcks.push({ set, mapped, checked });
      for (const p of business) this.notice(`acknowledged in the 855: ${p.message}`);
      if (checked.headerRejected || checked.lines.every((l) => l === null)) {
        this.emit(set, mapped, checked, 'rejected');
        return false;
      }
    }
    this.emit(set, mapped, checked, 'loaded', doc);
    return true;
  }

  /** Stores the checked orders waiting in {@link toStore}: together, or one by one after a data error. */
  private async storeOrders(): Promise<void> {
    if (this.toStore.length === 0) return;
    const orders = this.toStore;
    this.toStore = [];
    // A replay of files whose orders exist already: checked and told as loaded, stored nowhere.
    if (this.opts.storeOrders === false) return;
    const { partner } = this.ctx;
    await this.q('SAVEPOINT edi_sets');
    try {
      const numbers = await insertPurchaseOrders(
        this.client,
        {
          partner: partner.name,
          customerNo: partner.customer_no,
          interchangeId: this.ix!.id,
          fileName: this.result.file,
        },
        orders.map(({ set, mapped, checked }) => keptLines(set, mapped, checked)),
      );
      await this.q('RELEASE SAVEPOINT edi_sets');
      orders.forEach((o, k) => (o.doc.orderNo = numbers[k]!));
    } catch (err) {
      if (!isDataError(err)) throw err;
      await this.q('ROLLBACK TO SAVEPOINT edi_sets');
      await this.q('RELEASE SAVEPOINT edi_sets');
      for (const o of orders) await this.insert(o.set, o.mapped, o.checked, o.doc);
    }
  }

  /** Stores one order in a savepoint of its own; a data error rejects the set (STORE_FAILED), not the file. */
  private async insert(
    set: TransactionSet,
    mapped: MappedTransaction,
    checked: CheckedOrder,
    doc: DocState,
  ): Promise<void> {
    const { partner } = this.ctx;
    const o = keptLines(set, mapped, checked);
    await this.q('SAVEPOINT edi_set');
    try {
      doc.orderNo = await insertPurchaseOrder(
        this.client,
        {
          partner: partner.name,
          customerNo: partner.customer_no,
          interchangeId: this.ix!.id,
          fileName: this.result.file,
        },
        set,
        o.mapped,
        o.lines,
      );
      await this.q('RELEASE SAVEPOINT edi_set');
    } catch (err) {
      if (!isDataError(err)) throw err;
      await this.q('ROLLBACK TO SAVEPOINT edi_set');
      await this.q('RELEASE SAVEPOINT edi_set');
      set.problems.push(
        problem({
          code: 'STORE_FAILED',
          level: 'transaction',
          file: this.result.file,
          segment: set.segments[0]!.ordinal,
          segmentId: 'ST',
          text: `transaction set 850 ${set.controlNumber} (PO ${doc.po ?? '?'}) could not be stored: ${describeError(err)}`,
          ack: { ak5: '5' },
        }),
      );
    }
  }

  /** At IEA: roll back what the interchange's problems reject, record groups and sets as judged. */
  async iea(ev: IeaEvent): Promise<void> {
    await this.purchaseOrders();
    await this.settle();
    const x = this.ix!;
    const { partner } = this.ctx;
    const content = x.content.digest('hex');
    if (x.duplicate) await this.reusedControlNumber(x, content);
    x.problems = [...ev.problems, ...x.extra];
    if (x.problems.length > 0) await this.q('ROLLBACK TO SAVEPOINT edi_interchange');
    await this.q('RELEASE SAVEPOINT edi_interchange');
    for (const p of x.problems) this.note(p.message);
    let accepted = 0;
    let received = 0;
    let setCount = 0;
    let fa = 0;
    const held = x.extra.some((p) => p.code === 'ISA13_REUSED');
    for (const g of x.groups) {
      const verdict: GroupVerdict = judgeGroup(g.ge!, x.problems);
      for (const p of g.ge!.problems) this.note(p.message);
      for (const sv of verdict.sets) for (const p of sv.set.problems) this.note(p.message);
      setCount += verdict.received;
      if (g.fa) {
        fa += verdict.accepted;
        continue;
      }
      accepted += verdict.accepted;
      received += verdict.received;
      if (!x.duplicate || held) {
        this.result.setsAccepted += verdict.accepted;
        this.result.setsRejected += verdict.received - verdict.accepted;
      }
      if (x.loadable) {
        for (const sv of verdict.sets) {
          const orderNo = sv.accepted ? g.docs.get(sv.set.controlNumber)?.orderNo : null;
          if (!orderNo) continue;
          this.result.ordersLoaded++;
          if (this.result.orders.length < MAX_ORDERS) this.result.orders.push(orderNo);
        }
      }
      if (!x.duplicate) await recordGroup(this.client, partner.name, x.id, g, verdict);
    }
    const status = held
      ? 'held'
      : x.duplicate
        ? 'duplicate'
        : accepted > 0 || fa > 0 || (x.ta1s > 0 && x.problems.length === 0)
          ? 'loaded'
          : 'rejected';
    const message =
      x.duplicate && !held
        ? undefined
        : x.problems.length > 0
          ? x.problems[0]!.message
          : received > accepted
            ? `${received - accepted} of ${received} transaction sets rejected`
            : null;
    await this.client.query(
      `UPDATE edi.interchanges SET status = $2, group_count = $3, set_count = $4,
              message = CASE WHEN $5::boolean THEN message ELSE $6 END, content_sha256 = $7, updated_at = now()
        WHERE id = $1`,
      [
        x.id,
        x.receivedBefore ? 'duplicate' : status,
        x.groups.length,
        setCount,
        message === undefined,
        message ?? null,
        content,
      ],
    );
    this.result.interchanges.push({ isa13: x.header.controlNumber, status, usage: x.header.usage });
    x.closed = true;
    this.ix = null;
  }

  /**
   * A re-delivered ISA13: the same content is a duplicate (acknowledged again as before); other
   * content under the same ISA13 is held for an operator and rejected with TA1 note code 025.
   */
  private async reusedControlNumber(x: InterchangeState, content: string): Promise<void> {
    const { rows } = await this.client.query<{ content_sha256: string | null; file_name: string }>(
      `SELECT content_sha256, file_name FROM edi.interchanges
        WHERE partner = $1 AND direction = 'in' AND isa13 = $2 AND status NOT IN ('duplicate', 'rejected', 'held')`,
      [this.ctx.partner.name, Number(x.header.controlNumber)],
    );
    const first = rows[0];
    if (!first || first.content_sha256 === null || first.content_sha256 === content) return;
    x.extra.push(
      problem({
        code: 'ISA13_REUSED',
        level: 'interchange',
        file: this.result.file,
        segment: x.header.segment.ordinal,
        segmentId: 'ISA',
        element: 13,
        value: x.header.controlNumber,
        text: `ISA13 ${x.header.controlNumber} was already received from ${this.ctx.partner.name} in ${first.file_name} with different content; this interchange is held for an operator and nothing of it is loaded`,
        ack: { ta1: '025' },
      }),
    );
  }
}

/** An order as stored: the lines the check kept, and the mapped lines that go with them. */
function keptLines(set: TransactionSet, mapped: MappedTransaction, checked: CheckedOrder): OrderToInsert {
  return {
    set,
    mapped: { ...mapped, lines: mapped.lines.filter((_, i) => checked.lines[i] !== null) },
    lines: checked.lines.filter((l) => l !== null),
  };
}

/** Records an inbound group and its sets as the ack judges them. */
async function recordGroup(
  client: pg.ClientBase,
  partner: string,
  interchangeId: number,
  g: GroupState,
  verdict: GroupVerdict,
): Promise<void> {
  const h = g.ge!.group;
  // A group whose GS06 is unusable or repeated cannot be keyed; its problems are on the interchange.
  if (!/^\d{1,9}$/.test(h.controlNumber)) return;
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO edi.groups (interchange_id, partner, direction, functional_id, gs06, version, set_count, status, ack_code)
     VALUES ($1, $2, 'in', $3, $4, $5, $6, $7, $8)
     ON CONFLICT (interchange_id, gs06) DO NOTHING RETURNING id`,
    [
      interchangeId,
      partner,
      h.functionalId,
      Number(h.controlNumber),
      h.version,
      verdict.received,
      verdict.accepted > 0 ? 'loaded' : 'rejected',
      g.fa ? null : verdict.code,
    ],
  );
  if (rows.length === 0) return;
  await client.query(
    `INSERT INTO edi.transaction_sets (group_id, st01, st02, document_key, status, ack_codes)
     SELECT $1, s.st01, s.st02, s.key, s.status, string_to_array(s.codes, ',')
       FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) AS s (st01, st02, key, status, codes)
     ON CONFLICT (group_id, st02) DO NOTHING`,
    [
      rows[0]!.id,
      verdict.sets.map((s) => s.set.id),
      verdict.sets.map((s) => s.set.controlNumber),
      verdict.sets.map((s) => g.docs.get(s.set.controlNumber)?.po ?? null),
      verdict.sets.map((s) => (s.accepted ? 'loaded' : 'rejected')),
      verdict.sets.map((s) => s.codes.join(',')),
    ],
  );
}
