import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { connectSftp, downloadVerified, endSftp } from '../src/sftp/index.js';
import { startSshd } from '../test/helpers/sshd.js';

/**
 * Download speed of {@link downloadVerified} (which also hashes and checks the size) against
 * OpenSSH's own `sftp` client fetching the same file from the same loopback sshd in the same run:
 * the tool users would otherwise script. Each client runs twice, interleaved; the better run of
 * each counts. `peakRssMb` is this process's peak resident memory sampled during our downloads:
 * it must stay flat whatever the file size.
 *
 * Run: `npx tsx benchmarks/sftp.ts [sizeMb]`
 */

const run = promisify(execFile);
const ROUNDS = 2;

export async function benchSftp(
  sizeMb = 200,
): Promise<{ ourMBps: number; opensshMBps: number; ratio: number; peakRssMb: number }> {
  const sshd = await startSshd();
  const work = await mkdtemp(path.join(os.tmpdir(), 'erp-bench-sftp-'));
  try {
    const size = sizeMb * 1024 * 1024;
    const remote = path.join(sshd.root, 'inbox', 'bench.bin');
    // Random bytes, so no compression anywhere can flatter either client.
    async function* blocks(): AsyncGenerator<Buffer> {
      for (let n = 0; n < size; n += 1024 * 1024) yield randomBytes(Math.min(1024 * 1024, size - n));
    }
    await pipeline(Readable.from(blocks()), createWriteStream(remote));

    const knownHosts = path.join(work, 'known_hosts');
    await writeFile(knownHosts, `[${sshd.host}]:${sshd.port} ${sshd.hostPublicKey}\n`);
    const batch = path.join(work, 'batch');
    const opensshOut = path.join(work, 'openssh.bin');
    await writeFile(batch, `get "${remote}" "${opensshOut}"\n`);

    const log = pino({ level: 'silent' });
    let ourBest = Infinity;
    let opensshBest = Infinity;
    let peakRss = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const ourDir = await mkdtemp(path.join(work, 'ours-'));
      const client = await connectSftp(sshd.endpoint(), { log });
      const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage.rss())), 20);
      try {
        const t0 = performance.now();
        const got = await downloadVerified(client, remote, ourDir, size);
        ourBest = Math.min(ourBest, performance.now() - t0);
        if (got.size !== size)
          throw new Error(`downloadVerified returned ${got.size} bytes, expected ${size}`);
      } finally {
        clearInterval(sampler);
        await endSftp(client);
        await rm(ourDir, { recursive: true, force: true });
      }

      const t1 = performance.now();
      // prettier-ignore
      await run('sftp', [
        '-q', '-b', batch, '-i', sshd.privateKeyPath, '-P', String(sshd.port),
        '-o', 'StrictHostKeyChecking=yes', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null',
        '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', `${sshd.user}@${sshd.host}`,
      ]);
      opensshBest = Math.min(opensshBest, performance.now() - t1);
      if ((await stat(opensshOut)).size !== size) throw new Error('OpenSSH sftp fetched a different size');
      await rm(opensshOut, { force: true });
    }
    const ourMBps = sizeMb / (ourBest / 1000);
    const opensshMBps = sizeMb / (opensshBest / 1000);
    return {
      ourMBps: Math.round(ourMBps * 10) / 10,
      opensshMBps: Math.round(opensshMBps * 10) / 10,
      ratio: Math.round((ourMBps / opensshMBps) * 100) / 100,
      peakRssMb: Math.round(peakRss / (1024 * 1024)),
    };
  } finally {
    await sshd.stop();
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const sizeMb = process.argv[2] ? Number(process.argv[2]) : 200;
  const result = await benchSftp(sizeMb);
  console.log(`sftp download of ${sizeMb} MB over loopback`);
  console.log(`  erp downloadVerified: ${result.ourMBps} MB/s (size check + SHA-256 included)`);
  console.log(`  OpenSSH sftp -b:      ${result.opensshMBps} MB/s`);
  console.log(`  ratio:                ${result.ratio}`);
  console.log(`  peak RSS:             ${result.peakRssMb} MB`);
}
