/**
 * The stage model. A pipeline is
 *
 *   source ──files──► format.read ──batches──► validate ──► transform ──► sink (one transaction per file)
 *                                      │            │             │
 *                                      └────────────┴─────────────┴──► rejects (file, line, field, reason)
 *
 * Rows travel in batches of arrays (not objects): a row is the list of its cells in column order,
 * which keeps the per-row cost of a load close to the cost of tokenizing it.
 */
import type { Readable, Writable } from 'node:stream';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { z } from 'zod';

/** A cell: text as read (or normalised by validation), or null. */
export type Cell = string | null;

/** Rows that travel together, each with the physical line (or sheet row) it came from. */
export interface Batch {
  /** Column names of `rows`, the same array for every batch of a file. */
  columns: readonly string[];
  rows: Cell[][];
  /** `lines[i]` is where `rows[i]` starts in the source file. */
  lines: number[];
  /** The records' own text, when the format can hand it to COPY as is (CSV); see {@link RawRecords}. */
  raw?: RawRecords;
}

/**
 * Where each row of a batch stands in the text it was read from: record i is
 * `text.slice(starts[i] - offset, ends[i] - offset)` (its line break excluded), or `starts[i]` is -1
 * when PostgreSQL's CSV COPY would not read that text as the same fields.
 */
export interface RawRecords {
  text: string;
  offset: number;
  starts: number[];
  ends: number[];
}

/** The CSV dialect of a file whose records may go to `COPY … (FORMAT csv)` as they are. */
export interface CopyDialect {
  delimiter: string;
  quote: string;
}

/** A row that could not be loaded, and why. */
export interface Reject {
  file: string;
  /** Physical line (CSV), row number (XLSX) or segment number (X12); null when unknown. */
  line: number | null;
  /** Field name, or null for a structural error of the whole row. */
  field: string | null;
  value: string | null;
  reason: string;
}

/** Where a stage reports rejected rows. */
export type RejectFn = (reject: Reject) => void;

/** What every stage factory receives. */
export interface StageContext {
  /** Project root: pipelines/, mappings/, sql/ and relative paths resolve against it. */
  home: string;
  pool: pg.Pool;
  log: Logger;
  signal: AbortSignal;
  /**
   * The run's directory for temporary files (ERP_DATA_DIR/tmp/<run>, see src/runs/temp.ts), set once
   * the run is known; the system temp directory when unset.
   */
  tempDir?: string;
  /** Directories input files may come from (ERP_HOME and ERP_INPUT_DIRS); `home` alone when unset. */
  inputRoots?: readonly string[];
}

/** A file handed from a source to a format, readable from local disk. */
export interface SourceFile {
  /** Name used in messages and reject reports. */
  name: string;
  /** Local path to read. */
  path: string;
  size: number;
  /** SHA-256 of the content when the source already computed it (an SFTP download does). */
  sha256?: string;
  /**
   * Called once the file's outcome is final (its transaction committed or rolled back): an SFTP
   * source archives or moves the remote file here; only then is the input acknowledged.
   */
  settle?(outcome: FileOutcome): Promise<void>;
}

export interface FileOutcome {
  status: 'loaded' | 'skipped' | 'failed' | 'validated';
  message?: string;
}

/** Lists the files a run processes. */
export interface Source {
  files(): AsyncIterable<SourceFile>;
}

/** Parses one file into batches; structural problems become rejects, not exceptions. */
export interface FormatReader {
  read(input: Readable, fileName: string, reject: RejectFn): AsyncIterable<Batch>;
  /** Set when the reader's batches carry {@link Batch.raw}: the dialect COPY must be told. */
  copyDialect?: CopyDialect;
}

/** What a {@link RowStep.compileCheck} function did to a row. */
export const ROW_REJECTED = 0;
/** The row is as it was read (or PostgreSQL reads the new values the same way). */
export const ROW_SAME = 1;
/** A value of the row was normalised in place. */
export const ROW_CHANGED = 2;
export type RowVerdict = typeof ROW_REJECTED | typeof ROW_SAME | typeof ROW_CHANGED;

/** A row-level step: returns the new row, or null after reporting a reject. */
export interface RowStep {
  /** Output columns, given the input columns; called once per file. */
  columns(input: readonly string[]): readonly string[];
  /** Compiles the per-row function for a file's columns. */
  compile(
    input: readonly string[],
    fileName: string,
  ): (row: Cell[], line: number, reject: RejectFn) => Cell[] | null;
  /**
   * Only for steps that keep their input columns and edit values in place (validate): the same
   * work as `compile`, saying whether the row was rejected, left as it was read, or changed. A row
   * every step left as is may be loaded as the text it came in. `targetTypes[i]` is the PostgreSQL
   * type name (`pg_type.typname`) of column i of the target table, so that a normalisation the
   * column's own input function makes too (`yes` → `t` into a `bool`) counts as leaving the row as is.
   */
  compileCheck?(
    input: readonly string[],
    fileName: string,
    targetTypes: readonly string[],
  ): (row: Cell[], line: number, reject: RejectFn) => RowVerdict;
}

/**
 * Seals (encrypts) values for the columns of a load that the target keeps encrypted at rest
 * (src/compliance/encrypted-columns.ts): `indexes` are those columns among the loaded ones.
 */
export interface Sealer {
  readonly indexes: readonly number[];
  /** Envelopes of `values` (none of them empty), in order. */
  seal(values: string[]): string[];
}

/** Writes a file's rows inside the file's transaction. */
export interface SinkWriter {
  write(rows: Cell[][]): Promise<void>;
  /**
   * Only for a writer opened with a {@link CopyDialect}: CSV text of `rows` records in that dialect,
   * each ending in LF, written as is — the values of the {@link sealer}'s columns already sealed.
   */
  writeText(text: string, rows: number): Promise<void>;
  /**
   * Set when the target keeps some of the loaded columns encrypted at rest: their indexes, and what
   * encrypts their values. `write` encrypts them itself; text for `writeText` must hold them sealed.
   */
  readonly sealer?: Sealer;
  /** PostgreSQL type name (`pg_type.typname`) of each loaded column, in order. */
  readonly columnTypes: readonly string[];
  /** Finishes the load; returns rows written. */
  end(): Promise<number>;
  /** Abandons the load so the transaction can be rolled back (sends CopyFail for a COPY in progress). */
  abort(reason: Error): Promise<void>;
}

export interface Sink {
  /** Target description for plans and logs. */
  describe(): string;
  /**
   * Starts writing a file's rows with `client`, which holds the file's open transaction. With
   * `csv`, the load reads CSV in that dialect (rows given to `write` are encoded so) and
   * `writeText` takes records as they were read. `before` is SQL (no parameters, returning no
   * rows) to run in the same message ahead of the load's first statement: the caller's BEGIN and
   * ledger row, sent with the COPY instead of a round trip of their own. Its failure fails the load
   * before a row is written.
   */
  open(
    client: pg.PoolClient,
    columns: readonly string[],
    csv?: CopyDialect,
    before?: string,
  ): Promise<SinkWriter>;
}

/**
 * Export side. A record source (PostgreSQL query) yields batches directly; a format writer turns
 * them into bytes; a file sink puts those bytes somewhere atomically.
 *
 *   source postgres ──batches──► format.write ──bytes──► sink file | sftp (temp name, then rename)
 */

/** SQL-ish type of a column of a record source, so writers can type their cells. */
export type ColumnType = 'text' | 'int' | 'decimal' | 'date' | 'timestamp' | 'bool';

/** A source that yields rows rather than files (an export's query). */
export interface RecordSource {
  /** Column names and types; known once the query is described. */
  open(): Promise<{
    columns: readonly string[];
    types: readonly ColumnType[];
    batches: AsyncIterable<Batch>;
    /** The same rows as CSV written by PostgreSQL; absent when the rows must pass through the client. */
    copy?: CsvCopySource;
  }>;
}

/**
 * A query's rows as PostgreSQL's `COPY … TO STDOUT (FORMAT csv)` writes them, for a writer whose
 * output the server can produce byte for byte (src/csv/copy-export.ts). Reading it replaces reading
 * the batches.
 */
export interface CsvCopySource {
  /** PostgreSQL type OID of each result column. */
  typeOids: readonly number[];
  /**
   * Runs the COPY with one SQL expression per column over the query's result (named `erp_export`),
   * no header, LF line ends, NULL as an empty field. `rowCount` is the server's count once the bytes
   * have been read to the end.
   */
  stream(
    select: readonly string[],
    delimiter: string,
  ): { chunks: AsyncIterable<Buffer>; rowCount(): number | null };
}

/** Serialises batches into a byte stream (CSV, XLSX, X12). */
export interface FormatWriter {
  /** File extension without the dot, used for default output names. */
  extension: string;
  /** Writes every batch to `out`, respecting back-pressure; resolves with the rows written once `out` is finished. */
  write(
    columns: readonly string[],
    types: readonly ColumnType[],
    batches: AsyncIterable<Batch>,
    out: Writable,
  ): Promise<number>;
  /**
   * When PostgreSQL's CSV of these columns is byte for byte what `write` would produce: a function
   * that writes the file from `copy` instead (calling `onRows` with the rows so far); else undefined.
   */
  fromCopy?(
    columns: readonly string[],
    copy: CsvCopySource,
  ): ((out: Writable, onRows: (n: number) => void) => Promise<number>) | undefined;
}

/** Where an export's bytes go: written under a temporary name, renamed into place on commit. */
export interface FileSink {
  describe(): string;
  /** Opens the output file `name` (a base name); nothing is visible at the destination before `commit`. */
  open(name: string): Promise<{
    stream: Writable;
    /** Renames the finished temporary file into place; refuses to overwrite unless configured to. */
    commit(): Promise<string>;
    /** Removes the temporary file. */
    abort(): Promise<void>;
  }>;
}

/**
 * A stage kind: its `kind:` key in a pipeline definition, the part it plays, the zod schema of its
 * options, and its factory. src/stages/registry.ts lists every kind explicitly (nothing registers
 * itself by being imported); the pipeline schema, FILE_SOURCES and TABLE_SINKS derive from it.
 */
export interface StageKind<Role extends StageRole, Schema extends z.ZodType<{ kind: string }>, Out> {
  kind: z.output<Schema>['kind'];
  role: Role;
  schema: Schema;
  create(config: z.output<Schema>, input: StageInput): Out;
  /** One line for the README's stage table. */
  summary: string;
}

/**
 * The part a stage kind plays: a source of files (an import) or of rows (an export); a format that
 * reads files, writes them, or both; a sink that loads a table (an import) or writes a file (an export).
 */
export type StageRole =
  'file source' | 'row source' | 'reader' | 'writer' | 'reader and writer' | 'table sink' | 'file sink';

/** What a stage factory gets besides its options. */
export interface StageInput {
  ctx: StageContext;
  /** Parameters of the run (an export's query and output name). */
  params: Record<string, unknown>;
}
