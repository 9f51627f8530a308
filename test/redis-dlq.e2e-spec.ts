import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Redis } from 'ioredis';
import { startRedisApp, type RedisApp } from './support/redis-app.js';
import { RedisServer } from './support/redis-server.js';
import { waitUntil } from './support/server-process.js';
import { eventually } from './support/ws-client.js';

/**
 * The dead letter queue as an operator uses it (issue 10): exact payload bytes, reading without
 * draining, evictions counted, and a replay that never resends blindly what may already have
 * been delivered.
 */

const API_KEY = 'dlq-api-key';

describe('the dead letter queue', () => {
  let redis: RedisServer;
  const apps: RedisApp[] = [];
  const clients: Redis[] = [];

  beforeAll(async () => {
    redis = await RedisServer.launch();
  });
  afterEach(async () => {
    for (const client of clients.splice(0)) client.disconnect();
    await Promise.all(apps.splice(0).map((app) => app.close()));
    if (redis.pid === undefined) await redis.start();
  });
  afterAll(async () => {
    await redis.stop();
  });

  async function deliveringApp(options: Parameters<typeof startRedisApp>[0] = {}): Promise<RedisApp> {
    const app = await startRedisApp({ url: redis.url, ...options }, { apiKey: API_KEY });
    apps.push(app);
    await eventually(() => app.admin.redisConnected(), 5_000, 'the app to prove delivery');
    return app;
  }

  /** A plain Redis subscriber on `<prefix>*` keeping each payload's bytes. */
  async function listen(app: RedisApp): Promise<Buffer[]> {
    const received: Buffer[] = [];
    const client = new Redis(redis.url);
    clients.push(client);
    client.on('pmessageBuffer', (_pattern: string, _channel: Buffer, payload: Buffer) => received.push(payload));
    await client.psubscribe(`${app.prefix}*`);
    return received;
  }

  async function outage(app: RedisApp): Promise<void> {
    await redis.stop();
    await waitUntil(async () => (await app.getHealth()).status === 503, 5_000, 'GET /health to answer 503');
  }

  async function recover(app: RedisApp): Promise<void> {
    await redis.start();
    await waitUntil(async () => (await app.getHealth()).status === 200, 10_000, 'GET /health to answer 200');
  }

  it('keeps the bytes of a binary payload exactly, shows them as base64, and replays them intact', async () => {
    const app = await deliveringApp();
    const bytes = Buffer.from([0x00, 0xff, 0xc3, 0x28, 0x80, 0x7b]);
    await outage(app);
    app.publisher.publish('bin', bytes);
    app.publisher.publish('text', 'héllo ✓');
    await eventually(() => app.redis.dlqSize === 2, 2_000, 'both in the DLQ');

    const peeked = await app.api('GET', '/api/dlq?peek=true');
    expect(peeked.body.entries).toEqual([
      expect.objectContaining({
        channel: `${app.prefix}bin`,
        payload_base64: bytes.toString('base64'),
        reason: 'not_connected',
      }),
      expect.objectContaining({ channel: `${app.prefix}text`, payload: 'héllo ✓', reason: 'not_connected' }),
    ]);
    expect((peeked.body.entries as Record<string, unknown>[])[0]).not.toHaveProperty('payload');

    await recover(app);
    const received = await listen(app);
    expect(await app.api('POST', '/api/dlq/replay')).toEqual({
      status: 200,
      body: { replayed: 2, failed: 0, skipped: 0, late_ms: expect.any(Number) },
    });
    await eventually(() => received.length === 2, 2_000, 'both replayed messages');
    expect(Buffer.compare(received[0], bytes)).toBe(0);
    expect(received[1].toString('utf8')).toBe('héllo ✓');
    expect(app.snapshot().redis_dlq_replayed).toBe(2);
  });

  it('reads without draining with ?peek=true, as often as asked; the plain read drains', async () => {
    const app = await deliveringApp();
    await outage(app);
    for (let i = 0; i < 3; i++) app.publisher.publish('peek', `p${i}`);
    await eventually(() => app.redis.dlqSize === 3, 2_000, 'three in the DLQ');

    const first = (await app.api('GET', '/api/dlq?peek=true')).body.entries;
    const second = (await app.api('GET', '/api/dlq?peek=true')).body.entries;
    expect(second).toEqual(first);
    expect(app.snapshot().redis_dlq_size).toBe(3);
    expect((await app.api('GET', '/api/dlq')).body.entries).toEqual(first);
    expect((await app.api('GET', '/api/dlq?peek=true')).body.entries).toEqual([]);
  });

  it('counts the entries it evicted when full, in the snapshot and in metrics', async () => {
    const app = await deliveringApp({ dlqCapacity: 4 });
    await outage(app);
    for (let i = 0; i < 10; i++) app.publisher.publish('full', `e${i}`);
    await eventually(() => app.snapshot().redis_publish_errors === 10, 2_000, 'ten dead letters');

    expect(app.snapshot().redis_dlq_evicted).toBe(6);
    expect(app.admin.peekDlqEntries().map((entry) => entry.payload)).toEqual(['e6', 'e7', 'e8', 'e9']);
    expect(await app.metrics.metrics()).toMatch(/^wse_redis_dlq_evicted 6$/m);
  });

  it('leaves outcome_unknown entries in place on a plain replay, and resends them only with ?unknown=true', async () => {
    // Redis frozen (DEBUG SLEEP) with publishes on their way: no reply before the 300 ms deadline.
    const app = await deliveringApp({ publishTimeoutMs: 300, probeIntervalMs: 60_000, probeTimeoutMs: 5_000 });
    redis.freeze(1_500);
    await new Promise((resolve) => setTimeout(resolve, 50)); // DEBUG SLEEP is in Redis before these
    app.publisher.publish('maybe', 'm1');
    app.publisher.publish('maybe', 'm2');
    await eventually(() => app.redis.dlqSize === 2, 2_000, 'both given up at the deadline');
    expect(app.admin.peekDlqEntries().map((entry) => entry.reason)).toEqual(['outcome_unknown', 'outcome_unknown']);
    expect(app.snapshot().redis_publish_unknown).toBe(2);
    // After the freeze Redis ran them: they were delivered, late. A blind replay would double them.
    await waitUntil(async () => (await app.getHealth()).status === 200, 5_000, 'GET /health to answer 200');
    const received = await listen(app);

    expect(await app.api('POST', '/api/dlq/replay')).toEqual({
      status: 200,
      body: { replayed: 0, failed: 0, skipped: 2, late_ms: 0 },
    });
    expect(app.redis.dlqSize).toBe(2);
    expect(received).toEqual([]);

    expect((await app.api('POST', '/api/dlq/replay?unknown=true')).body).toMatchObject({ replayed: 2, skipped: 0 });
    await eventually(() => received.length === 2, 2_000, 'both resent on request');
    expect(app.redis.dlqSize).toBe(0);
  });
});
