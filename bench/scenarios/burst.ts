import { LoadClients, Server, teardown } from '../lib/rig.js';
import type { SystemKind } from '../lib/apis.js';
import {
  describe,
  errorText,
  sampleEvery,
  verifyDelivery,
  verifySocketIo,
  windowMetrics,
  selected,
  withBaseline,
  type Context,
  withinBudget,
} from './common.js';

export const BURST_SYSTEMS = ['ws-naive', 'ws-prebuilt', 'socketio', 'wse', 'wse-glob'] as const;

const TOPIC = 'bench:burst';
const GLOB = 'bench:*';

/**
 * Scenario 1: one 100-byte message per event-loop turn (a setImmediate loop in the server) to N
 * subscribers of one topic (nestjs-wse also: of a glob). Deliveries/s are counted by the clients
 * up to the last delivery; server CPU per delivery from process.cpuUsage() in the server.
 */
export async function burstScenario(ctx: Context): Promise<void> {
  const { burst, reps } = ctx.config;
  for (let rep = 1; rep <= reps; rep++) {
    for (const label of selected(ctx, withBaseline(ctx, BURST_SYSTEMS))) {
      if (!withinBudget(ctx, `burst, ${label}, repetition ${rep}`)) continue;
      const system: SystemKind = label === 'wse-glob' ? 'wse' : label;
      let server: Server | undefined;
      let clients: LoadClients | undefined;
      try {
        [server, clients] = await Promise.all([Server.start({ system }), LoadClients.start()]);
        for (const n of burst.sizes) {
          await clients.connectAll(server, n - clients.connections, {
            kind: 'same',
            topics: [label === 'wse-glob' ? GLOB : TOPIC],
          });
          await verifyDelivery(server, clients, TOPIC, 'local', n);
          if (system === 'socketio' && n === burst.sizes[0])
            await verifySocketIo(server, server, clients, TOPIC, 'local');
          const s = server;
          const run = (durationMs: number) => () =>
            s.child.call('burst', {
              topics: { prefix: TOPIC, count: 0, suffix: '' },
              perTurn: 1,
              durationMs,
              via: 'local',
            });
          await clients.measure(server, [], n, 63, run(300), { warmUp: true }); // not recorded
          const w = await clients.measure(server, [], n, sampleEvery(n * 200), run(burst.durationMs));
          const m = windowMetrics(w, 'burst');
          ctx.results.add('burst', `N=${n}`, label, rep, m);
          ctx.log(`  burst N=${n} ${label} #${rep}: ${describe(m)}, ${m.cpuUsPerDelivery.toFixed(2)} us CPU/delivery`);
        }
      } catch (error) {
        ctx.results.note(`burst, ${label}, repetition ${rep}: ${errorText(error)}`);
      } finally {
        await teardown([server], clients);
      }
    }
  }
}
