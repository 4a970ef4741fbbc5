import cliProgress from 'cli-progress';
import type { RunProgress } from '../jobs/execute.js';

/**
 * What `erp run` and `erp validate` show while a run goes, on stderr:
 *
 *   step 2/3 pipeline items: running                       a line as each step starts and ends
 *    step 2/3 items.csv |██████░░░░| 61% | 48,200 rows | 9,870 rows/s | 3s left     on a terminal
 *   step 2/3 pipeline items: items.csv 61% of 4.1 MB, 48,200 rows, 9,870 rows/s, 3s left   elsewhere,
 *                                                          one line every `every` ms
 *
 * The percentage is of the file's bytes read; the time left follows from it. A step whose size is
 * not known (a SQL step, an EDI step) shows its rows or documents and the time it has run.
 */
export interface StepReporter {
  update(p: RunProgress): void;
  stop(): void;
}

export interface StepReporterOptions {
  /** Where the lines and the bar go. @defaultValue process.stderr */
  stream?: NodeJS.WriteStream;
  /** Off a terminal, the least time between two progress lines of a running step, in ms. */
  every: number;
}

/** The running step's figures. */
interface Live {
  p: RunProgress;
  startedAt: number;
}

const count = (n: number): string => n.toLocaleString('en-US');

function size(bytes: number): string {
  const units = ['B', 'KB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(1)} ${units[u]}`;
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The figures of a running step: percentage, rows, rows/s and time left when the size is known. */
function figures(live: Live, now: number): { share: number | null; parts: string[] } {
  const { p } = live;
  const elapsed = Math.max((now - live.startedAt) / 1000, 0.001);
  const rows = p.rows ?? 0;
  const parts = [`${count(rows)} rows`, `${count(Math.round(rows / elapsed))} rows/s`];
  if (p.bytesTotal && p.bytesTotal > 0 && p.bytes !== undefined) {
    const share = Math.min(p.bytes / p.bytesTotal, 1);
    const left = share > 0 ? (elapsed * (1 - share)) / share : null;
    parts.push(left === null ? 'time left unknown' : `${duration(left)} left`);
    return { share, parts };
  }
  parts.push(`${duration(elapsed)} so far`);
  return { share: null, parts };
}

export function stepReporter(opts: StepReporterOptions): StepReporter {
  const stream = opts.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  let live: Live | null = null;
  let lastLine = '';
  let lastPlainAt = 0;
  const bar = tty
    ? new cliProgress.SingleBar({
        stream,
        hideCursor: true,
        barCompleteChar: '█',
        barIncompleteChar: '░',
        // Redrawn from our own figures: the bar's value is the share of the file read, in thousandths.
        format: (options, params, payload: { head: string; tail: string; sized: boolean }) =>
          payload.sized
            ? ` ${payload.head} |${cliProgress.Format.BarFormat(params.progress, options)}| ${payload.tail}`
            : ` ${payload.head} | ${payload.tail}`,
      })
    : null;
  let barActive = false;

  const payload = (l: Live, now: number): { head: string; tail: string; sized: boolean; share: number } => {
    const f = figures(l, now);
    const file = l.p.file ? ` ${l.p.file}` : ` ${l.p.kind} ${l.p.name}`;
    const pct = f.share === null ? [] : [`${Math.floor(f.share * 100)}%`];
    return {
      head: `step ${l.p.step}/${l.p.steps}${file}`,
      tail: [...pct, ...f.parts].join(' | '),
      sized: f.share !== null,
      share: f.share ?? 0,
    };
  };

  const stopBar = (): void => {
    if (barActive) bar!.stop();
    barActive = false;
  };

  const showLive = (l: Live): void => {
    const now = Date.now();
    if (bar) {
      const shown = payload(l, now);
      const value = Math.round(shown.share * 1000);
      if (!barActive) {
        bar.start(1000, value, shown);
        barActive = true;
      } else bar.update(value, shown);
      return;
    }
    if (now - lastPlainAt < opts.every) return;
    lastPlainAt = now;
    const f = figures(l, now);
    const what =
      f.share !== null && l.p.bytesTotal
        ? `${l.p.file ?? ''} ${Math.floor(f.share * 100)}% of ${size(l.p.bytesTotal)}, `.trimStart()
        : '';
    stream.write(`step ${l.p.step}/${l.p.steps} ${l.p.kind} ${l.p.name}: ${what}${f.parts.join(', ')}\n`);
  };

  return {
    update(p) {
      if (p.state === 'running' && (p.rows !== undefined || p.bytes !== undefined)) {
        if (!live || live.p.step !== p.step || live.p.file !== p.file) {
          // A step's first plain line comes after `every`, not at once: a short step prints none.
          if (!live || live.p.step !== p.step) lastPlainAt = Date.now();
          live = { p, startedAt: Date.now() };
        }
        live.p = p;
        showLive(live);
        return;
      }
      const line = `step ${p.step}/${p.steps} ${p.kind} ${p.name}: ${p.state}${p.message ? ` (${p.message})` : ''}`;
      if (line === lastLine) return;
      lastLine = line;
      stopBar();
      stream.write(line + '\n');
      if (p.state === 'running') {
        live = { p, startedAt: Date.now() };
        // The first plain line comes after `every`, not at once: a short step prints none.
        lastPlainAt = Date.now();
      } else live = null;
    },
    stop: stopBar,
  };
}
