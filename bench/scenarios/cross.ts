import { Redis } from 'ioredis';
import type { LoopResult, RedisToolApi, SystemKind } from '../lib/apis.js';
import { sleep } from '../lib/clock.js';
import { awaitQuiet, cpuMark, cpuSplit, registerBenchPid, unregisterBenchPid } from '../lib/cpu.js';
import { Child } from '../lib/ipc.js';
import { LoadClients, REDIS_TOOL_SCRIPT, Server, teardown, type Window } from '../lib/rig.js';
import { RedisServer } from '../../test/support/redis-server.js';
import { timeRecovery } from './recovery-timing.js';
import {
  describe,
  errorText,
  holds,
  processCpuUs,
  publishCalls,
  rateSweep,
  sampleEvery,
  verifyDelivery,
  verifySocketIo,
  windowMetrics,
  type Context,
  selected,
  withBaseline,
  withinBudget,
} from './common.js';

/** `wse-history` is nestjs-wse with the bench topics as history topics: the cost of history. */
export const CROSS_SYSTEMS: readonly SystemKind[] = ['ws-naive', 'ws-prebuilt', 'socketio', 'wse', 'wse-history'];

/** Messages a recovering client missed, in the recovery timing. */
const RECOVERED_MESSAGES = 500;

const TOPIC = 'bench:cross';
const FLOOD_TOPIC = 'bench:flood';

/**
 * Scenario 3: two instances on one redis-server. Instance A publishes (through its Redis path),
 * the subscribers are on instance B. First A alone floods Redis (publish throughput of one
 * instance), then B and its subscribers measure fixed rates, an external `PUBLISH wse:<topic>`
 * (not Socket.IO: its adapter's wire format is msgpack envelopes) and the ramp to the maximum.
 */
export async function crossScenario(ctx: Context): Promise<void> {
  const { cross, reps } = ctx.config;
  const n = cross.subscribers;
  const redisServer = await RedisServer.launch();
  const admin = new Redis(redisServer.url, { lazyConnect: true });
  admin.on('error', () => undefined);
  let tool: Child<RedisToolApi> | undefined;
  let redisPid = -1;
  try {
    await admin.connect();
    redisPid = Number(/process_id:(\d+)/.exec(await admin.info('server'))?.[1] ?? -1);
    registerBenchPid(redisPid);
    tool = await Child.spawn<RedisToolApi>('redis-tool', REDIS_TOOL_SCRIPT);
    const t = tool;
    for (let rep = 1; rep <= reps; rep++) {
      for (const system of selected(ctx, withBaseline(ctx, CROSS_SYSTEMS))) {
        if (!withinBudget(ctx, `cross, ${system}, repetition ${rep}`)) continue;
        let a: Server | undefined;
        let b: Server | undefined;
        let clients: LoadClients | undefined;
        try {
          a = await Server.start({ system, redisUrl: redisServer.url });
          const publisher = a;

          // -- publish throughput of one instance into Redis (A alone) --
          await t.call('countStart', {
            port: redisServer.port,
            pattern: system === 'socketio' ? 'socket.io#*' : 'wse:*',
          });
          await awaitQuiet();
          const mark = cpuMark();
          const [calls0, a0] = await Promise.all([publishCalls(admin), publisher.usage()]);
          const redisCpu0 = processCpuUs(redisPid);
          const loop = await publisher.child.call('flood', {
            topic: FLOOD_TOPIC,
            durationMs: cross.floodMs,
            perTurn: 512,
            window: 20_000,
          });
          await sleep(300);
          const [calls1, a1, counted] = await Promise.all([
            publishCalls(admin),
            publisher.usage(),
            t.call('countRead', null),
          ]);
          const spanMs = Math.max(1, counted.lastMs - loop.startMs);
          const flood = {
            msgsPerSec: (counted.count / spanMs) * 1000,
            counted: counted.count,
            issued: loop.published,
            acknowledged: a1.redisPublished >= 0 ? a1.redisPublished - a0.redisPublished : Number.NaN,
            redisPublishCalls: calls1 - calls0,
            serverCpuPct: (a1.cpuUs - a0.cpuUs) / 10 / spanMs,
            redisCpuPct: (processCpuUs(redisPid) - redisCpu0) / 10 / spanMs,
            ...(({ foreign, kernel }) => ({ foreignCpuPct: foreign, kernelCpuPct: kernel }))(cpuSplit(mark, cpuMark())),
          };
          ctx.results.add('cross', 'publish', system, rep, flood);
          if (system === 'wse-history') {
            const timing = await timeRecovery(publisher, RECOVERED_MESSAGES);
            ctx.results.add('cross', `recover${RECOVERED_MESSAGES}`, system, rep, {
              ms: timing.ms,
              replayed: timing.replayed,
              recovered: timing.recovered ? 1 : 0,
            });
            ctx.log(
              `  cross recovery ${system} #${rep}: ${timing.replayed} messages recovered in ${timing.ms.toFixed(1)} ms (recovered: ${timing.recovered})`,
            );
          }
          ctx.log(
            `  cross publish ${system} #${rep}: ${Math.round(flood.msgsPerSec)} msg/s into Redis ` +
              `(counted ${flood.counted}, acknowledged ${flood.acknowledged}, PUBLISH calls ${flood.redisPublishCalls}), ` +
              `publisher ${flood.serverCpuPct.toFixed(0)}% redis ${flood.redisCpuPct.toFixed(0)}%`,
          );

          // -- fan-out on B of what A publishes --
          [b, clients] = await Promise.all([Server.start({ system, redisUrl: redisServer.url }), LoadClients.start()]);
          const subscriberServer = b;
          const c = clients;
          await c.connectAll(subscriberServer, n, { kind: 'same', topics: [TOPIC] });
          await verifyDelivery(publisher, c, TOPIC, 'redis', n);
          if (system === 'socketio') await verifySocketIo(publisher, subscriberServer, c, TOPIC, 'redis');
          const measure = async (
            rate: number,
            action: () => Promise<LoopResult>,
            warmUp = false,
          ): Promise<Record<string, number>> => {
            const redisCpu = processCpuUs(redisPid);
            const w: Window = await c.measure(subscriberServer, [publisher], n, sampleEvery(rate * n), action, {
              warmUp,
            });
            const m = windowMetrics(w, 'paced');
            return { ...m, rate, redisCpuPct: (processCpuUs(redisPid) - redisCpu) / 10 / w.wallMs };
          };
          const paced = (rate: number, durationMs: number, warmUp = false) =>
            measure(
              rate,
              () => publisher.child.call('paced', { topic: TOPIC, rate, durationMs, via: 'redis' }),
              warmUp,
            );
          await paced(50, 400, true); // not recorded
          // An external `PUBLISH wse:<topic>` at a fixed rate, between the fixed rates and the
          // ramp (not Socket.IO: its adapter's wire format is msgpack envelopes).
          const external = async (): Promise<void> => {
            if (system === 'socketio') return;
            const rate = cross.externalRate;
            const m = await measure(rate, () =>
              t.call('externalPaced', {
                port: redisServer.port,
                channel: `wse:${TOPIC}`,
                rate,
                durationMs: cross.durationMs,
              }),
            );
            ctx.results.add('cross', `external=${rate}`, system, rep, m);
            ctx.log(`  cross external PUBLISH ${rate} msg/s ${system} #${rep}: ${describe(m)}`);
            if (!holds(m)) await c.drain();
          };
          await rateSweep(ctx, { scenario: 'cross', system, rep }, cross, paced, {
            drain: () => c.drain(),
            describeExtra: (m) => `, redis ${m.redisCpuPct.toFixed(0)}%`,
            between: external,
          });
        } catch (error) {
          ctx.results.note(`cross-instance, ${system}, repetition ${rep}: ${errorText(error)}`);
        } finally {
          await teardown([b, a], clients);
        }
      }
    }
  } finally {
    unregisterBenchPid(redisPid);
    await tool?.kill();
    admin.disconnect();
    await redisServer.stop();
  }
}
