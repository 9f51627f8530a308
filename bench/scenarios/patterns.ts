import { LoadClients, Server, teardown } from '../lib/rig.js';
import { describe, errorText, windowMetrics, withinBudget, type Context } from './common.js';

/** Globs each holder connection subscribes (the default `maxTopicsPerConnection` is 1,000). */
const GLOBS_PER_CONNECTION = 1_000;
/** Far above the published topics' ids, so no glob matches a published topic. */
const GLOB_ID_BASE = 1_000_000;

/**
 * Scenario 5 (nestjs-wse only: plain ws and Socket.IO have no globs): publish throughput
 * (publishLocal, 32 per event-loop turn) on high-cardinality topics `user:<i>:events` (20,000
 * of them, one subscriber each: past the registry's 10,000-topic cache, so most publishes miss
 * it) with 0, 1,000 and 10,000 distinct glob subscriptions present that match nothing
 * published. Two shapes of glob: prefix-anchored `user:<id>:*` (the common shape) and, as a
 * worst case, leading-wildcard `*:<id>:audit`.
 */
export async function patternsScenario(ctx: Context): Promise<void> {
  const { patterns, reps } = ctx.config;
  const topicCount = patterns.subscribers * patterns.topicsPerSubscriber;
  for (let rep = 1; rep <= reps; rep++) {
    for (const shape of ['anchored', 'leading'] as const) {
      if (!withinBudget(ctx, `patterns (${shape}), repetition ${rep}`)) continue;
      let server: Server | undefined;
      let clients: LoadClients | undefined;
      try {
        [server, clients] = await Promise.all([Server.start({ system: 'wse' }), LoadClients.start()]);
        const s = server;
        const c = clients;
        await c.connectAll(s, patterns.subscribers, {
          kind: 'range',
          prefix: 'user:',
          suffix: ':events',
          start: 0,
          perConnection: patterns.topicsPerSubscriber,
        });
        const run = (durationMs: number) => () =>
          s.child.call('burst', {
            topics: { prefix: 'user:', count: topicCount, suffix: ':events' },
            perTurn: 32,
            durationMs,
            via: 'local',
          });
        await c.measure(s, [], 1, 63, run(500), { warmUp: true }); // not recorded
        // The leading shape is measured at 1,000 globs only (against the same server's 0).
        const counts = shape === 'anchored' ? patterns.globs : [0, 1_000];
        let held = 0;
        for (const globs of counts) {
          if (globs > held) {
            await c.connectAll(s, Math.ceil((globs - held) / GLOBS_PER_CONNECTION), {
              kind: 'range',
              prefix: shape === 'anchored' ? 'user:' : '*:',
              suffix: shape === 'anchored' ? ':*' : ':audit',
              start: GLOB_ID_BASE,
              perConnection: GLOBS_PER_CONNECTION,
            });
            held = globs;
          }
          // Two windows per count and repetition: one window's rate varies by a quarter from one
          // to the next on this machine, more than the differences measured here.
          for (let window = 0; window < patterns.windows; window++) {
            const w = await c.measure(s, [], 1, 63, run(patterns.durationMs));
            const m = windowMetrics(w, 'paced');
            const publishesPerSec = m.msgsPerSec;
            m.cpuUsPerPublish = w.serverCpuUs / Math.max(1, w.loop.published);
            const kase = shape === 'anchored' ? `globs=${globs}` : `globs=${globs} leading`;
            const sample = (rep - 1) * patterns.windows + window + 1;
            if (shape === 'leading' && globs === 0) {
              ctx.results.add('patterns', 'globs=0 leading-baseline', 'wse', sample, { ...m, publishesPerSec });
            } else {
              ctx.results.add('patterns', kase, 'wse', sample, { ...m, publishesPerSec });
            }
            ctx.log(
              `  patterns ${shape} ${globs} globs #${rep}.${window + 1}: ${Math.round(publishesPerSec)} publishes/s, ` +
                `${m.cpuUsPerPublish.toFixed(2)} us CPU/publish, ${describe(m)}`,
            );
          }
        }
      } catch (error) {
        ctx.results.note(`patterns (${shape}), repetition ${rep}: ${errorText(error)}`);
      } finally {
        await teardown([server], clients);
      }
    }
  }
}
