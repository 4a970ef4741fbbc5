import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { z } from 'zod';
import { UserError } from '../errors.js';
import {
  BatchTotals,
  batchControl,
  batchHeader,
  checkOriginator,
  entryDetail,
  fileHeader,
  fileTrailer,
  routingProblem,
  type NachaEntry,
  type NachaOriginator,
} from '../nacha/records.js';
import type { Batch, Cell, ColumnType, FormatReader, FormatWriter } from './types.js';

/**
 * `format: { kind: nacha }` — an export's rows as a NACHA PPD credit file (src/nacha/records.ts), one batch:
 *
 *   rows (routing, account, account_type, amount, id, name, effective_date) ──► 1, 5, 6…, 8, 9, 9999… fill
 *
 * Entries are written as rows arrive (back-pressure respected); the batch and file controls follow
 * the last row. A row a bank would refuse (routing number, account, amount) stops the export with
 * one line naming the row, so no file with a bad entry is ever written. With `offset`, the batch ends
 * with one debit to the company's account for the total of the credits (a balanced file).
 */

/** The company's own account, debited for the total of the credits in a balanced file. */
export const nachaOffsetSchema = z
  .object({
    /** Routing number of the company's account, nine digits. */
    routing: z.string().regex(/^\d{9}$/, 'nine digits'),
    /** The company's account number at that bank, 1–17 letters or digits. */
    account: z.string().regex(/^[0-9A-Za-z-]{1,17}$/, '1–17 letters or digits'),
    /** @defaultValue checking */
    account_type: z.enum(['checking', 'savings']).default('checking'),
    /** Receiver name on the offset entry, up to 22 characters. @defaultValue immediate_origin_name */
    name: z.string().min(1).max(22).optional(),
  })
  .strict();

/** The originator's identity and bank, as the bank assigned them. */
export const nachaFormatSchema = z
  .object({
    kind: z.literal('nacha'),
    /** Routing number of the bank the file is sent to (the ODFI), nine digits. */
    immediate_destination: z.string().regex(/^\d{9}$/, 'nine digits'),
    /** The bank's name, up to 23 characters. */
    immediate_destination_name: z.string().min(1).max(23),
    /** The company's identification at the bank, up to 10 characters (often `1` + the EIN). */
    immediate_origin: z.string().min(1).max(10),
    /** The company's name, up to 23 characters. */
    immediate_origin_name: z.string().min(1).max(23),
    /** The name employees see on their statements, up to 16 characters. */
    company_name: z.string().min(1).max(16),
    /** Company identification in the batch, up to 10 characters. @defaultValue immediate_origin */
    company_id: z.string().min(1).max(10).optional(),
    /** What the credits are for, up to 10 characters. @defaultValue `PAYROLL` */
    entry_description: z.string().min(1).max(10).default('PAYROLL'),
    /**
     * Write a balanced file: an offsetting debit to this account for the total of the credits, as
     * some banks and third-party senders require. @defaultValue none (credits only)
     */
    offset: nachaOffsetSchema.optional(),
  })
  .strict();
export type NachaFormatConfig = z.infer<typeof nachaFormatSchema>;

const COLUMNS = ['routing', 'account', 'account_type', 'amount', 'id', 'name', 'effective_date'] as const;

/** Creates the NACHA writer; NACHA is export-only. */
export function createNachaFormat(
  config: NachaFormatConfig,
  now: () => Date = () => new Date(),
): FormatReader & FormatWriter {
  const originator: NachaOriginator = {
    immediateDestination: config.immediate_destination,
    immediateDestinationName: config.immediate_destination_name,
    immediateOrigin: config.immediate_origin,
    immediateOriginName: config.immediate_origin_name,
    companyName: config.company_name,
    companyId: config.company_id ?? config.immediate_origin,
    entryDescription: config.entry_description,
    odfi: config.immediate_destination.slice(0, 8),
  };
  return {
    // eslint-disable-next-line require-yield
    async *read(_input, fileName) {
      throw new UserError(`${fileName}: format nacha writes bank files; it does not read them`);
    },
    extension: 'ach',
    write: (columns, _types: readonly ColumnType[], batches, out) =>
      writeNacha(originator, config.offset, now(), columns, batches, out),
  };
}

async function writeNacha(
  o: NachaOriginator,
  offset: NachaFormatConfig['offset'],
  now: Date,
  columns: readonly string[],
  batches: AsyncIterable<Batch>,
  out: Writable,
): Promise<number> {
  checkOriginator(o);
  const offsetProblem = offset ? routingProblem(offset.routing) : null;
  if (offsetProblem) throw new UserError(`NACHA offset.routing ${offset!.routing} ${offsetProblem}`);
  const serviceClass = offset ? '200' : '220';
  const at = COLUMNS.map((c) => columns.indexOf(c));
  const missing = COLUMNS.filter((_, i) => at[i] === -1);
  if (missing.length > 0) {
    throw new UserError(
      `format nacha needs the columns ${COLUMNS.join(', ')}; the query has no ${missing.join(', ')}`,
    );
  }
  const put = async (line: string): Promise<void> => {
    if (!out.write(`${line}\n`)) await once(out, 'drain');
  };
  const totals = new BatchTotals();
  let records = 0;
  let effective: string | null = null;
  let row = 0;
  await put(fileHeader(o, now));
  records++;
  for await (const batch of batches) {
    for (const cells of batch.rows) {
      row++;
      const entry = toEntry(cells, at, row);
      const date = cells[at[6]!]!;
      if (effective === null) {
        effective = date;
        await put(batchHeader(o, effective, 1, serviceClass));
        records++;
      } else if (date !== effective) {
        throw new UserError(
          `bank file row ${row} (${entry.id}): effective date ${date} differs from ${effective}; one file, one pay date`,
        );
      }
      totals.add(entry);
      await put(entryDetail(o, entry, totals.entries));
      records++;
    }
  }
  if (effective !== null) {
    if (offset) {
      const debit: NachaEntry = {
        routing: offset.routing,
        account: offset.account.toUpperCase(),
        accountType: offset.account_type,
        cents: totals.credits,
        debit: true,
        id: o.companyId,
        name: offset.name ?? o.immediateOriginName,
      };
      totals.add(debit);
      await put(entryDetail(o, debit, totals.entries));
      records++;
    }
    await put(batchControl(o, totals, 1, serviceClass));
    records++;
  }
  for (const line of fileTrailer(totals, effective === null ? 0 : 1, records)) await put(line);
  out.end();
  await finished(out);
  return totals.entries;
}

function toEntry(cells: Cell[], at: number[], row: number): NachaEntry {
  const [routing, account, type, amount, id, name, date] = at.map((i) => cells[i!] ?? '');
  const where = `bank file row ${row} (${id || 'no id'})`;
  const problem = routingProblem(routing!);
  if (problem) throw new UserError(`${where}, field routing: ${routing} ${problem}`);
  if (!/^[0-9A-Za-z-]{1,17}$/.test(account!))
    throw new UserError(`${where}, field account: expected 1–17 letters or digits`);
  if (type !== 'checking' && type !== 'savings')
    throw new UserError(`${where}, field account_type: expected checking or savings, not "${type}"`);
  const m = /^(\d{1,8})(?:\.(\d{1,2}))?$/.exec(amount!);
  const cents = m ? BigInt(m[1]!) * 100n + BigInt((m[2] ?? '').padEnd(2, '0')) : 0n;
  if (!m || cents === 0n)
    throw new UserError(
      `${where}, field amount: expected an amount above 0.00 with at most 2 decimals, not "${amount}"`,
    );
  if (!/^\d{4}-\d{2}-\d{2}$/.test(date!))
    throw new UserError(`${where}, field effective_date: expected YYYY-MM-DD, not "${date}"`);
  return {
    routing: routing!,
    account: account!.toUpperCase(),
    accountType: type,
    cents,
    id: id!,
    name: name!,
  };
}
