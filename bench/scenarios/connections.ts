import type { SystemKind } from '../lib/apis.js';
import { sleep } from '../lib/clock.js';
import { awaitQuiet, cpuMark, cpuSplit } from '../lib/cpu.js';
import { LoadClients, Server, teardown } from '../lib/rig.js';
import { errorText, selected, type Context, withinBudget } from './common.js';

/**
 * `b-jwt` and `socketio-jwt` do the accept work nestjs-wse does with a secret (a token read and
 * verified per handshake; `b-jwt` also sends a first frame of `server_ready`'s size).
 */
export const CONNECTION_SYSTEMS = ['ws', 'b-jwt', 'socketio', 'socketio-jwt', 'wse-anon', 'wse-jwt'] as const;
export type ConnectionSystem = (typeof CONNECTION_SYSTEMS)[number];

const WITH_JWT: ReadonlySet<ConnectionSystem> = new Set(['b-jwt', 'socketio-jwt', 'wse-jwt']);

/** Systems measured at the large size too. */
export const LARGE_SIZE_SYSTEMS: ReadonlySet<ConnectionSystem> = new Set(['ws', 'wse-jwt']);

const SYSTEM_OF: Record<ConnectionSystem, SystemKind> = {
  ws: 'ws-prebuilt',
  'b-jwt': 'b-jwt',
  socketio: 'socketio',
  'socketio-jwt': 'socketio',
  'wse-anon': 'wse',
  'wse-jwt': 'wse',
};

/**
 * Scenario 4: the accept rate (handshakes/s with 64 in flight per client process; nestjs-wse
 * counts a connection once its `server_ready` arrives, which with a secret means its JWT was
 * verified) and the server's RSS per idle connection (RSS after GC, minus the RSS before any
 * connection, over the connection count) at two sizes.
 */
export async function connectionsScenario(ctx: Context): Promise<void> {
  const { connections, reps } = ctx.config;
  const [small, large] = connections.sizes;
  for (let rep = 1; rep <= reps; rep++) {
    for (const label of selected(ctx, CONNECTION_SYSTEMS)) {
      if (!withinBudget(ctx, `connections, ${label}, repetition ${rep}`)) continue;
      const jwtSecret = WITH_JWT.has(label) ? ctx.jwtSecret : undefined;
      let server: Server | undefined;
      let clients: LoadClients | undefined;
      try {
        [server, clients] = await Promise.all([
          Server.start({ system: SYSTEM_OF[label], jwtSecret }),
          LoadClients.start(),
        ]);
        await sleep(300);
        const u0 = await server.usage(true);
        await awaitQuiet();
        const mark = cpuMark();
        const first = await clients.connect(
          server,
          small,
          { kind: 'none' },
          { jwtSecret, concurrency: connections.concurrency },
        );
        const uAccept = await server.usage(false);
        const cpu = cpuSplit(mark, cpuMark());
        await sleep(500);
        const u1 = await server.usage(true);
        ctx.results.add('connections', 'accept', label, rep, {
          rate: first.rate,
          failed: first.failed,
          serverCpuPct: (uAccept.cpuUs - u0.cpuUs) / 10 / first.wallMs,
          // The server's own work per handshake, whatever bounded the rate.
          serverCpuUsPerConnection: (uAccept.cpuUs - u0.cpuUs) / Math.max(1, first.opened),
          clientCpuPct: first.clientCpuUs / 10 / first.wallMs,
          foreignCpuPct: cpu.foreign,
          kernelCpuPct: cpu.kernel,
        });
        ctx.results.add('connections', `rss@${small}`, label, rep, {
          bytesPerConnection: (u1.rss - u0.rss) / first.opened,
          heapPerConnection: (u1.heapUsed - u0.heapUsed) / first.opened,
          connections: u1.connections,
        });
        ctx.log(
          `  connections ${label} #${rep}: accept ${Math.round(first.rate)}/s (${first.failed} failed${first.firstError ? `: ${first.firstError}` : ''}), ` +
            `${((u1.rss - u0.rss) / first.opened / 1024).toFixed(1)} KB RSS per connection at ${first.opened}`,
        );
        // The large size only for the reference and for nestjs-wse with JWT: 19,000 handshakes
        // per system and repetition would not fit the run's time budget for all four.
        if (!LARGE_SIZE_SYSTEMS.has(label)) continue;
        const second = await clients.connect(
          server,
          large - small,
          { kind: 'none' },
          { jwtSecret, concurrency: connections.concurrency },
        );
        await sleep(500);
        const u2 = await server.usage(true);
        const total = first.opened + second.opened;
        ctx.results.add('connections', `rss@${large}`, label, rep, {
          bytesPerConnection: (u2.rss - u0.rss) / total,
          heapPerConnection: (u2.heapUsed - u0.heapUsed) / total,
          connections: u2.connections,
          failed: second.failed,
        });
        ctx.log(
          `  connections ${label} #${rep}: ${((u2.rss - u0.rss) / total / 1024).toFixed(1)} KB RSS per connection at ${total}` +
            (second.failed > 0 ? ` (${second.failed} failed: ${second.firstError})` : ''),
        );
      } catch (error) {
        ctx.results.note(`connections, ${label}, repetition ${rep}: ${errorText(error)}`);
      } finally {
        await teardown([server], clients);
      }
    }
  }
}
