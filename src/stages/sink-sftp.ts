import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { makeTempIn } from '../runs/temp.js';
import { loadAnyPartner, resolveEndpoint } from '../partners/profile.js';
import { checkOutputName, renderOutputName, type LocalFileSink, type OutputNameValues } from './sink-file.js';
import type { FileSink, StageContext, StageKind } from './types.js';

/**
 * `sink: { kind: sftp }` — an export delivered to a partner's SFTP directory.
 *
 *   bytes ─► local temporary file ─► commit: upload as .<name>.<random>.part, then rename to <name>
 *
 * The partner never sees a partial file under the final name; an existing file is not replaced
 * unless `overwrite` says so. A transfer cut short is retried on a new connection.
 */
export const sftpSinkSchema = z
  .object({
    kind: z.literal('sftp'),
    /** A partner declared in partners/. */
    partner: z.string().min(1),
    /** Which of the partner's directories receives the file. */
    dir: z.enum(['outbox', 'inbox']).default('outbox'),
    /** File name template: `{date}`, `{period}`, `{run_id}`, `{ext}`. */
    name: z.string().min(1),
    /** Replace a file of the same name. @defaultValue false */
    overwrite: z.boolean().default(false),
  })
  .strict();
export type SftpSinkConfig = z.infer<typeof sftpSinkSchema>;

export function createSftpSink(
  config: SftpSinkConfig,
  ctx: StageContext,
): FileSink & { outputName(values: OutputNameValues): string } {
  return {
    describe: () => `sftp ${config.partner}:${config.dir}/${config.name}`,
    outputName: (values) => renderOutputName(config.name, values),
    async open(name) {
      const finalName = checkOutputName(name);
      const partner = await loadAnyPartner(ctx.home, config.partner);
      const endpoint = resolveEndpoint(partner);
      const dir = ctx.tempDir
        ? await makeTempIn(ctx.tempDir, 'out-')
        : await mkdtemp(path.join(tmpdir(), 'erp-out-'));
      const localPath = path.join(dir, finalName);
      const stream = createWriteStream(localPath);
      const finished = new Promise<void>((resolve, reject) =>
        stream.on('finish', resolve).on('error', reject),
      );
      return {
        stream,
        async commit() {
          await finished;
          // SFTP (ssh2, the transfer metrics) loads when a pipeline writes to it, not with the stage list.
          const { connectSftp, endSftp, uploadAtomic, withRetry } = await import('../sftp/index.js');
          try {
            return await withRetry(
              async () => {
                const client = await connectSftp(endpoint, {
                  log: ctx.log,
                  signal: ctx.signal,
                  partner: config.partner,
                });
                try {
                  const remote = await uploadAtomic(client, localPath, endpoint[config.dir], finalName, {
                    overwrite: config.overwrite,
                    signal: ctx.signal,
                  });
                  return `sftp:${partner.name}${remote}`;
                } finally {
                  await endSftp(client);
                }
              },
              {
                attempts: endpoint.retry.attempts,
                baseDelayMs: endpoint.retry.base_delay_ms,
                signal: ctx.signal,
                log: ctx.log,
                what: `upload ${finalName}`,
              },
            );
          } finally {
            await rm(dir, { recursive: true, force: true });
          }
        },
        async abort() {
          stream.destroy();
          await rm(dir, { recursive: true, force: true });
        },
      };
    },
  };
}

/** `sink: { kind: sftp }`, for src/stages/registry.ts. */
export const sftpSink: StageKind<'file sink', typeof sftpSinkSchema, LocalFileSink> = {
  kind: 'sftp',
  role: 'file sink',
  schema: sftpSinkSchema,
  create: (config, { ctx }) => createSftpSink(config, ctx),
  summary: "a file uploaded atomically to a partner's SFTP outbox",
};
