import type { FastifyInstance } from 'fastify';
import type { Queue } from 'bullmq';
import type pg from 'pg';
import type { RunJobData } from '../runner/queue.js';
import { recordAction } from './actions.js';
import { requireRole } from './auth.js';

/**
 * bull-board (what BullMQ users expect to see of their queue), mounted at /queue for admins only.
 * Its API calls that change the queue (retry, clean, promote…) are recorded as console actions.
 * bull-board, its UI and the Fastify plugins it uses load only when the console starts with a queue.
 */
export async function mountQueueBoard(
  app: FastifyInstance,
  pool: pg.Pool,
  queue: Queue<RunJobData>,
): Promise<void> {
  const { createBullBoard } = await import('@bull-board/api');
  const { BullMQAdapter } = await import('@bull-board/api/bullMQAdapter');
  const { FastifyAdapter } = await import('@bull-board/fastify');
  const adapter = new FastifyAdapter();
  adapter.setBasePath('/queue');
  createBullBoard({
    queues: [new BullMQAdapter(queue, { readOnlyMode: false })],
    serverAdapter: adapter,
    options: { uiConfig: { boardTitle: 'erp queue' } },
  });
  await app.register(
    async (scope) => {
      scope.addHook('onRequest', async (req) => {
        requireRole(req, 'admin');
      });
      scope.addHook('onResponse', async (req, reply) => {
        if (req.method === 'GET' || reply.statusCode >= 400 || !req.session) return;
        await recordAction(pool, {
          actor: req.session.user,
          address: req.ip,
          action: `queue ${req.method} ${req.url.split('?')[0]}`,
        });
      });
      await scope.register(adapter.registerPlugin() as never);
    },
    { prefix: '/queue' },
  );
}
