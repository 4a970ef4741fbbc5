import { Writable } from 'node:stream';
import { describeError, isPermanent } from '../errors.js';
import { addRunCounts, recordRunFile } from '../runs/store/files.js';
import { finishRun } from '../runs/store/runs.js';
import type { Batch, FileSink, FormatWriter, RecordSource } from '../stages/types.js';
import type { PipelineDefinition } from './definition.js';
import { pipelineRun } from './pipeline-run.js';
import { type RunPipelineOptions } from './pipeline-run.js';
import { failedFile, type PipelineResult } from './result.js';
import { type AppContext } from '../app.js';

/**
 * Runs an export pipeline: a query's rows streamed through a format writer into a file sink.
 *
 *   source postgres (COPY … TO STDOUT) ──batches──► format.write ──bytes──► sink: temporary name
 *                                                                             └── commit: rename into place
 *
 * Nothing is visible at the destination until the whole file is written; a failure or a kill
 * leaves at most a temporary file, never a partial one under the final name.
 */
export interface ExportStages {
  source: RecordSource;
  format: FormatWriter;
  sink: FileSink;
  /** The output's base name, from the sink's template. */
  outputName: string;
}

export async function runExport(
  app: AppContext,
  def: PipelineDefinition,
  /** Builds the stages once the run id (which output names may use) is known. */
  build: (runId: number | null) => ExportStages,
  opts: RunPipelineOptions = {},
): Promise<PipelineResult> {
  const dryRun = opts.dryRun ?? false;
  const { runId, ownRun } = await pipelineRun(app, def, opts);
  let stages: ExportStages;
  try {
    stages = build(runId);
  } catch (err) {
    if (ownRun && runId !== null) await finishRun(app.pool, runId, 'failed', describeError(err), 'user');
    throw err;
  }
  const file = failedFile(stages.outputName, '');
  const result: PipelineResult = {
    runId,
    pipeline: def.name,
    dryRun,
    status: 'succeeded',
    files: [file],
    rowsRead: 0,
    rowsLoaded: 0,
    rowsRejected: 0,
    error: null,
  };
  try {
    const { columns, types, batches, copy } = await stages.source.open();
    const progress = (n: number): void => {
      opts.signal?.throwIfAborted();
      file.rowsRead = n;
      opts.onProgress?.({ file: file.file, fileIndex: 0, bytesRead: 0, bytesTotal: 0, rowsRead: n });
    };
    // The server writes the file itself when its output would be the writer's, byte for byte.
    const fromCopy = copy ? stages.format.fromCopy?.(columns, copy) : undefined;
    const write = (out: Writable): Promise<number> =>
      fromCopy
        ? fromCopy(out, progress)
        : stages.format.write(columns, types, countRows(batches, progress), out);
    if (dryRun) {
      // Run the query and the writer into nothing, so every value is checked and no file appears.
      const sinkhole = new Writable({ write: (_c, _e, cb) => cb() });
      file.rowsLoaded = await write(sinkhole);
      file.status = 'validated';
      file.message = `would write ${stages.outputName}`;
    } else {
      const out = await stages.sink.open(stages.outputName);
      try {
        file.rowsLoaded = await write(out.stream);
        file.file = await out.commit();
        file.status = 'loaded';
      } catch (err) {
        await out.abort().catch(() => undefined);
        throw err;
      }
    }
  } catch (err) {
    file.status = 'failed';
    file.message = describeError(err);
    file.transient = !isPermanent(err) && !opts.signal?.aborted;
    result.status = opts.signal?.aborted ? 'cancelled' : 'failed';
    result.error = file.message;
  }
  result.rowsRead = file.rowsRead;
  result.rowsLoaded = file.rowsLoaded;
  if (runId !== null) {
    await recordRunFile(
      app.pool,
      {
        runId,
        pipeline: def.name,
        file: file.file,
        sha256: null,
        size: null,
        status: file.status,
        rowsRead: file.rowsRead,
        rowsLoaded: file.rowsLoaded,
        rowsRejected: 0,
        rejectReport: null,
        message: file.message,
      },
      [],
    );
    await addRunCounts(app.pool, runId, { rowsRead: file.rowsRead, rowsLoaded: file.rowsLoaded });
    if (ownRun) await finishRun(app.pool, runId, result.status, result.error);
  }
  return result;
}

/** Passes batches through, counting rows (`onCount` stops an aborted run). */
async function* countRows(
  batches: AsyncIterable<Batch>,
  onCount: (n: number) => void,
): AsyncGenerator<Batch> {
  let n = 0;
  for await (const b of batches) {
    n += b.rows.length;
    onCount(n);
    yield b;
  }
}
