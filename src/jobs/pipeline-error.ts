/**
 * The error of a pipeline step whose files failed, each named with its own message (which may name
 * it already). The run records it; `erp run` tells it once, under the files it names. A module of
 * its own so the CLI's output formatting reads it without loading the executor.
 */
export function failedPipelineError(
  name: string,
  files: readonly { file: string; status: string; message: string | null }[],
): string | null {
  const failed = files.filter((f) => f.status === 'failed');
  if (failed.length === 0) return null;
  const why = failed.map((f) =>
    f.message?.includes(f.file) ? f.message : `${f.file}: ${f.message ?? 'failed'}`,
  );
  return `pipeline ${name}: ${why.join('; ')}`;
}
