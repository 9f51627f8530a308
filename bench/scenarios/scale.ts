import { Redis } from 'ioredis';
import type { LoopResult, RedisRouting, RedisToolApi, TopicStream } from '../lib/apis.js';
import { sleep } from '../lib/clock.js';
import { awaitQuiet, cpuMark, cpuSplit, registerBenchPid, unregisterBenchPid } from '../lib/cpu.js';
import { Child } from '../lib/ipc.js';
import { LoadClients, REDIS_TOOL_SCRIPT, Server, teardown } from '../lib/rig.js';
import { RedisCluster } from '../../test/support/redis-cluster.js';
import { RedisServer } from '../../test/support/redis-server.js';
import { errorText, processCpuUs, sampleEvery, withinBudget, type Context } from './common.js';

/**
 * Scenario 7, scaling out past one Redis (issue 15), nestjs-wse only:
 *
 * (a) `routing`: four instances on one redis-server, each topic followed on one instance only
 *     (instance i's connections hold topics `scale:<i*T> .. scale:<i*T+T-1>`), every instance
 *     flooding Redis with publishes spread over all 4T topics. With `pattern` routing every
 *     instance receives every message and drops three in four; with `interest` each receives
 *     only its own. Figures: deliveries/s (each message has one recipient, so this is the
 *     deployment's publish capacity), each instance's CPU, redis-server's. Then, on the same
 *     instances, the publishers outside (`outside`): one process of plain `PUBLISH wse:<topic>`
 *     at a fixed rate over the same topics, so the instances only receive and deliver; their CPU
 *     per delivery is what each instance's share of a deployment's capacity costs (instances on
 *     machines of their own are bounded by it).
 * (b) `shards`: two instances under the same fixed load (a paced rate over 2T topics), on one
 *     redis-server (`pattern`, `interest`) and on a local 3-master Redis Cluster. Figures: CPU
 *     seconds per message of each redis-server process (/proc/<pid>/stat utime + stime) and the
 *     instances' CPU per delivery. This machine has two cores, so capacity shows as where the
 *     work goes rather than as a higher ceiling.
 * (c) `churn`: connections each subscribing a topic of its own, then all leaving, on one
 *     instance: Redis subscription commands issued (INFO commandstats before and after) and the
 *     time until Redis holds the subscriptions, and until it has dropped them again.
 */

const TOPIC_PREFIX = 'scale:';
const ROUTINGS: readonly RedisRouting[] = ['pattern', 'interest'];
/** (b): the systems compared under the same load. */
export const SHARD_SETUPS = ['pattern', 'interest', 'cluster'] as const;
export type ShardSetup = (typeof SHARD_SETUPS)[number];

interface ScaleSizes {
  /** (a): topics (= connections, one topic each) per instance, four instances. */
  readonly topicsPerInstance: number;
  readonly floodMs: number;
  readonly perTurn: number;
  /** Publishes in flight per instance. */
  readonly window: number;
  /** (a), publishers outside: msg/s offered by the outside publisher, and for how long. */
  readonly outsideRate: number;
  readonly outsideMs: number;
  /** (b): topics per instance, two instances. */
  readonly shardTopicsPerInstance: number;
  /** (b): msg/s each of the two instances publishes. */
  readonly shardRate: number;
  readonly shardMs: number;
  /** (c): connections that subscribe and leave. */
  readonly churn: number;
}

const FULL_SIZES: ScaleSizes = {
  topicsPerInstance: 250,
  floodMs: 1_500,
  perTurn: 256,
  window: 4_000,
  outsideRate: 40_000,
  outsideMs: 2_000,
  shardTopicsPerInstance: 300,
  shardRate: 4_000,
  shardMs: 2_500,
  churn: 10_000,
};

const QUICK_SIZES: ScaleSizes = {
  topicsPerInstance: 100,
  floodMs: 1_000,
  perTurn: 256,
  window: 4_000,
  outsideRate: 20_000,
  outsideMs: 1_000,
  shardTopicsPerInstance: 150,
  shardRate: 3_000,
  shardMs: 1_000,
  churn: 2_000,
};

/** Redis commands that change subscriptions, as INFO commandstats names them. */
const SUBSCRIPTION_COMMANDS = ['subscribe', 'unsubscribe', 'psubscribe', 'punsubscribe', 'ssubscribe', 'sunsubscribe'];

export async function scaleScenario(ctx: Context): Promise<void> {
  const sizes = ctx.config.quick ? QUICK_SIZES : FULL_SIZES;
  const { reps } = ctx.config;
  const single = await RedisServer.launch();
  let cluster: RedisCluster | undefined;
  let tool: Child<RedisToolApi> | undefined;
  const pids: number[] = [];
  try {
    pids.push(single.pid!);
    registerBenchPid(single.pid!);
    tool = await Child.spawn<RedisToolApi>('redis-tool', REDIS_TOOL_SCRIPT);
    const t = tool;
    for (let rep = 1; rep <= reps; rep++) {
      for (const routing of ROUTINGS) {
        if (!withinBudget(ctx, `scale routing, ${routing}, repetition ${rep}`)) continue;
        await guarded(ctx, `scale routing, ${routing}, repetition ${rep}`, () =>
          routingRun(ctx, sizes, single, t, routing, rep),
        );
      }
    }
    cluster = await RedisCluster.launch();
    for (const node of cluster.nodes) {
      pids.push(node.server.pid!);
      registerBenchPid(node.server.pid!);
    }
    const c = cluster;
    for (let rep = 1; rep <= reps; rep++) {
      for (const setup of SHARD_SETUPS) {
        if (!withinBudget(ctx, `scale shards, ${setup}, repetition ${rep}`)) continue;
        await guarded(ctx, `scale shards, ${setup}, repetition ${rep}`, () =>
          shardsRun(ctx, sizes, single, c, setup, rep),
        );
      }
    }
    for (let rep = 1; rep <= reps; rep++) {
      for (const setup of SHARD_SETUPS) {
        if (!withinBudget(ctx, `scale churn, ${setup}, repetition ${rep}`)) continue;
        await guarded(ctx, `scale churn, ${setup}, repetition ${rep}`, () =>
          churnRun(ctx, sizes, single, c, setup, rep),
        );
      }
    }
  } finally {
    for (const pid of pids) unregisterBenchPid(pid);
    await tool?.kill();
    await cluster?.stop();
    await single.stop();
  }
}

async function guarded(ctx: Context, what: string, run: () => Promise<void>): Promise<void> {
  try {
    await run();
  } catch (error) {
    ctx.results.note(`${what}: ${errorText(error)}`);
  }
}

/** Where `setup` connects: the single redis-server, or the cluster's masters. */
function startOptions(setup: ShardSetup, single: RedisServer, cluster: RedisCluster) {
  return setup === 'cluster'
    ? { system: 'wse' as const, redisRouting: 'interest' as const, redisClusterNodes: cluster.addresses }
    : { system: 'wse' as const, redisRouting: setup, redisUrl: single.url };
}

/** Checks that topic `scale:<k>` published on each instance reaches its one subscriber. */
async function verifyRouting(
  servers: readonly Server[],
  clients: LoadClients,
  topics: readonly number[],
): Promise<void> {
  await clients.reset(1);
  for (const [i, server] of servers.entries()) {
    await server.child.call('publishOne', { topic: `${TOPIC_PREFIX}${topics[i]}`, via: 'redis' });
  }
  const frames = await clients.settle(servers.length, 500, 5_000);
  if (frames !== servers.length)
    throw new Error(`check messages reached ${frames} of ${servers.length} subscribers (expected one each)`);
}

/** CPU µs of each server process and of each Redis pid, now. */
async function cpuNow(servers: readonly Server[], redisPids: readonly number[]) {
  const usages = await Promise.all(servers.map((s) => s.usage()));
  return { servers: usages.map((u) => u.cpuUs), redis: redisPids.map(processCpuUs) };
}

/** (a) four instances on one Redis, each topic followed on one instance, every instance flooding. */
async function routingRun(
  ctx: Context,
  sizes: ScaleSizes,
  redis: RedisServer,
  tool: Child<RedisToolApi>,
  routing: RedisRouting,
  rep: number,
): Promise<void> {
  const instances = 4;
  const t = sizes.topicsPerInstance;
  let servers: Server[] = [];
  let clients: LoadClients | undefined;
  try {
    [servers, clients] = await Promise.all([
      Promise.all(
        Array.from({ length: instances }, () =>
          Server.start({ system: 'wse', redisUrl: redis.url, redisRouting: routing }),
        ),
      ),
      LoadClients.start(),
    ]);
    const c = clients;
    // Connection g holds topic scale:<g>; instance i gets connections i*T .. i*T+T-1.
    for (const server of servers)
      await c.connectAll(server, t, { kind: 'range', prefix: TOPIC_PREFIX, suffix: '', start: 0, perConnection: 1 });
    // Each instance publishes on a topic of the next instance's.
    await verifyRouting(
      servers,
      c,
      servers.map((_, i) => ((i + 1) % instances) * t),
    );
    const stream: TopicStream = { prefix: TOPIC_PREFIX, count: instances * t, suffix: '' };
    const flood = (durationMs: number) => () =>
      Promise.all(
        servers.map((s) =>
          s.child.call('flood', {
            topic: TOPIC_PREFIX,
            topics: stream,
            durationMs,
            perTurn: sizes.perTurn,
            window: sizes.window,
          }),
        ),
      );
    await window(c, servers, [redis.pid!], flood(300), 0, true); // warm-up, not recorded
    const m = await window(c, servers, [redis.pid!], flood(sizes.floodMs), 20_000);
    ctx.results.add('scale', 'routing', routing, rep, m);
    ctx.log(
      `  scale routing ${routing} #${rep}: ${Math.round(m.deliveriesPerSec)} deliveries/s ` +
        `(published ${m.published}, delivered ${(m.held * 100).toFixed(1)}%), instances ` +
        `${[0, 1, 2, 3].map((i) => `${m[`instance${i}CpuPct`].toFixed(0)}%`).join(' ')}, redis ${m.redis0CpuPct.toFixed(0)}%, ` +
        `clients ${m.clientCpuPct.toFixed(0)}%`,
    );

    // The same instances and topics, the publisher outside: the instances only receive and deliver.
    const outside = (durationMs: number) => async () => [
      await tool.call('externalPacedTopics', {
        port: redis.port,
        channelPrefix: 'wse:',
        topics: stream,
        rate: sizes.outsideRate,
        durationMs,
      }),
    ];
    await window(c, servers, [redis.pid!], outside(300), 0, true); // warm-up, not recorded
    const o = await window(c, servers, [redis.pid!], outside(sizes.outsideMs), sizes.outsideRate);
    ctx.results.add('scale', 'outside', routing, rep, o);
    ctx.log(
      `  scale outside ${routing} #${rep}: ${Math.round(o.deliveriesPerSec)} deliveries/s ` +
        `(delivered ${(o.held * 100).toFixed(1)}%), instances ${o.cpuUsPerDelivery.toFixed(2)} µs/delivery, ` +
        `redis ${o.redis0CpuPct.toFixed(0)}%`,
    );
  } finally {
    await teardown(servers, clients);
  }
}

/**
 * One window over several publishing servers: every delivery counted, CPU of each server and
 * Redis process, the load clients and the rest of the machine.
 */
async function window(
  clients: LoadClients,
  servers: readonly Server[],
  redisPids: readonly number[],
  action: () => Promise<LoopResult[]>,
  deliveriesPerSecHint: number,
  warmUp = false,
): Promise<Record<string, number>> {
  await clients.reset(sampleEvery(deliveriesPerSecHint));
  if (!warmUp) await awaitQuiet();
  const mark = cpuMark();
  const [before, c0] = await Promise.all([cpuNow(servers, redisPids), clients.snapshots(false)]);
  const loops = await action();
  const published = loops.reduce((sum, l) => sum + l.published, 0);
  const frames = await clients.settle(published, 500, 10_000);
  const [after, c1] = await Promise.all([cpuNow(servers, redisPids), clients.snapshots(false)]);
  const split = cpuSplit(mark, cpuMark());
  const startMs = Math.min(...loops.map((l) => l.startMs));
  const endMs = Math.max(...loops.map((l) => l.endMs));
  const lastFrameMs = Math.max(...c1.map((s) => s.lastFrameMs));
  const spanMs = Math.max(1, Math.max(endMs, lastFrameMs) - startMs);
  const serverUs = after.servers.map((us, i) => us - before.servers[i]);
  const redisUs = after.redis.map((us, i) => us - before.redis[i]);
  const m: Record<string, number> = {
    published,
    deliveries: frames,
    held: published === 0 ? 0 : frames / published,
    deliveriesPerSec: (Math.min(frames, published) / spanMs) * 1000,
    publishesPerSec: (published / Math.max(1, endMs - startMs)) * 1000,
    cpuUsPerDelivery: serverUs.reduce((a, b) => a + b, 0) / Math.max(1, frames),
    serverCpuPct: Math.max(...serverUs) / 10 / spanMs,
    serversCpuPct: serverUs.reduce((a, b) => a + b, 0) / 10 / spanMs,
    clientCpuPct: c1.reduce((sum, s, i) => sum + s.cpuUs - c0[i].cpuUs, 0) / 10 / spanMs,
    redisCpuPct: redisUs.reduce((a, b) => a + b, 0) / 10 / spanMs,
    busiestRedisCpuPct: Math.max(...redisUs) / 10 / spanMs,
    foreignCpuPct: split.foreign,
    kernelCpuPct: split.kernel,
    spanMs,
  };
  serverUs.forEach((us, i) => (m[`instance${i}CpuPct`] = us / 10 / spanMs));
  redisUs.forEach((us, i) => {
    m[`redis${i}CpuPct`] = us / 10 / spanMs;
    // CPU seconds of this redis-server per message published, in microseconds.
    m[`redis${i}CpuUsPerMsg`] = us / Math.max(1, published);
  });
  m.busiestRedisCpuUsPerMsg = Math.max(...redisUs) / Math.max(1, published);
  m.totalRedisCpuUsPerMsg = redisUs.reduce((a, b) => a + b, 0) / Math.max(1, published);
  return m;
}

/** (b) two instances under one fixed load, on one Redis or on the cluster. */
async function shardsRun(
  ctx: Context,
  sizes: ScaleSizes,
  single: RedisServer,
  cluster: RedisCluster,
  setup: ShardSetup,
  rep: number,
): Promise<void> {
  const instances = 2;
  const t = sizes.shardTopicsPerInstance;
  const redisPids = setup === 'cluster' ? cluster.nodes.map((n) => n.server.pid!) : [single.pid!];
  let servers: Server[] = [];
  let clients: LoadClients | undefined;
  try {
    [servers, clients] = await Promise.all([
      Promise.all(Array.from({ length: instances }, () => Server.start(startOptions(setup, single, cluster)))),
      LoadClients.start(),
    ]);
    const c = clients;
    for (const server of servers)
      await c.connectAll(server, t, { kind: 'range', prefix: TOPIC_PREFIX, suffix: '', start: 0, perConnection: 1 });
    await verifyRouting(servers, c, [t, 0]);
    const stream: TopicStream = { prefix: TOPIC_PREFIX, count: instances * t, suffix: '' };
    const paced = (durationMs: number) => () =>
      Promise.all(
        servers.map((s) =>
          s.child.call('paced', {
            topic: TOPIC_PREFIX,
            topics: stream,
            rate: sizes.shardRate,
            durationMs,
            via: 'redis',
          }),
        ),
      );
    await window(c, servers, redisPids, paced(300), 0, true); // warm-up, not recorded
    const m = await window(c, servers, redisPids, paced(sizes.shardMs), sizes.shardRate * instances);
    ctx.results.add('scale', 'shards', setup, rep, { ...m, shards: redisPids.length });
    ctx.log(
      `  scale shards ${setup} #${rep}: ${Math.round(m.deliveriesPerSec)} deliveries/s (${(m.held * 100).toFixed(1)}%), ` +
        `redis µs/msg ${redisPids.map((_, i) => m[`redis${i}CpuUsPerMsg`].toFixed(2)).join(' / ')}, ` +
        `instances ${m.cpuUsPerDelivery.toFixed(2)} µs/delivery`,
    );
  } finally {
    await teardown(servers, clients);
  }
}

/** Sum of INFO commandstats calls of the subscription commands over `clients`. */
async function subscriptionCalls(clients: readonly Redis[]): Promise<number> {
  let total = 0;
  for (const client of clients) {
    const info = await client.info('commandstats');
    for (const command of SUBSCRIPTION_COMMANDS) {
      const match = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(info);
      if (match !== null) total += Number(match[1]);
    }
  }
  return total;
}

/** Channels with a subscriber (classic and sharded) under the bench topics' channel prefix, over `clients`. */
async function subscribedChannels(clients: readonly Redis[]): Promise<number> {
  let total = 0;
  for (const client of clients) {
    const classic = (await client.call('PUBSUB', 'CHANNELS', `wse:${TOPIC_PREFIX}*`)) as unknown[];
    const sharded = (await client.call('PUBSUB', 'SHARDCHANNELS', `wse:${TOPIC_PREFIX}*`)) as unknown[];
    total += classic.length + sharded.length;
  }
  return total;
}

/** Polls `read` every 20 ms until it returns `target`, at most `timeoutMs`; resolves with the time waited. */
async function until(read: () => Promise<number>, target: number, timeoutMs: number, what: string): Promise<number> {
  const started = Date.now();
  let last = await read();
  while (last !== target) {
    if (Date.now() - started > timeoutMs) throw new Error(`${what}: ${last}, not ${target}, after ${timeoutMs} ms`);
    await sleep(20);
    last = await read();
  }
  return Date.now() - started;
}

/** (c) connections subscribing a topic each and leaving, on one instance. */
async function churnRun(
  ctx: Context,
  sizes: ScaleSizes,
  single: RedisServer,
  cluster: RedisCluster,
  setup: ShardSetup,
  rep: number,
): Promise<void> {
  const n = sizes.churn;
  const nodes =
    setup === 'cluster'
      ? cluster.nodes.map((node) => new Redis(node.port, '127.0.0.1', { lazyConnect: true }))
      : [new Redis(single.url, { lazyConnect: true })];
  let server: Server | undefined;
  let clients: LoadClients | undefined;
  try {
    for (const node of nodes) {
      node.on('error', () => undefined);
      await node.connect();
    }
    [server, clients] = await Promise.all([Server.start(startOptions(setup, single, cluster)), LoadClients.start()]);
    const s = server;
    const c = clients;
    // In pattern mode Redis holds no per-topic subscription: the wait is for none.
    const expectHeld = setup === 'pattern' ? 0 : n;
    const calls0 = await subscriptionCalls(nodes);
    const started = Date.now();
    const connected = await c.connectAll(s, n, {
      kind: 'range',
      prefix: `${TOPIC_PREFIX}churn:${rep}:`,
      suffix: '',
      start: 0,
      perConnection: 1,
    });
    const held = await until(() => subscribedChannels(nodes), expectHeld, 15_000, 'channels subscribed in Redis');
    const subscribeMs = Date.now() - started;
    const leaveStarted = Date.now();
    await c.closeAll();
    await until(() => subscribedChannels(nodes), 0, 15_000, 'channels left subscribed in Redis');
    const leaveMs = Date.now() - leaveStarted;
    await sleep(200);
    const commands = (await subscriptionCalls(nodes)) - calls0;
    ctx.results.add('scale', 'churn', setup, rep, {
      connections: n,
      commands,
      commandsPerConnection: commands / n,
      subscribeMs,
      leaveMs,
      connectMs: connected.wallMs,
      heldAfterMs: held,
    });
    ctx.log(
      `  scale churn ${setup} #${rep}: ${n} connections, ${commands} subscription commands, ` +
        `subscribed in ${subscribeMs} ms, left in ${leaveMs} ms`,
    );
  } finally {
    await teardown([server], clients);
    for (const node of nodes) node.disconnect();
  }
}
