/**
 * `erp erase person <employee or customer>`: the person's personal data is replaced by a pseudonym
 * wherever erp keeps it, and the financial records stay, under that pseudonym.
 *
 *   ERP tables   hr.employees (names, e-mail, bank details, tax id), payroll.payslips (bank details),
 *                sales.customers (name, contact, address, tax id), the ship-to of their orders and
 *                the mapped 850 headers of those orders
 *   rejects      runner.rejects values and reasons that quote them
 *   files        reject reports, the files exports wrote (payroll register, bank file …), and
 *                partners' archived files on their SFTP servers
 *
 * Amounts, dates and keys (employee_no, customer_no, invoice and journal numbers) are not personal
 * data about the person once nothing else names them, and the law requires the postings kept:
 * they stay, so every ledger total is unchanged. The audit row says a person was erased, as which
 * pseudonym, and how much was rewritten — never who, or what the values were.
 *
 * What counts as the person's text: "strong" values (full name, e-mail, account and tax numbers,
 * phone, street address) are replaced wherever they stand as a whole word; "weak" ones (a first or
 * last name alone, a city) only on a line that also names the person's number, so another Ann or
 * Springfield is left alone. Fixed-width files (NACHA) get a mask of the same length instead.
 */
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type pg from 'pg';
import type { Logger } from 'pino';
import { appendAudit } from '../audit/trail.js';
import { UserError } from '../errors.js';
import { listPartnerNames, loadAnyPartner, resolveEndpoint } from '../partners/profile.js';
import { withSftp } from '../sftp/connect.js';
import { resolveInside } from '../sftp/names.js';
import { downloadVerified, listRemote, uploadAtomic } from '../sftp/transfer.js';
import { decryptValue, isEncrypted, requireKeyring } from './keys.js';
import { exportDir, inside } from './purge.js';
import { filesWithContent, rejectsAfter, rewriteReject } from '../runs/store/retention.js';

export interface ErasureResult {
  kind: 'employee' | 'customer';
  pseudonym: string;
  /** Rows rewritten per table. */
  rows: Record<string, number>;
  files: number;
}

interface Person {
  kind: 'employee' | 'customer';
  id: string;
  strong: string[];
  weak: string[];
}

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A value as a whole word: not inside a longer run of letters or digits. */
const word = (v: string): string => `(?<![\\p{L}\\p{N}])${escapeRe(v)}(?![\\p{L}\\p{N}])`;

/** Replaces the person's values in one line of text. */
export function pseudonymiser(
  person: Person,
  pseudonym: string,
): (line: string, fixedWidth?: boolean) => string {
  const usable = (vs: string[]): string[] =>
    [...new Set(vs.map((v) => v.trim()).filter((v) => v.length >= 2))].sort((a, b) => b.length - a.length);
  const strong = usable(person.strong);
  const weak = usable(person.weak).filter((w) => !strong.includes(w));
  const strongRe = strong.length > 0 ? new RegExp(strong.map(word).join('|'), 'giu') : null;
  // Fixed-width records run fields together (a NACHA entry: routing number, then the account).
  const strongFixedRe = strong.length > 0 ? new RegExp(strong.map(escapeRe).join('|'), 'giu') : null;
  const weakRe = weak.length > 0 ? new RegExp(weak.map(word).join('|'), 'giu') : null;
  const idRe = new RegExp(word(person.id), 'iu');
  return (line, fixedWidth = false) => {
    const to = (m: string): string => (fixedWidth ? 'X'.repeat(m.length) : pseudonym);
    const re = fixedWidth ? strongFixedRe : strongRe;
    let out = re ? line.replace(re, to) : line;
    if (weakRe && idRe.test(out)) out = out.replace(weakRe, to);
    return out;
  };
}

/** Finds the person: `employee:E0007`, `customer:ACME`, or a number that is one of them. */
async function findPerson(client: pg.PoolClient, ref: string): Promise<Person> {
  const m = /^(employee|customer):(.+)$/.exec(ref);
  const wanted = m ? m[1] : null;
  const id = m ? m[2]! : ref;
  const emp =
    wanted === 'customer'
      ? []
      : (
          await client.query<Record<string, string | null>>(
            `SELECT employee_no, first_name, last_name, email, bank_account, tax_id FROM hr.employees WHERE employee_no = $1 FOR UPDATE`,
            [id],
          )
        ).rows;
  const cust =
    wanted === 'employee'
      ? []
      : (
          await client.query<Record<string, string | null>>(
            `SELECT customer_no, name, email, phone, address1, address2, city, postal_code, tax_id FROM sales.customers WHERE customer_no = $1 FOR UPDATE`,
            [id],
          )
        ).rows;
  if (emp.length > 0 && cust.length > 0) {
    throw new UserError(
      `'${id}' is both an employee and a customer: say which, as employee:${id} or customer:${id}`,
    );
  }
  const clear = (v: string | null | undefined, what: string): string | null =>
    v && isEncrypted(v) ? decryptValue(requireKeyring(what), v, what) : (v ?? null);
  const list = (...vs: (string | null | undefined)[]): string[] => vs.filter((v): v is string => !!v);
  if (emp.length > 0) {
    const e = emp[0]!;
    if (e.last_name?.startsWith('ERASED-'))
      throw new UserError(`employee ${id} was erased already (${e.last_name})`);
    return {
      kind: 'employee',
      id,
      strong: list(
        `${e.last_name}, ${e.first_name}`,
        `${e.first_name} ${e.last_name}`,
        `${e.last_name} ${e.first_name}`,
        e.email,
        clear(e.bank_account, 'hr.employees.bank_account'),
        clear(e.tax_id, 'hr.employees.tax_id'),
      ),
      weak: list(e.first_name, e.last_name),
    };
  }
  if (cust.length > 0) {
    const c = cust[0]!;
    if (c.name?.startsWith('ERASED-')) throw new UserError(`customer ${id} was erased already (${c.name})`);
    const { rows: shipTo } = await client.query<{ v: string }>(
      `SELECT DISTINCT unnest(ARRAY[ship_to_name, ship_to_address1]) AS v FROM sales.orders WHERE customer_no = $1`,
      [id],
    );
    return {
      kind: 'customer',
      id,
      strong: list(
        c.name,
        c.email,
        c.phone,
        c.address1,
        c.address2,
        clear(c.tax_id, 'sales.customers.tax_id'),
        ...shipTo.map((r) => r.v),
      ),
      weak: list(c.city, c.postal_code),
    };
  }
  throw new UserError(
    `no employee or customer '${id}' (hr.employees.employee_no, sales.customers.customer_no)`,
  );
}

/** Rewrites `file` line by line through `fn`; true when anything changed. Memory stays flat. */
async function rewriteFile(file: string, fn: (line: string) => string): Promise<boolean> {
  const tmp = path.join(
    path.dirname(file),
    `.${path.basename(file)}.${randomBytes(4).toString('hex')}.erase`,
  );
  const out = createWriteStream(tmp, { flags: 'wx' });
  let changed = false;
  try {
    const input = createReadStream(file, 'utf8');
    // crlfDelay: a CRLF file stays one line per record; the line ends are written back as read.
    const rl = createInterface({ input, crlfDelay: Infinity });
    let first = true;
    for await (const line of rl) {
      const next = fn(line);
      if (next !== line) changed = true;
      if (!out.write((first ? '' : '\n') + next)) await once(out, 'drain');
      first = false;
    }
    out.end('\n');
    await once(out, 'finish');
    if (changed) await rename(tmp, file);
    else await rm(tmp, { force: true });
    return changed;
  } catch (err) {
    out.destroy();
    await rm(tmp, { force: true });
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Partners' archived files (their SFTP archive directories) that name the person: each is
 * downloaded, rewritten, and uploaded back in place atomically. Returns how many changed.
 */
async function eraseInArchives(
  app: { home: string; dataDir: string },
  replace: (line: string) => string,
  log: Logger,
): Promise<number> {
  let changed = 0;
  const work = await mkdtemp(path.join(await ensureDir(path.join(app.dataDir, 'tmp')), 'erase-'));
  try {
    for (const name of await listPartnerNames(app.home)) {
      const partner = await loadAnyPartner(app.home, name);
      const endpoint = resolveEndpoint(partner);
      await withSftp(endpoint, { log, partner: name }, async (client) => {
        for (const e of await listRemote(client, endpoint.archive)) {
          if (!e.isFile) continue;
          const remote = resolveInside(endpoint.archive, e.name);
          const local = await downloadVerified(client, remote, work, e.size);
          if (await rewriteFile(local.localPath, (line) => replace(line))) {
            await uploadAtomic(client, local.localPath, endpoint.archive, e.name, { overwrite: true });
            changed++;
          }
          await rm(local.localPath, { force: true });
        }
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  return changed;
}

async function ensureDir(dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  return dir;
}

export async function erasePerson(
  app: { pool: pg.Pool; home: string; dataDir: string; log: Logger },
  ref: string,
): Promise<ErasureResult> {
  const log = app.log;
  const pseudonym = `ERASED-${randomBytes(5).toString('hex')}`;
  const rows: Record<string, number> = {};
  /** Adds the rows a statement changed (its result, or their number) to the table's count. */
  const count = (table: string, r: pg.QueryResult | number): void => {
    const n = typeof r === 'number' ? r : (r.rowCount ?? 0);
    if (n > 0) rows[table] = (rows[table] ?? 0) + n;
  };
  const client = await app.pool.connect();
  try {
    await client.query('BEGIN');
    const person = await findPerson(client, ref);
    const replace = pseudonymiser(person, pseudonym);
    if (person.kind === 'employee') {
      count(
        'hr.employees',
        await client.query(
          `UPDATE hr.employees SET first_name = 'Erased', last_name = $2, email = NULL, bank_routing = NULL,
             bank_account = NULL, tax_id = NULL WHERE employee_no = $1`,
          [person.id, pseudonym],
        ),
      );
      // The payslip keeps that it was paid by bank transfer; the account is gone.
      count(
        'payroll.payslips',
        await client.query(
          `UPDATE payroll.payslips SET bank_routing = NULL, bank_account = 'erased'
            WHERE employee_no = $1 AND bank_account IS NOT NULL`,
          [person.id],
        ),
      );
    } else {
      count(
        'sales.customers',
        await client.query(
          `UPDATE sales.customers SET name = $2, email = NULL, phone = NULL, address1 = NULL, address2 = NULL,
             city = NULL, state = NULL, postal_code = NULL, tax_id = NULL WHERE customer_no = $1`,
          [person.id, pseudonym],
        ),
      );
      count(
        'sales.orders',
        await client.query(
          `UPDATE sales.orders SET ship_to_name = CASE WHEN ship_to_name IS NULL THEN NULL ELSE $2 END,
             ship_to_address1 = NULL, ship_to_city = NULL, ship_to_state = NULL, ship_to_postal_code = NULL
            WHERE customer_no = $1 AND num_nonnulls(ship_to_name, ship_to_address1, ship_to_city, ship_to_state, ship_to_postal_code) > 0`,
          [person.id, pseudonym],
        ),
      );
      const { rows: headers } = await client.query<{ order_id: string; header: string }>(
        `SELECT i.order_id, i.header::text AS header FROM edi.inbound_orders i JOIN sales.orders o ON o.id = i.order_id
          WHERE o.customer_no = $1`,
        [person.id],
      );
      for (const h of headers) {
        const next = replace(h.header);
        if (next !== h.header)
          count(
            'edi.inbound_orders',
            await client.query(`UPDATE edi.inbound_orders SET header = $2::jsonb WHERE order_id = $1`, [
              h.order_id,
              next,
            ]),
          );
      }
    }
    // Rejects that quote the person (a raw line, a value, a lookup's reason), a page at a time.
    for (let after = '0'; ;) {
      const rejects = await rejectsAfter(client, after, 5000);
      if (rejects.length === 0) break;
      after = rejects[rejects.length - 1]!.id;
      for (const r of rejects) {
        const value = r.value === null ? null : replace(r.value);
        const reason = replace(r.reason);
        if (value !== r.value || reason !== r.reason)
          count('runner.rejects', await rewriteReject(client, r.id, value, reason));
      }
    }
    // Files: reject reports under the data directory and the files exports wrote. Rewritten before
    // the commit: a failure leaves the database as it was and the erasure can simply be run again.
    let files = 0;
    const recorded = await filesWithContent(client);
    const seen = new Set<string>();
    for (const f of recorded) {
      const candidates: string[] = [];
      if (f.report && inside(app.dataDir, f.report)) candidates.push(f.report);
      const dir = f.file ? await exportDir(app.home, f.pipeline) : null;
      const file = path.resolve(app.home, f.file);
      if (dir !== null && inside(dir, file)) candidates.push(file);
      for (const c of candidates) {
        if (seen.has(c)) continue;
        seen.add(c);
        const fixed = c.endsWith('.ach');
        if (await rewriteFile(c, (line) => replace(line, fixed))) files++;
      }
    }
    files += await eraseInArchives(app, replace, log);
    await appendAudit(client, {
      action: 'person.erased',
      subject: `person:${pseudonym}`,
      detail: { kind: person.kind, rows, files },
    });
    await client.query('COMMIT');
    client.release();
    return { kind: person.kind, pseudonym, rows, files };
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    client.release();
    throw err;
  }
}
