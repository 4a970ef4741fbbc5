import { UserError } from '../errors.js';

/**
 * NACHA (ACH) file records for a PPD credit batch: the file a US bank takes for direct deposit.
 *
 *   1 file header ─ 5 batch header ─ 6 entry … 6 entry [─ 6 offset debit] ─ 8 batch control ─ 9 file control ─ 9999… fill
 *
 * A balanced file (some banks and third-party senders ask for one) ends the batch with an offsetting
 * debit to the company's own account for the total of the credits: service class 200 (mixed) instead
 * of 220 (credits only), debit and credit totals equal.
 *
 * Every record is 94 characters; records are written 10 to a block and the last block is filled
 * with records of nine 9s. Amounts are in cents, right-justified and zero-filled; text is upper-case
 * ASCII, left-justified and space-filled. The entry hash is the sum of the entries' 8-digit RDFI
 * routing numbers, its last 10 digits.
 */

/** Who sends the file and from which bank: the originator's identity, from configuration. */
export interface NachaOriginator {
  /** Routing number of the bank receiving the file (the ODFI), nine digits. */
  immediateDestination: string;
  immediateDestinationName: string;
  /** The company's identification at that bank, 10 characters (often `1` + the EIN). */
  immediateOrigin: string;
  immediateOriginName: string;
  /** Company name on the employees' statements, up to 16 characters. */
  companyName: string;
  /** Company identification, 10 characters (often `1` + the EIN). */
  companyId: string;
  /** What the entries are for, up to 10 characters (`PAYROLL`). */
  entryDescription: string;
  /** The ODFI's routing number, its first 8 digits (trace numbers and batch records carry it). */
  odfi: string;
}

/** One credit to an employee's account (or the offsetting debit to the company's). */
export interface NachaEntry {
  routing: string;
  account: string;
  accountType: 'checking' | 'savings';
  /** Amount in cents, > 0. */
  cents: bigint;
  /** A debit (27 checking, 37 savings) rather than a credit (22, 32). @defaultValue false */
  debit?: boolean;
  /** The individual's id at the company (employee number), up to 15 characters. */
  id: string;
  name: string;
}

/**
 * Federal Reserve routing symbols: 00 (US government), 01–12 (Federal Reserve districts), 21–32
 * (thrift institutions), 61–72 (electronic transactions), 80 (traveler's checks).
 */
export function routingProblem(routing: string): string | null {
  if (!/^\d{9}$/.test(routing)) return 'is not nine digits';
  const d = [...routing].map(Number);
  const sum = 3 * (d[0]! + d[3]! + d[6]!) + 7 * (d[1]! + d[4]! + d[7]!) + (d[2]! + d[5]! + d[8]!);
  if (sum % 10 !== 0) return 'fails the ABA check digit';
  const prefix = d[0]! * 10 + d[1]!;
  const fed =
    prefix <= 12 || (prefix >= 21 && prefix <= 32) || (prefix >= 61 && prefix <= 72) || prefix === 80;
  if (!fed)
    return `starts with ${routing.slice(0, 2)}, not a Federal Reserve routing symbol (00–12, 21–32, 61–72, 80)`;
  return null;
}

/** Upper-case ASCII letters, digits and the punctuation NACHA allows; accents dropped. */
function alnum(text: string): string {
  return text
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .toUpperCase()
    .replace(/[^A-Z0-9 .,'&/()-]/g, ' ');
}
const left = (text: string, n: number) => alnum(text).slice(0, n).padEnd(n, ' ');
const zeros = (n: bigint | number, width: number) => {
  const s = String(n);
  if (s.length > width) throw new UserError(`NACHA: ${s} does not fit in ${width} digits`);
  return s.padStart(width, '0');
};
const yymmdd = (iso: string) => iso.slice(2, 4) + iso.slice(5, 7) + iso.slice(8, 10);

function record(text: string): string {
  if (text.length !== 94) throw new Error(`NACHA record of ${text.length} characters: ${text}`);
  return text;
}

/** Checks the originator configuration once, naming the bad field. */
export function checkOriginator(o: NachaOriginator): void {
  const problem = routingProblem(o.immediateDestination);
  if (problem) throw new UserError(`NACHA immediate_destination ${o.immediateDestination} ${problem}`);
  if (!/^\d{8}$/.test(o.odfi))
    throw new UserError(`NACHA odfi must be the first 8 digits of the bank's routing number`);
  if (!/^[0-9A-Z ]{1,10}$/.test(o.immediateOrigin))
    throw new UserError('NACHA immediate_origin must be 1–10 digits, capitals or spaces');
  if (o.companyId.length === 0 || o.companyId.length > 10)
    throw new UserError('NACHA company_id must be 1–10 characters');
}

/** File header (type 1): `now` gives the creation date and time (UTC). */
export function fileHeader(o: NachaOriginator, now: Date, fileIdModifier = 'A'): string {
  const iso = now.toISOString();
  return record(
    '1' +
      '01' +
      ` ${o.immediateDestination}` +
      o.immediateOrigin.padStart(10, ' ') +
      yymmdd(iso) +
      iso.slice(11, 13) +
      iso.slice(14, 16) +
      fileIdModifier +
      '094' +
      '10' +
      '1' +
      left(o.immediateDestinationName, 23) +
      left(o.immediateOriginName, 23) +
      ' '.repeat(8),
  );
}

/** Service class of a batch: 220 credits only, 200 credits and debits (a balanced file). */
export type ServiceClass = '220' | '200';

/** Batch header (type 5) of a PPD batch. */
export function batchHeader(
  o: NachaOriginator,
  effectiveDate: string,
  batchNo: number,
  serviceClass: ServiceClass = '220',
): string {
  return record(
    '5' +
      serviceClass +
      left(o.companyName, 16) +
      ' '.repeat(20) +
      left(o.companyId, 10) +
      'PPD' +
      left(o.entryDescription, 10) +
      yymmdd(effectiveDate) +
      yymmdd(effectiveDate) +
      '   ' +
      '1' +
      o.odfi +
      zeros(batchNo, 7),
  );
}

/** Entry detail (type 6): 22 credits a checking account, 32 a savings account; 27 and 37 debit them. */
export function entryDetail(o: NachaOriginator, e: NachaEntry, seq: number): string {
  return record(
    '6' +
      (e.accountType === 'savings' ? '3' : '2') +
      (e.debit ? '7' : '2') +
      e.routing +
      e.account.padEnd(17, ' ') +
      zeros(e.cents, 10) +
      left(e.id, 15) +
      left(e.name, 22) +
      '  ' +
      '0' +
      o.odfi +
      zeros(seq, 7),
  );
}

/** Totals of a batch, accumulated entry by entry. */
export class BatchTotals {
  entries = 0;
  hash = 0n;
  credits = 0n;
  debits = 0n;
  add(e: NachaEntry): void {
    this.entries++;
    this.hash += BigInt(e.routing.slice(0, 8));
    if (e.debit) this.debits += e.cents;
    else this.credits += e.cents;
  }
  get entryHash(): string {
    return zeros(this.hash % 10_000_000_000n, 10);
  }
}

/** Batch control (type 8). */
export function batchControl(
  o: NachaOriginator,
  t: BatchTotals,
  batchNo: number,
  serviceClass: ServiceClass = '220',
): string {
  return record(
    '8' +
      serviceClass +
      zeros(t.entries, 6) +
      t.entryHash +
      zeros(t.debits, 12) +
      zeros(t.credits, 12) +
      left(o.companyId, 10) +
      ' '.repeat(19) +
      ' '.repeat(6) +
      o.odfi +
      zeros(batchNo, 7),
  );
}

/** File control (type 9) and the 9-filled records that complete the last block of 10. */
export function fileTrailer(t: BatchTotals, batches: number, recordsBefore: number): string[] {
  const records = recordsBefore + 1;
  const blocks = Math.ceil(records / 10);
  const out = [
    record(
      '9' +
        zeros(batches, 6) +
        zeros(blocks, 6) +
        zeros(t.entries, 8) +
        t.entryHash +
        zeros(t.debits, 12) +
        zeros(t.credits, 12) +
        ' '.repeat(39),
    ),
  ];
  for (let i = records; i < blocks * 10; i++) out.push('9'.repeat(94));
  return out;
}
