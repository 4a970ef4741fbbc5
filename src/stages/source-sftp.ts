import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { makeTempIn } from '../runs/temp.js';
import { loadAnyPartner, resolveEndpoint } from '../partners/profile.js';
import type { Sftp } from '../sftp/index.js';
import type { FileOutcome, Source, SourceFile, StageContext, StageKind } from './types.js';

/**
 * `source: { kind: sftp }` — files a partner drops on an SFTP server.
 *
 *   list ready files (size stable / .done marker) ─► download to a temp file (size + SHA-256 checked)
 *     ─► the runner loads it in one transaction ─► settle: loaded or skipped → archive dir
 *                                                          failed → error dir + <name>.error.txt
 *
 * The remote file moves only after the load's outcome is final, so a crash before the commit
 * leaves it in the inbox for the next run; a file already in the ledger is archived unloaded.
 */
export const sftpSourceSchema = z
  .object({
    kind: z.literal('sftp'),
    /** A partner declared in partners/ (its endpoint, pinned host keys and directories). */
    partner: z.string().min(1),
    /** Which of the partner's directories to read. */
    dir: z.enum(['inbox', 'outbox']).default('inbox'),
    /** Which files to take, e.g. `timesheets-*.csv`. */
    glob: z.string().min(1).default('*'),
  })
  .strict();
export type SftpSourceConfig = z.infer<typeof sftpSourceSchema>;

export function createSftpSource(config: SftpSourceConfig, ctx: StageContext): Source {
  return {
    async *files(): AsyncIterable<SourceFile> {
      // SFTP (ssh2, the transfer metrics) loads when a pipeline reads from it, not with the stage list.
      const { connectSftp, downloadVerified, endSftp, listReady, moveRemote, moveToError, withRetry } =
        await import('../sftp/index.js');
      const partner = await loadAnyPartner(ctx.home, config.partner);
      const endpoint = resolveEndpoint(partner);
      const retry = {
        attempts: endpoint.retry.attempts,
        baseDelayMs: endpoint.retry.base_delay_ms,
        signal: ctx.signal,
        log: ctx.log,
      };
      const local = ctx.tempDir
        ? await makeTempIn(ctx.tempDir, 'sftp-')
        : await mkdtemp(path.join(tmpdir(), 'erp-sftp-'));
      let client: Sftp | null = null;
      const connected = async (): Promise<Sftp> =>
        (client ??= await connectSftp(endpoint, { log: ctx.log, signal: ctx.signal, partner: partner.name }));
      const reset = async (): Promise<void> => {
        if (client) await endSftp(client).catch(() => undefined);
        client = null;
      };
      try {
        const dir = endpoint[config.dir];
        const listed = await withRetry(
          async () => {
            try {
              return await listReady(await connected(), dir, config.glob, endpoint.ready, {
                signal: ctx.signal,
                log: ctx.log,
              });
            } catch (err) {
              await reset();
              throw err;
            }
          },
          { ...retry, what: `list ${dir}` },
        );
        for (const remote of listed) {
          // A transfer cut short is retried on a new connection; a partial download is never returned.
          const got = await withRetry(
            async () => {
              try {
                return await downloadVerified(await connected(), remote.path, local, remote.size, {
                  signal: ctx.signal,
                });
              } catch (err) {
                await reset();
                throw err;
              }
            },
            { ...retry, what: `download ${remote.path}` },
          );
          yield {
            name: `sftp:${partner.name}${remote.path}`,
            path: got.localPath,
            size: got.size,
            sha256: got.sha256,
            settle: async (outcome: FileOutcome) => {
              try {
                if (outcome.status === 'validated') return;
                const c = await connected();
                if (outcome.status === 'failed') {
                  await moveToError(
                    c,
                    remote.path,
                    endpoint.error,
                    remote.name,
                    `${remote.name}: ${outcome.message ?? 'failed'}\n`,
                  );
                } else {
                  await moveRemote(c, remote.path, endpoint.archive, remote.name);
                }
                if (remote.marker) await c.delete(remote.marker).catch(() => undefined);
              } finally {
                await rm(got.localPath, { force: true });
              }
            },
          };
        }
      } finally {
        await reset();
        await rm(local, { recursive: true, force: true });
      }
    },
  };
}

/** `source: { kind: sftp }`, for src/stages/registry.ts. */
export const sftpSource: StageKind<'file source', typeof sftpSourceSchema, Source> = {
  kind: 'sftp',
  role: 'file source',
  schema: sftpSourceSchema,
  create: (config, { ctx }) => createSftpSource(config, ctx),
  summary: "files downloaded from a partner's SFTP inbox, archived after the commit",
};
