/* global setInterval, setImmediate */
// Loaded with `node --import` into a chaos worker: throws an exception nothing catches once the
// file named by ERP_CHAOS_CRASH_FILE appears, to exercise the worker's last-resort handler.
import { existsSync, rmSync } from 'node:fs';

const file = process.env.ERP_CHAOS_CRASH_FILE;
if (file) {
  setInterval(() => {
    if (!existsSync(file)) return;
    rmSync(file);
    setImmediate(() => {
      throw new Error('injected fault');
    });
  }, 20).unref();
}
