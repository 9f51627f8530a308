import type { SystemKind } from '../lib/apis.js';
import { LoadClients, Server, teardown } from '../lib/rig.js';
import {
  errorText,
  rateSweep,
  sampleEvery,
  verifyDelivery,
  windowMetrics,
  type Context,
  selected,
  withBaseline,
  withinBudget,
} from './common.js';

export const SUSTAINED_SYSTEMS: readonly SystemKind[] = ['ws-naive', 'ws-prebuilt', 'socketio', 'wse'];

const TOPIC = 'bench:sustained';

/**
 * Scenario 2: fixed offered rates to 1,000 subscribers, then a ramp (x factor per step) from the
 * highest held fixed rate until a step is no longer held: the maximum is the last held step.
 * Latency is publish (scheduled time) to receipt, sampled in the clients.
 */
export async function sustainedScenario(ctx: Context): Promise<void> {
  const { sustained, reps } = ctx.config;
  const n = sustained.subscribers;
  for (let rep = 1; rep <= reps; rep++) {
    for (const system of selected(ctx, withBaseline(ctx, SUSTAINED_SYSTEMS))) {
      if (!withinBudget(ctx, `sustained, ${system}, repetition ${rep}`)) continue;
      let server: Server | undefined;
      let clients: LoadClients | undefined;
      try {
        [server, clients] = await Promise.all([Server.start({ system }), LoadClients.start()]);
        const s = server;
        const c = clients;
        await c.connectAll(s, n, { kind: 'same', topics: [TOPIC] });
        await verifyDelivery(s, c, TOPIC, 'local', n);
        const window = async (rate: number, durationMs: number, warmUp = false): Promise<Record<string, number>> =>
          windowMetrics(
            await c.measure(
              s,
              [],
              n,
              sampleEvery(rate * n),
              () => s.child.call('paced', { topic: TOPIC, rate, durationMs, via: 'local' }),
              { warmUp },
            ),
            'paced',
          );
        await window(50, 400, true); // not recorded
        await rateSweep(ctx, { scenario: 'sustained', system, rep }, sustained, window, { drain: () => c.drain() });
      } catch (error) {
        ctx.results.note(`sustained, ${system}, repetition ${rep}: ${errorText(error)}`);
      } finally {
        await teardown([server], clients);
      }
    }
  }
}
