import { readFileSync } from 'node:fs';
import type { StormSnapshot } from '../lib/apis.js';
import { clockMs, sleep } from '../lib/clock.js';
import { LoadClients, Server, teardown } from '../lib/rig.js';
import { errorText, processCpuUs, selected, type Context, withinBudget } from './common.js';

export const STORM_SYSTEMS = ['wse', 'socketio'] as const;
export type StormSystem = (typeof STORM_SYSTEMS)[number];

/** How the server goes away: its graceful stop then the process killed, or SIGKILL at once. */
export const RESTART_KINDS = ['graceful', 'kill'] as const;

const TOPIC_PREFIX = 'storm:';
const SAMPLE_MS = 200;
/** How long a stop may take before the process is killed anyway. */
const GRACE_MS = 5_000;

function rssBytes(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match === null ? Number.NaN : Number(match[1]) * 1024;
  } catch {
    return Number.NaN;
  }
}

/** The time (ms after `t0`) by which `share` of `total` clients had a mark; NaN if they never did. */
function timeToShare(times: readonly number[], total: number, share: number, t0: number): number {
  const done = times.filter((t) => !Number.isNaN(t)).sort((a, b) => a - b);
  const needed = Math.ceil(total * share);
  return needed <= done.length && needed > 0 ? done[needed - 1] - t0 : Number.NaN;
}

/**
 * Scenario 7: the reconnect storm. `clients` real clients (WseClient on `ws`; socket.io-client)
 * in the two load processes, each subscribed to `topicsPerClient` of `topics` topics, connected
 * through the system's JWT check. The server is restarted, first gracefully (its own stop, which
 * closes every connection with a restart code; then the process is killed), then with SIGKILL
 * at once; a new server process listens on the same port. The clients come back with their own
 * default backoff. From the start of the restart: the time until 99 % are connected, resubscribed
 * and have received a message on each of their topics (the new server publishes one to each
 * topic every `tickMs`), the new server's peak CPU and RSS (from /proc, every 200 ms), and the
 * handshakes refused.
 */
export async function stormScenario(ctx: Context): Promise<void> {
  const { storm, reps } = ctx.config;
  const topics = Array.from({ length: storm.topics }, (_, i) => `${TOPIC_PREFIX}${i}`);
  for (const system of selected(ctx, STORM_SYSTEMS)) {
    if (!withinBudget(ctx, `storm, ${system}`)) continue;
    let server: Server | undefined;
    let clients: LoadClients | undefined;
    try {
      [server, clients] = await Promise.all([Server.start({ system, jwtSecret: ctx.jwtSecret }), LoadClients.start()]);
      const port = server.port;
      const t0 = Date.now();
      const n = clients.clients.length;
      const opened = await Promise.all(
        clients.clients.map((client, k) =>
          client.call(
            'stormConnect',
            {
              protocol: system,
              port,
              path: server!.path,
              count: Math.floor(storm.clients / n) + (k < storm.clients % n ? 1 : 0),
              firstIndex: k * Math.ceil(storm.clients / n),
              jwtSecret: ctx.jwtSecret,
              topicPrefix: TOPIC_PREFIX,
              topicCount: storm.topics,
              topicsPerClient: storm.topicsPerClient,
              localAddresses: [0, 1, 2, 3].map((j) => `127.0.0.${2 + k * 4 + j}`),
              concurrency: 32,
              timeoutMs: 240_000,
            },
            300_000,
          ),
        ),
      );
      const total = opened.reduce((sum, o) => sum + o.opened, 0);
      const failed = opened.reduce((sum, o) => sum + o.failed, 0);
      ctx.log(
        `  storm ${system}: ${total} clients subscribed in ${((Date.now() - t0) / 1000).toFixed(1)} s` +
          (failed > 0 ? ` (${failed} failed: ${opened.find((o) => o.firstError)?.firstError})` : ''),
      );
      if (total === 0) throw new Error('no client connected');
      for (let rep = 1; rep <= reps; rep++) {
        for (const kind of storm.restarts) {
          if (!withinBudget(ctx, `storm, ${system}, ${kind}, repetition ${rep}`)) continue;
          server = await restart(ctx, system, kind, rep, server, clients, port, topics, total);
        }
      }
    } catch (error) {
      ctx.results.note(`storm, ${system}: ${errorText(error)}`);
    } finally {
      await clients?.clients[0]?.call('stormCloseAll', null).catch(() => undefined);
      await clients?.clients[1]?.call('stormCloseAll', null).catch(() => undefined);
      await teardown([server], clients);
    }
  }
}

async function snapshots(clients: LoadClients, times: boolean): Promise<StormSnapshot[]> {
  return Promise.all(clients.clients.map((c) => c.call('stormSnapshot', { times })));
}

async function restart(
  ctx: Context,
  system: StormSystem,
  kind: (typeof RESTART_KINDS)[number],
  rep: number,
  old: Server,
  clients: LoadClients,
  port: number,
  topics: readonly string[],
  total: number,
): Promise<Server> {
  const { storm } = ctx.config;
  await Promise.all(clients.clients.map((c) => c.call('stormArm', null)));
  const startMs = clockMs();
  if (kind === 'graceful') {
    await Promise.race([old.child.call('shutdown', null, GRACE_MS).catch(() => undefined), sleep(GRACE_MS)]);
  }
  await old.child.kill();
  const stoppedMs = clockMs();
  const server = await Server.start({ system, jwtSecret: ctx.jwtSecret, port });
  const listeningMs = clockMs();
  await server.child.call('startTicker', { topics, everyMs: storm.tickMs, maxMs: storm.timeoutMs + 5_000 });
  const pid = server.child.pid;
  const curve: [number, number, number, number][] = [];
  let peakCpu = 0;
  let peakRss = 0;
  let lastCpu = processCpuUs(pid);
  let lastAt = clockMs();
  let reachedAt = Number.NaN;
  let last: StormSnapshot[] = [];
  for (;;) {
    await sleep(SAMPLE_MS);
    const now = clockMs();
    const cpu = processCpuUs(pid);
    peakCpu = Math.max(peakCpu, (cpu - lastCpu) / 10 / Math.max(1, now - lastAt));
    peakRss = Math.max(peakRss, rssBytes(pid) || 0);
    lastCpu = cpu;
    lastAt = now;
    last = await snapshots(clients, false);
    const sum = (f: (s: StormSnapshot) => number): number => last.reduce((acc, s) => acc + f(s), 0);
    curve.push([now - startMs, sum((s) => s.connected), sum((s) => s.resubscribed), sum((s) => s.receiving)]);
    const receiving = sum((s) => s.receiving);
    if (receiving >= total * 0.99 && Number.isNaN(reachedAt)) reachedAt = now;
    // A little past 99 %, for the tail of the curve; everyone, or the time limit, ends it.
    if (receiving >= total || now - reachedAt >= 1_000 || now - startMs > storm.timeoutMs) break;
  }
  const published = await server.child.call('stopTicker', null);
  const final = await snapshots(clients, true);
  const all = (f: (t: NonNullable<StormSnapshot['times']>) => readonly number[]): number[] =>
    final.flatMap((s) => (s.times === undefined ? [] : [...f(s.times)]));
  const lost = final.reduce((acc, s) => acc + s.lost, 0);
  const refused = final.reduce((acc, s) => acc + s.refused, 0);
  const m = {
    clients: total,
    lost,
    t99Connected: timeToShare(
      all((t) => t.connected),
      total,
      0.99,
      startMs,
    ),
    t99Resubscribed: timeToShare(
      all((t) => t.resubscribed),
      total,
      0.99,
      startMs,
    ),
    t99Receiving: timeToShare(
      all((t) => t.receiving),
      total,
      0.99,
      startMs,
    ),
    t50Receiving: timeToShare(
      all((t) => t.receiving),
      total,
      0.5,
      startMs,
    ),
    t90Receiving: timeToShare(
      all((t) => t.receiving),
      total,
      0.9,
      startMs,
    ),
    receivingShare: all((t) => t.receiving).filter((t) => !Number.isNaN(t)).length / total,
    // The same, counted from the moment the new server listened: what the clients' backoff adds.
    t99ConnectedAfterUp: timeToShare(
      all((t) => t.connected),
      total,
      0.99,
      listeningMs,
    ),
    t99ReceivingAfterUp: timeToShare(
      all((t) => t.receiving),
      total,
      0.99,
      listeningMs,
    ),
    stopMs: stoppedMs - startMs,
    listeningMs: listeningMs - startMs,
    peakServerCpuPct: peakCpu,
    peakServerRss: peakRss,
    refused,
    published,
    waitMs: storm.timeoutMs,
  };
  ctx.results.add('storm', kind, system, rep, m);
  ctx.results.addSeries('storm', kind, system, rep, curve);
  const s = (x: number): string => (Number.isFinite(x) ? `${(x / 1000).toFixed(2)} s` : 'not reached');
  ctx.log(
    `  storm ${system} ${kind} #${rep}: ${lost} of ${total} lost; 99 % connected ${s(m.t99Connected)}, resubscribed ` +
      `${s(m.t99Resubscribed)}, receiving ${s(m.t99Receiving)} (50 % ${s(m.t50Receiving)}, 90 % ${s(m.t90Receiving)}; ` +
      `${(m.receivingShare * 100).toFixed(1)} % at the end); server up at ${s(m.listeningMs)}; peak CPU ` +
      `${peakCpu.toFixed(0)} %, RSS ${(peakRss / 2 ** 20).toFixed(0)} MB; refused ${refused}` +
      (refused > 0 ? ` (${final.find((f) => f.firstRefusal)?.firstRefusal})` : ''),
  );
  // Let the tail reconnect before the next restart, so each starts from everyone connected.
  const settleUntil = Date.now() + 10_000;
  while (Date.now() < settleUntil) {
    const snap = await snapshots(clients, false);
    if (snap.reduce((acc, x) => acc + x.connected, 0) >= lost) break;
    await sleep(250);
  }
  return server;
}
