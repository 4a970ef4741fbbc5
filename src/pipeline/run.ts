/**
 * Runs an import pipeline: for each file, one transaction holding the rows, the ledger row and the
 * file's run record.
 *
 *   file ─► sha256 ─► parse ─► validate ─► transform ─► BEGIN; ledger row; COPY ─► rows … ─► reject policy
 *                       └──────────┴───────────┴──► rejects.csv    (ledger row taken → skip)
 *         ─► run_files + first rejects; COMMIT ─► source.settle (archive)
 *
 * Per loaded file that is three messages to the server: BEGIN and the ledger row travel with the
 * COPY, and the record with COMMIT (docs/performance.md, many small files).
 *
 * A large file whose size the pipeline's ledger does not hold is new content: it is hashed as it
 * loads (HashingTap), and its ledger row goes in after the rows (a conflict there still undoes the
 * file and skips it), so it is read once instead of twice.
 * A failure anywhere before COMMIT rolls everything back; a killed process leaves an open
 * transaction that PostgreSQL rolls back when the connection drops. Either way no row of the file
 * is visible, and the ledger does not hold it, so the next run loads it.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { pipeline as streamPipelineCb, Readable, Transform } from 'node:stream';
import path from 'node:path';
import { pipeline as streamPipeline } from 'node:stream/promises';
import type pg from 'pg';
import { CancelledError, describeError, isPermanent, RejectPolicyError, UserError } from '../errors.js';
import {
  beginFile,
  beginFileSql,
  enterLedger,
  isLedgerConflict,
  ledgerEntry,
  ledgerMayHold,
  recordRunFile,
  type LedgerFile,
  type LedgerRow,
} from '../runs/store/files.js';
import { isFilled, sealRows } from '../compliance/encrypted-columns.js';
import { finishRun } from '../runs/store/runs.js';
import { csvRowEncoder } from '../stages/sink-postgres.js';
import {
  ROW_CHANGED,
  ROW_REJECTED,
  ROW_SAME,
  type Batch,
  type Cell,
  type CopyDialect,
  type Reject,
  type RejectFn,
  type Sealer,
  type RowStep,
  type RowVerdict,
  type SinkWriter,
  type SourceFile,
  type StageContext,
} from '../stages/types.js';
import { buildExport, buildImport, isExport, type ImportStages } from './build.js';
import { pipelineRun } from './pipeline-run.js';
import { CopyLines } from './copy-lines.js';
import { RejectReport } from './reject-report.js';
import { runTempDir } from '../runs/temp.js';
import type { AppContext } from '../app.js';
import { runExport } from './export.js';
import type { PipelineConfig, PipelineDefinition } from './definition.js';
import { failedFile, type FileResult, type PipelineResult } from './result.js';
import type { RunPipelineOptions } from './pipeline-run.js';

const SHOWN_REJECTS = 20;

/** Runs `def` and returns what happened to each file. Throws only for errors before any file starts. */
export async function runPipeline(
  context: AppContext,
  def: PipelineDefinition,
  opts: RunPipelineOptions = {},
): Promise<PipelineResult> {
  let app = context;
  const signal = opts.signal ?? new AbortController().signal;
  const ctx: StageContext = {
    home: app.home,
    pool: app.pool,
    log: app.log,
    signal,
    inputRoots: [app.home, ...(app.inputDirs ?? [])],
  };
  if (isExport(def)) {
    return runExport(app, def, (runId) => buildExport(def, ctx, opts.params ?? {}, runId), {
      ...opts,
      signal,
    });
  }
  const stages = await buildImport(def, ctx, { files: opts.files });
  const dryRun = opts.dryRun ?? false;
  const { runId, ownRun } = await pipelineRun(app, def, opts);
  // Its lines name the pipeline, and the run when it is the pipeline's own (a job's names it already).
  app = { ...app, log: app.log.child(ownRun ? { runId, pipeline: def.name } : { pipeline: def.name }) };
  ctx.log = app.log;
  // The stages read it when they need a temporary file, after this point.
  ctx.tempDir = runTempDir(app.dataDir, runId);
  const result: PipelineResult = {
    runId,
    pipeline: def.name,
    dryRun,
    status: 'succeeded',
    files: [],
    rowsRead: 0,
    rowsLoaded: 0,
    rowsRejected: 0,
    error: null,
  };
  try {
    let index = 0;
    for await (const file of stages.source.files()) {
      if (signal.aborted) throw new CancelledError();
      const r = await runFile(app, def, stages, file, index++, { ...opts, dryRun, signal, runId });
      app.log.debug(
        {
          file: r.file,
          status: r.status,
          rowsRead: r.rowsRead,
          rowsLoaded: r.rowsLoaded,
          rowsRejected: r.rowsRejected,
          message: r.message,
        },
        `file ${r.status}`,
      );
      result.files.push(r);
      result.rowsRead += r.rowsRead;
      result.rowsLoaded += r.rowsLoaded;
      result.rowsRejected += r.rowsRejected;
      if (r.status === 'failed') {
        result.status = 'failed';
        result.error ??= r.message;
      }
    }
    if (result.files.length === 0) app.log.warn('no input files found');
  } catch (err) {
    result.status = err instanceof CancelledError ? 'cancelled' : 'failed';
    result.error = describeError(err);
    result.transient = !isPermanent(err);
    if (!(err instanceof UserError) && !(err instanceof CancelledError))
      app.log.debug({ err }, 'pipeline failed');
  }
  if (ownRun && runId !== null) {
    await finishRun(app.pool, runId, result.status, result.error);
  }
  return result;
}

/** The first rejects in line order (structural ones are found while tokenizing, ahead of the rest). */
function firstByLine(rejects: Reject[]): Reject[] {
  return [...rejects].sort((a, b) => (a.line ?? 0) - (b.line ?? 0)).slice(0, SHOWN_REJECTS);
}

/** Files up to this size are read into memory once instead of streamed twice (hash, then rows). */
const READ_WHOLE_BYTES = 4 << 20;
/** Bytes per read, whether from the file or from a file read whole: a batch is the rows of one. */
const READ_BYTES = 1 << 18;

function* slices(buf: Buffer, size: number): Generator<Buffer> {
  for (let at = 0; at < buf.length; at += size) yield buf.subarray(at, at + size);
}

/** SHA-256 of a local file, streamed. */
export async function hashFile(file: string): Promise<string> {
  const hash = createHash('sha256');
  await streamPipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash);
  return hash.digest('hex');
}

interface FileRunOptions extends Omit<RunPipelineOptions, 'runId'> {
  dryRun: boolean;
  signal: AbortSignal;
  runId: number | null;
}

function checkCountPolicy(policy: PipelineConfig['rejects'], rejected: number, file: string): void {
  if (policy.max_rejects !== undefined && rejected > policy.max_rejects) {
    throw new RejectPolicyError(
      `${file}: more than ${policy.max_rejects} rejected rows (max_rejects); the file was not loaded`,
    );
  }
}

function checkRatePolicy(
  policy: PipelineConfig['rejects'],
  rejected: number,
  read: number,
  file: string,
): void {
  if (policy.max_reject_rate !== undefined && read > 0 && rejected / read > policy.max_reject_rate) {
    const pct = ((100 * rejected) / read).toFixed(1);
    throw new RejectPolicyError(
      `${file}: ${rejected} of ${read} rows rejected (${pct}%), above max_reject_rate ${policy.max_reject_rate}; the file was not loaded`,
    );
  }
}

async function runFile(
  context: AppContext,
  def: PipelineDefinition,
  stages: ImportStages,
  file: SourceFile,
  index: number,
  opts: FileRunOptions,
): Promise<FileResult> {
  const app: AppContext = { ...context, log: context.log.child({ file: file.name }) };
  // An SFTP download hashed the bytes as they arrived. A small local file is read once, for its
  // hash and its rows alike; a large one is hashed as it loads (HashingTap) or, when the ledger may
  // hold it already (or in a dry run), in a read of its own first.
  const content =
    file.sha256 === undefined && file.size <= READ_WHOLE_BYTES ? await readFile(file.path) : null;
  let sha256: string | null =
    file.sha256 ?? (content !== null ? createHash('sha256').update(content).digest('hex') : null);
  const reportPath =
    opts.runId === null
      ? null
      : path.join(
          app.dataDir,
          'runs',
          String(opts.runId),
          `rejects-${index + 1}-${path.basename(file.name, path.extname(file.name))}.csv`,
        );
  const rejects = new RejectReport(reportPath, Math.max(app.rejectsInTable, SHOWN_REJECTS));
  const result = failedFile(file.name, sha256 ?? '');
  const hashed = (h: string): void => {
    sha256 = h;
    result.sha256 = h;
  };
  /** Records the file; with `commit`, COMMITs the file's transaction in the same round trip. */
  const record = async (db: pg.Pool | pg.PoolClient, commit = false): Promise<void> => {
    if (opts.runId === null) {
      if (commit) await db.query('COMMIT');
      return;
    }
    await recordRunFile(
      db,
      {
        runId: opts.runId,
        pipeline: def.name,
        file: file.name,
        sha256,
        size: file.size,
        status: result.status,
        rowsRead: result.rowsRead,
        rowsLoaded: result.rowsLoaded,
        rowsRejected: result.rowsRejected,
        rejectReport: result.rejectReport,
        message: result.message,
      },
      // A skipped file's rows were not its run's to judge, whatever of them was read.
      result.status === 'skipped' ? [] : rejects.first.slice(0, app.rejectsInTable),
      // The run's counters move with the file's record (in the file's transaction when it loads),
      // so a crash after a commit leaves them right; so does the ledger row's count.
      { countInRun: true, ledger: result.status === 'loaded', commit },
    );
  };

  if (opts.dryRun) {
    if (sha256 === null) hashed(await hashFile(file.path));
    const previous = await ledgerEntry(app.pool, def.name, sha256!);
    try {
      await streamRows(app, def, stages, file, content, index, rejects, opts, null, result);
      // The whole policy, as a real run applies it: the rate is known only at the end of the file.
      checkRatePolicy(def.config.rejects, result.rowsRejected, result.rowsRead, file.name);
      result.status = 'validated';
      if (previous && !opts.force) {
        result.message = `already loaded by run ${previous.run_id}: a real run would skip it (--force loads it again)`;
      }
    } catch (err) {
      result.message = describeError(err);
      result.policyExceeded = err instanceof RejectPolicyError;
    }
    result.rejects = firstByLine(rejects.first);
    return result;
  }

  const client = await app.pool.connect();
  let released = false;
  const ledgerFile = (): LedgerFile => ({
    pipeline: def.name,
    sha256: sha256!,
    file: file.name,
    size: file.size,
    runId: opts.runId,
  });
  const force = opts.force ?? false;
  /** The file was loaded before (the transaction is rolled back): recorded and settled as skipped. */
  const skip = async (p: LedgerRow | undefined): Promise<FileResult> => {
    Object.assign(result, failedFile(file.name, sha256!));
    result.status = 'skipped';
    result.message = p
      ? `already loaded by run ${p.run_id} on ${p.loaded_at.toISOString()} (as ${p.file}); skipped — use --force to load it again`
      : 'already loaded; skipped';
    await record(released ? app.pool : client);
    await file.settle?.({ status: 'skipped', message: result.message });
    return result;
  };
  try {
    // Content new to the pipeline cannot be a duplicate: it loads in one read, hashed as it goes,
    // and enters the ledger after its rows (the ledger's key still holds it to once, whatever
    // runs at the same time). A size the ledger knows is hashed first, so a re-delivery is
    // skipped unread.
    let tap: HashingTap | null = null;
    if (sha256 === null) {
      if (force || !(await ledgerMayHold(client, def.name, file.size))) tap = new HashingTap();
      else hashed(await hashFile(file.path));
    }
    // The file's BEGIN and ledger row go to the server with the load's first statement, in one
    // message: content loaded before fails that statement before a row is written, and the
    // file is skipped below. A tapped file sends BEGIN alone.
    const opened = await streamRows(
      app,
      def,
      stages,
      file,
      content,
      index,
      rejects,
      opts,
      client,
      result,
      tap === null ? beginFileSql(ledgerFile(), force) : 'BEGIN',
      tap,
    );
    // A format that stopped before the end of the file leaves the rest to hash.
    if (tap !== null) hashed(tap.digest(file.size) ?? (await hashFile(file.path)));
    if (!opened) {
      // No record opened the load (an empty file): BEGIN and the ledger row on their own.
      const entry = await beginFile(client, ledgerFile(), force);
      if (!entry.entered) {
        await client.query('ROLLBACK');
        return await skip(entry.previous);
      }
    } else if (tap !== null && !(await enterLedger(client, ledgerFile(), force))) {
      // A run that loaded the same content committed while this one read it.
      await client.query('ROLLBACK');
      await rejects.discard();
      return await skip(await ledgerEntry(client, def.name, sha256!));
    }
    checkRatePolicy(def.config.rejects, result.rowsRejected, result.rowsRead, file.name);
    result.rejectReport = await rejects.close();
    result.status = 'loaded';
    // The record and COMMIT in one round trip: the file's transaction ends with its record.
    await record(client, true);
  } catch (err) {
    await client.query('ROLLBACK').catch(() => {
      client.release(true);
      released = true;
    });
    // A file that failed before it was hashed is hashed now: its record names its content.
    if (sha256 === null) {
      const h = await hashFile(file.path).catch(() => null);
      if (h !== null) hashed(h);
    }
    // Content the ledger holds was loaded before: skipped, whatever stopped this load of it (the
    // ledger row ahead of the COPY, or a reject policy met in the rows read before that failed).
    if (!force && !(err instanceof CancelledError) && sha256 !== null) {
      const previous = await ledgerEntry(app.pool, def.name, sha256).catch(() => undefined);
      if (previous !== undefined || isLedgerConflict(err)) {
        await rejects.discard().catch(() => undefined);
        return await skip(previous);
      }
    }
    result.status = 'failed';
    result.rowsLoaded = 0;
    result.message = describeError(err);
    result.policyExceeded = err instanceof RejectPolicyError;
    result.transient = !isPermanent(err);
    if (!(err instanceof UserError) && !(err instanceof CancelledError))
      app.log.debug({ err }, 'file failed');
    // A report that could not be written is removed rather than left half written.
    if (rejects.failed) await rejects.discard().catch(() => undefined);
    else result.rejectReport = await rejects.close().catch(() => null);
    await record(app.pool).catch((e: unknown) =>
      app.log.error({ err: e }, 'could not record the failed file'),
    );
    await file.settle?.({ status: 'failed', message: result.message }).catch(() => undefined);
    if (err instanceof CancelledError) throw err;
  } finally {
    if (!released) client.release();
  }
  result.rejects = firstByLine(rejects.first);
  if (result.status === 'loaded') await file.settle?.({ status: 'loaded' });
  return result;
}

/**
 * The SHA-256 of a file's bytes as they pass on to the format, so that a large file is read once
 * for its hash and its rows. The digest counts only when every byte of the file went through.
 */
class HashingTap {
  private readonly hash = createHash('sha256');
  private bytes = 0;
  private ended = false;

  /** `source`, passed through unchanged; destroying the result destroys `source`. */
  tap(source: Readable): Readable {
    const t = new Transform({
      transform: (chunk: Buffer, _enc, done) => {
        this.hash.update(chunk);
        this.bytes += chunk.length;
        done(null, chunk);
      },
      flush: (done) => {
        this.ended = true;
        done();
      },
    });
    // Errors and destruction travel both ways; the consumer sees a read error as its own.
    return streamPipelineCb(source, t, () => undefined);
  }

  digest(size: number): string | null {
    return this.ended && this.bytes === size ? this.hash.digest('hex') : null;
  }
}

/**
 * Streams one file through format, row steps and (unless `client` is null) the sink.
 *
 * Pass-through: when the format hands each record's own text along (CSV in a dialect COPY can be
 * told) and every step can say whether it left a row as is (validate), the load is a
 * `COPY … (FORMAT csv)` and a record every step left as is goes as the text it was read — runs of
 * adjacent records as one slice of the decoded chunk — with no per-field encoding. A record a step
 * changed (a date normalised, an empty text made NULL) is encoded as CSV in the same dialect, in
 * its place, so the table gets the same rows in the same order either way
 * (test/pass-through.test.ts holds the two paths to the same table).
 */
async function streamRows(
  app: AppContext,
  def: PipelineDefinition,
  stages: ImportStages,
  file: SourceFile,
  content: Buffer | null,
  index: number,
  rejects: RejectReport,
  opts: FileRunOptions,
  client: pg.PoolClient | null,
  result: FileResult,
  /** SQL for the sink to send ahead of the load's first statement (the file's BEGIN and ledger row). */
  before?: string,
  /** Hashes the file's bytes as they are read. */
  hash: HashingTap | null = null,
): Promise<boolean> {
  const fromDisk = content === null ? createReadStream(file.path, { highWaterMark: READ_BYTES }) : null;
  const input =
    fromDisk === null
      ? Readable.from(slices(content!, READ_BYTES), { objectMode: false })
      : hash !== null
        ? hash.tap(fromDisk)
        : fromDisk;
  const bytesRead = (): number => (fromDisk !== null ? fromDisk.bytesRead : content!.length);
  const abort = (): void => {
    input.destroy(new CancelledError());
  };
  opts.signal.addEventListener('abort', abort, { once: true });
  const dialect =
    client !== null && opts.passThrough !== false && stages.steps.every((s) => s.compileCheck)
      ? stages.format.copyDialect
      : undefined;
  let writer: SinkWriter | null = null;
  let compiled: { columns: readonly string[]; fns: ReturnType<RowStep['compile']>[] } | null = null;
  let checks: { columns: readonly string[]; fns: RowCheck[] } | null = null;
  const encode = dialect === undefined ? null : csvRowEncoder(dialect);
  let rowsRead = 0;
  let rowsRejected = 0;
  // A row PostgreSQL refuses is named by the file's line (src/pipeline/copy-lines.ts).
  const sent = new CopyLines();
  try {
    for await (const batch of stages.format.read(input, file.name, rejects.addFromFormat)) {
      if (opts.signal.aborted) throw new CancelledError();
      let out: Cell[][] = [];
      let text: ReturnType<typeof passThroughBatch> | null = null;
      if (encode !== null) {
        if (checks === null || checks.columns !== batch.columns) {
          // The steps' own checks of the columns come first, as on the general path.
          for (const step of stages.steps) step.compile(batch.columns, file.name);
          writer ??= await stages.sink.open(client!, batch.columns, dialect, before);
          const types = writer.columnTypes;
          checks = {
            columns: batch.columns,
            fns: stages.steps.map((step) => step.compileCheck!(batch.columns, file.name, types)),
          };
        }
        text = passThroughBatch(batch, checks.fns, rejects.add, encode, (line) => sent.note(line), {
          sealer: writer?.sealer,
          dialect: dialect!,
        });
        rowsRejected += text.rejected;
      } else {
        if (compiled === null || compiled.columns !== batch.columns) {
          let cols = batch.columns;
          const fns: ReturnType<RowStep['compile']>[] = [];
          for (const step of stages.steps) {
            fns.push(step.compile(cols, file.name));
            cols = step.columns(cols);
          }
          compiled = { columns: batch.columns, fns };
          if (client !== null && writer === null)
            writer = await stages.sink.open(client, cols, undefined, before);
        }
        const fns = compiled.fns;
        out = [];
        const rows = batch.rows;
        for (let i = 0; i < rows.length; i++) {
          let row: Cell[] | null = rows[i]!;
          for (let s = 0; s < fns.length && row !== null; s++)
            row = fns[s]!(row, batch.lines[i]!, rejects.add);
          if (row === null) rowsRejected++;
          else {
            out.push(row);
            sent.note(batch.lines[i]!);
          }
        }
      }
      rowsRead += batch.rows.length;
      result.rowsRead = rowsRead + rejects.structural;
      result.rowsRejected = rowsRejected + rejects.structural;
      checkCountPolicy(def.config.rejects, result.rowsRejected, file.name);
      // Back-pressure from the reject report: however many rows are rejected, memory stays flat.
      await rejects.ready();
      if (writer !== null && out.length > 0) await writer.write(out);
      if (writer !== null && text !== null && text.rows > 0) await writer.writeText(text.text, text.rows);
      opts.onProgress?.({
        file: file.name,
        fileIndex: index,
        bytesRead: bytesRead(),
        bytesTotal: file.size,
        rowsRead,
      });
    }
    // Rows the format could not split (bad column count, stray quote) are rows read and rejected too.
    result.rowsRead = rowsRead + rejects.structural;
    result.rowsRejected = rowsRejected + rejects.structural;
    checkCountPolicy(def.config.rejects, result.rowsRejected, file.name);
    result.rowsLoaded = writer !== null ? await writer.end() : 0;
    return writer !== null;
  } catch (err) {
    // A COPY still open holds the connection; end it so the transaction can roll back.
    await writer?.abort(err instanceof Error ? err : new Error(String(err)));
    throw sent.explain(err, file.name, stages.redactor);
  } finally {
    opts.signal.removeEventListener('abort', abort);
    input.destroy();
    fromDisk?.destroy();
  }
}

type RowCheck = ReturnType<NonNullable<RowStep['compileCheck']>>;

const LF = 10;
/** Characters of an envelope (enc:v1:<key id>:<base64url>) that a CSV dialect may use as delimiter or quote. */
const ENVELOPE_PUNCTUATION = ':-_';

/**
 * Runs the checks over a batch and returns the CSV text to load (`encode` writes a row in the
 * file's dialect): the records every check left as
 * is, as they were read (adjacent ones as one slice), and the others encoded, in file order.
 *
 * With a `sealer` (the target keeps some columns encrypted), the loaded rows' values of those
 * columns are encrypted in one batch first; a record left as is then goes as its text with each
 * such field replaced by its envelope — the record's other bytes untouched, the run of adjacent
 * records unbroken — and an encoded record carries the envelope in its cell.
 */
export function passThroughBatch(
  batch: Batch,
  checks: readonly RowCheck[],
  reject: RejectFn,
  encode: (rows: Cell[][]) => string,
  /** Told the file line of each record the text loads, in order. */
  onLoaded?: (line: number) => void,
  encrypted?: { sealer: Sealer | undefined; dialect: CopyDialect },
): { text: string; rows: number; rejected: number } {
  const raw = batch.raw;
  const { rows, lines } = batch;
  const verdicts = new Uint8Array(rows.length);
  let loaded = 0;
  let rejected = 0;
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i]!;
    let verdict: RowVerdict = ROW_SAME;
    for (let s = 0; s < checks.length; s++) {
      const v = checks[s]!(row, lines[i]!, reject);
      if (v === ROW_REJECTED) {
        verdict = v;
        break;
      }
      if (v === ROW_CHANGED) verdict = v;
    }
    verdicts[i] = verdict;
    if (verdict === ROW_REJECTED) {
      rejected++;
      continue;
    }
    loaded++;
    onLoaded?.(lines[i]!);
  }
  const sealer = encrypted?.sealer;
  const sealed = sealer?.indexes ?? [];
  // The loaded rows' values of the encrypted columns, sealed in one call.
  if (sealer)
    sealRows(
      sealer,
      rows.filter((_, i) => verdicts[i] !== ROW_REJECTED),
    );
  // An envelope is quoted only in a dialect whose delimiter or quote it could hold.
  const { delimiter: ds, quote: qs } = encrypted?.dialect ?? { delimiter: ',', quote: '"' };
  const quoteEnvelopes = ENVELOPE_PUNCTUATION.includes(ds) || ENVELOPE_PUNCTUATION.includes(qs);
  const Q = qs.charCodeAt(0);
  let text = '';
  // The run of adjacent records not yet appended: [from, to) in raw.text.
  let from = -1;
  let to = -1;
  const src = raw?.text ?? '';
  const offset = raw?.offset ?? 0;
  for (let i = 0; i < rows.length; i++) {
    const verdict = verdicts[i]!;
    if (verdict === ROW_REJECTED) continue;
    const row = rows[i]!;
    const start = raw === undefined ? -1 : raw.starts[i]! - offset;
    if (verdict === ROW_SAME && start >= 0) {
      const end = raw!.ends[i]! - offset;
      // Extend the run over an LF that ends the previous record; any other break starts a new one
      // (COPY wants one kind of line ending, and the encoded records end in LF).
      if (from >= 0 && start === to + 1 && src.charCodeAt(to) === LF) to = end;
      else {
        if (from >= 0) text += src.slice(from, to) + '\n';
        from = start;
        to = end;
      }
      if (sealed.length > 0) {
        // Each sealed field's text (quoted or not) is replaced by its envelope.
        let p = start;
        let f = 0;
        for (let j = 0; j < sealed.length; j++) {
          const k = sealed[j]!;
          const v = row[k];
          if (!isFilled(v)) continue;
          for (; f < k; f++) p = fieldEnd(src, p, end, ds, Q) + 1;
          const e = fieldEnd(src, p, end, ds, Q);
          text += src.slice(from, p) + (quoteEnvelopes ? qs + v.replaceAll(qs, qs + qs) + qs : v);
          from = e;
          p = e + 1;
          f = k + 1;
        }
      }
      continue;
    }
    if (from >= 0) {
      text += src.slice(from, to) + '\n';
      from = -1;
    }
    text += encode([row]);
  }
  if (from >= 0) text += src.slice(from, to) + '\n';
  return { text, rows: loaded, rejected };
}

/**
 * Where the field starting at `p` ends (its delimiter, or `end`) in a record COPY reads as the
 * tokenizer did: a quoted field runs to its closing quote (doubled quotes inside), an unquoted one
 * holds no quote.
 */
function fieldEnd(s: string, p: number, end: number, d: string, Q: number): number {
  if (p < end && s.charCodeAt(p) === Q) {
    let j = p + 1;
    for (;;) {
      j = s.indexOf(s[p]!, j);
      if (j < 0 || j >= end) return end;
      if (j + 1 < end && s.charCodeAt(j + 1) === Q) {
        j += 2;
        continue;
      }
      return j + 1;
    }
  }
  const e = s.indexOf(d, p);
  return e < 0 || e > end ? end : e;
}
