import type { Queue, QueueEvents } from 'bullmq';
import type pg from 'pg';
import type { Logger } from 'pino';
import type { RunJobData } from '../runner/queue.js';
import type { Asset } from './layout.js';

/** What every console page handler needs. */
export interface ConsoleContext {
  pool: pg.Pool;
  log: Logger;
  /** Project root: jobs/, pipelines/, partners/. */
  home: string;
  /** Where reject reports are (ERP_DATA_DIR). */
  dataDir: string;
  /** The run queue, or null when Redis is not reachable (pages still show; actions that start runs refuse). */
  queue: Queue<RunJobData> | null;
  /** BullMQ's event stream, for live progress on the run page; null without Redis. */
  events: QueueEvents | null;
  assets: Map<string, Asset>;
}
