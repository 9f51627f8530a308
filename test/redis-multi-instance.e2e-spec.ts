import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import type { WseRedisOptions } from '../src/index.js';
import { REDIS_PROBE_CHANNEL_PREFIX } from '../src/wse.constants.js';
import { httpCall, startRedisApp, type HttpAnswer, type RedisApp } from './support/redis-app.js';
import { RedisServer } from './support/redis-server.js';
import { ServerProcess, waitUntil } from './support/server-process.js';
import { eventually, TestClient } from './support/ws-client.js';

/**
 * Multi-instance fan-out through one Redis (CONTRACT sections 7 and 9): two example servers as
 * separate OS processes (`node dist-examples/server/main.js`, configured only by REDIS_URL, WSE_API_KEY and the
 * other contract variables), each message reaching every subscriber on every instance once.
 *
 * The processes use the default prefix `wse:` (so an outside `PUBLISH wse:<topic>` is the
 * contract's example) and live for the whole suite; each test uses topics of its own and
 * FLUSHALL runs before each, so nothing carries over between tests.
 */

const API_KEY = 'multi-instance-api-key';

/** Runs `task(0..count-1)` with at most `concurrency` in flight; rejects on the first failure. */
async function runBounded(count: number, concurrency: number, task: (index: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) await task(next++);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
}

/** Texts that occur more than once in `texts`. */
function duplicatesOf(texts: readonly string[]): string[] {
  const seen = new Set<string>();
  const twice = new Set<string>();
  for (const text of texts) (seen.has(text) ? twice : seen).add(text);
  return [...twice];
}

describe('two example-server processes on one Redis', () => {
  let redis: RedisServer;
  let a: ServerProcess;
  let b: ServerProcess;
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await RedisServer.launch();
    const env = {
      REDIS_URL: redis.url,
      WSE_API_KEY: API_KEY,
      // No heartbeat frame may land among the frames a test counts.
      WSE_PING_INTERVAL_MS: '600000',
      WSE_IDLE_TIMEOUT_MS: '600000',
    };
    [a, b] = await Promise.all([ServerProcess.spawn(env), ServerProcess.spawn(env)]);
  }, 30_000);
  beforeEach(async () => {
    await redis.command('FLUSHALL');
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    for (const server of [a, b]) {
      await waitUntil(
        async () => ((await api(server, 'GET', '/api/connections')).body.connections as unknown[]).length === 0,
        5_000,
        `every connection on ${server.httpUrl} to be unregistered`,
      );
    }
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  function api(server: ServerProcess, method: 'GET' | 'POST', path: string, body?: unknown): Promise<HttpAnswer> {
    return httpCall(`${server.httpUrl}${path}`, method, body, API_KEY);
  }

  async function subscriber(server: ServerProcess, topics: string[]): Promise<TestClient> {
    const { client } = await TestClient.ready(server.wsUrl);
    clients.push(client);
    const update = await client.subscribe(topics);
    expect(update.p).toMatchObject({ action: 'subscribe', success_topics: topics, failed_topics: [] });
    return client;
  }

  it('delivers a publish made on B once to a pattern subscriber on A and once to a subscriber on B', async () => {
    const onA = await subscriber(a, ['user:*:events']);
    const onB = await subscriber(b, ['user:1:events']);

    const answer = await api(b, 'POST', '/api/publish', {
      topic: 'user:1:events',
      data: { t: 'order_filled', p: { id: 1 } },
    });

    expect(answer).toEqual({ status: 202, body: { queued: true } });
    expect((await onA.next()).text).toBe('{"t":"order_filled","p":{"id":1}}');
    expect((await onB.next()).text).toBe('{"t":"order_filled","p":{"id":1}}');
    await Promise.all([onA.expectNothing(300), onB.expectNothing(0)]);
  });

  it('delivers an outside PUBLISH wse:trades to trades subscribers on both instances with the payload exactly x', async () => {
    const onA = await subscriber(a, ['trades']);
    const onB = await subscriber(b, ['trades']);

    // Each instance holds one `PSUBSCRIBE wse:*`: Redis hands the message to exactly two.
    const receivers = await redis.command('PUBLISH', 'wse:trades', 'x');

    expect(receivers).toBe(2);
    expect((await onA.next()).text).toBe('x');
    expect((await onB.next()).text).toBe('x');
    await Promise.all([onA.expectNothing(300), onB.expectNothing(0)]);
  });

  it('delivers a local: true publish on A to the subscribers on A only', async () => {
    const onA = await subscriber(a, ['room:local']);
    const onB = await subscriber(b, ['room:local']);

    const answer = await api(a, 'POST', '/api/publish', { topic: 'room:local', data: 'only here', local: true });

    expect(answer).toEqual({ status: 200, body: { delivered: 1 } });
    expect((await onA.next()).text).toBe('only here');
    await Promise.all([onA.expectNothing(300), onB.expectNothing(0)]);
  });

  it('delivers 1,000 server API publishes made on both instances to a subscriber on each, complete and none twice', async () => {
    // The 10,000-message run goes through WsePublisher below: over HTTP it would take most of
    // the suite's time budget in request overhead, not in fan-out.
    const total = 1_000;
    const onA = await subscriber(a, ['bulk:*']);
    const onB = await subscriber(b, ['bulk:*']);
    const statuses = new Map<number, number>();

    // Even ids through A's server API, odd ids through B's, 32 requests in flight.
    await runBounded(total, 32, async (i) => {
      const answer = await api(i % 2 === 0 ? a : b, 'POST', '/api/publish', {
        topic: `bulk:${i % 10}`,
        data: `m-${i}`,
      });
      statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
    });
    expect(Object.fromEntries(statuses)).toEqual({ 202: total });

    const expected = Array.from({ length: total }, (_, i) => `m-${i}`).sort();
    for (const client of [onA, onB]) {
      const texts = (await client.take(total, 10_000)).map((frame) => frame.text);
      expect(duplicatesOf(texts)).toEqual([]);
      expect(new Set(texts).size).toBe(total);
      expect([...texts].sort()).toEqual(expected);
    }
    await Promise.all([onA.expectNothing(300), onB.expectNothing(0)]);
  });
});

describe('two in-process instances on one Redis with a 200 ms delivery probe', () => {
  let redis: RedisServer;
  let probeWatcher: Redis;
  const probes = new Map<string, number>();
  const apps: RedisApp[] = [];
  const clients: TestClient[] = [];

  beforeAll(async () => {
    redis = await RedisServer.launch();
    // Watches the probe traffic itself, to prove the probes really flow while the `*`
    // subscribers hear nothing.
    probeWatcher = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 0 });
    probeWatcher.on('error', () => undefined);
    probeWatcher.on('pmessage', (_pattern: string, channel: string) =>
      probes.set(channel, (probes.get(channel) ?? 0) + 1),
    );
    await probeWatcher.connect();
    await probeWatcher.psubscribe(`${REDIS_PROBE_CHANNEL_PREFIX}*`);
  });
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.close()));
    await Promise.all(apps.splice(0).map((app) => app.close()));
  });
  afterAll(async () => {
    probeWatcher?.disconnect();
    await redis?.stop();
  });

  /**
   * Two apps with one prefix: two instances of one deployment. `probe` overrides the fast probe,
   * e.g. with the defaults for a burst that may take longer than 500 ms to drain.
   */
  async function instances(probe: WseRedisOptions = {}): Promise<[RedisApp, RedisApp]> {
    const first = await startRedisApp({ url: redis.url, ...probe });
    const second = await startRedisApp({ url: redis.url, ...probe, prefix: first.prefix });
    apps.push(first, second);
    await eventually(() => first.admin.redisConnected() && second.admin.redisConnected(), 5_000, 'both to deliver');
    return [first, second];
  }

  async function subscriber(app: RedisApp, topics: string[]): Promise<TestClient> {
    const { client } = await TestClient.ready(app.wsUrl);
    clients.push(client);
    const update = await client.subscribe(topics);
    expect(update.p).toMatchObject({ action: 'subscribe', success_topics: topics, failed_topics: [] });
    return client;
  }

  it('never shows the probe channel traffic to a * subscriber, over more than 3 probe intervals', async () => {
    const [first, second] = await instances();
    const everything = [await subscriber(first, ['*']), await subscriber(second, ['*'])];
    probes.clear();

    await Promise.all(everything.map((client) => client.expectNothing(4 * 200)));

    // Both instances probed at least 3 times in that window (one channel each).
    expect(probes.size).toBe(2);
    for (const count of probes.values()) expect(count).toBeGreaterThanOrEqual(3);
  });

  it('delivers 10,000 WsePublisher.publish calls made on both instances to a * subscriber on each, complete and none twice', async () => {
    const total = 10_000;
    // The default probe (every 5 s, lost after 3 s): with the 500 ms test timeout, draining a
    // burst of 10,000 on a loaded machine can outlast the probe, which then (as designed) forces
    // a reconnection and a resync frame in the middle of the count.
    const [first, second] = await instances({ probeIntervalMs: 5_000, probeTimeoutMs: 3_000 });
    const onFirst = await subscriber(first, ['*']);
    const onSecond = await subscriber(second, ['*']);

    for (let i = 0; i < total; i++) (i % 2 === 0 ? first : second).publisher.publish(`bulk:${i % 10}`, { id: i });

    const expected = Array.from({ length: total }, (_, i) => JSON.stringify({ id: i })).sort();
    for (const client of [onFirst, onSecond]) {
      const texts = (await client.take(total, 15_000)).map((frame) => frame.text);
      expect(duplicatesOf(texts)).toEqual([]);
      expect(new Set(texts).size).toBe(total);
      expect([...texts].sort()).toEqual(expected);
    }
    await Promise.all([onFirst.expectNothing(300), onSecond.expectNothing(0)]);
    expect(first.redis.dlqSize + second.redis.dlqSize).toBe(0);
  }, 60_000);
});
