import { sleep } from '../lib/clock.js';
import { LoadClients, Server, teardown } from '../lib/rig.js';
import { errorText, type Context, withinBudget } from './common.js';

/** Shared exact topics the subscribed connections draw from: about 19 subscribers each at 19,000. */
const POOL = 10_000;

/**
 * Scenario 8: memory of subscribed connections. nestjs-wse with JWT, `connections` connections,
 * each subscribed (in its handshake, one subscription message) to `exact` exact topics shared
 * with other connections (`room:<n>`, from a pool of 10,000) and one glob of its own
 * (`user:<g>:*`). RSS and heap per connection as in section 4: after a forced GC, minus before
 * any connection, over the connection count.
 */
export async function subscribedScenario(ctx: Context): Promise<void> {
  const { subscribed, reps } = ctx.config;
  for (let rep = 1; rep <= reps; rep++) {
    if (!withinBudget(ctx, `subscribed, repetition ${rep}`)) continue;
    let server: Server | undefined;
    let clients: LoadClients | undefined;
    try {
      [server, clients] = await Promise.all([
        Server.start({ system: 'wse', jwtSecret: ctx.jwtSecret }),
        LoadClients.start(),
      ]);
      await sleep(300);
      const u0 = await server.usage(true);
      const outcome = await clients.connectAll(
        server,
        subscribed.connections,
        { kind: 'mixed', exactPrefix: 'room:', exact: subscribed.exact, pool: POOL, globPrefix: 'user:' },
        { jwtSecret: ctx.jwtSecret },
      );
      await sleep(500);
      const u1 = await server.usage(true);
      const m = {
        bytesPerConnection: (u1.rss - u0.rss) / outcome.opened,
        heapPerConnection: (u1.heapUsed - u0.heapUsed) / outcome.opened,
        connections: u1.connections,
        rate: outcome.rate,
      };
      ctx.results.add('subscribed', `rss@${subscribed.connections}`, 'wse-jwt', rep, m);
      ctx.log(
        `  subscribed #${rep}: ${(m.bytesPerConnection / 1024).toFixed(1)} KB RSS, ${(m.heapPerConnection / 1024).toFixed(1)} KB heap ` +
          `per connection at ${u1.connections} (${subscribed.exact} exact topics + 1 glob each; ${Math.round(outcome.rate)} accepted+subscribed/s)`,
      );
    } catch (error) {
      ctx.results.note(`subscribed, repetition ${rep}: ${errorText(error)}`);
    } finally {
      await teardown([server], clients);
    }
  }
}
